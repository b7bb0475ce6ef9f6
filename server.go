package wsgate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/conn"
	"github.com/wsgate/wsgate/frame"
	"github.com/wsgate/wsgate/netpoll"
	"github.com/wsgate/wsgate/pubsub"
)

// Modes name the built-in applications (the demo page and the logs tell them apart).
const (
	ModePubSub = "pubsub" // a *pubsub.PubSub
	ModeEcho   = "echo"   // Echo
)

// Application is implemented by a Handler that needs more of the server than connection events,
// as the pub/sub gateway does: Start receives the engines (one per loop, in loop order) and the
// server's metric set once, after the engines exist and before any loop runs; Routes adds its
// HTTP endpoints to the admin listener; Health says why it cannot serve (/healthz answers 503
// with it), or nil; Close releases what Start took, once the loops have stopped.
type Application interface {
	conn.Handler
	Start(engines []*conn.Engine, m *metrics.Set) error
	Routes(mux *http.ServeMux)
	Health() error
	Close() error
}

// Checker is implemented by a Handler that checks handshakes itself (the pub/sub gateway: its
// Origin allow-list and connection tokens). The server uses its Check as conn.Config.Check
// unless Config.Conn.Check is set.
type Checker interface {
	Check(c *conn.Conn, r *frame.Request) (status int, reason string)
}

// Config is everything a Server needs: the engine's settings and the application to run. Zero
// values are sane defaults, except Handler, which is required.
type Config struct {
	// Handler is the application: Echo{}, a *pubsub.PubSub, or an embedder's own. If it also
	// implements Application, Start and Routes are called as that interface says.
	Handler conn.Handler
	// Addr is the WebSocket listen address (default 127.0.0.1:8080; port 0 picks a free port).
	Addr string
	// AdminAddr is the admin HTTP listen address (/metrics, /healthz, /debug/pprof/, the demo
	// page and the application's routes); empty disables the admin listener.
	AdminAddr string
	// Loops is the number of event loops (default: one per CPU the process may run on).
	Loops int
	// CPUs pins loop i to CPUs[i % len(CPUs)] with sched_setaffinity; empty: no pinning.
	CPUs []int
	// Backlog for listen(2); 0 asks for the most the kernel allows (net.core.somaxconn).
	Backlog int
	// Tick is the timing wheel resolution (default netpoll.DefaultWheelTick, 10 ms; 1 ms to 1 s).
	// Every deadline fires on a tick, so a coarser tick batches the timers of idle connections
	// (pings, pong and idle deadlines) into fewer loop wake-ups, for that much less precision.
	Tick time.Duration
	// ShutdownTimeout bounds the graceful close handshake at Shutdown (default 10 s).
	ShutdownTimeout time.Duration
	// Conn holds the per-connection limits and timers.
	Conn conn.Config
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Now replaces the loops' monotonic clock (tests).
	Now func() int64
	// APIKey, when set, is required as "Authorization: Bearer <key>" on the dashboard's data
	// (/dashboard/stats), as pubsub.Config.APIKey is on /api/ (cmd/wsgate sets both from
	// -api-key). The dashboard page itself carries no data and asks for the key.
	APIKey string
}

// Server is a running wsgate instance. Its methods may be called from any goroutine.
type Server struct {
	cfg     Config        // immutable after New
	log     *slog.Logger  // immutable after New
	metrics *metrics.Set  // immutable after New; safe for concurrent use
	held    atomic.Int64  // sockets held by every engine; written by the loops, read by any
	stopped chan struct{} // closed when Shutdown has finished

	// Set by Start before it returns and immutable afterwards (read them only after Start).
	loops    []*netpoll.Loop
	engines  []*conn.Engine
	addr     *net.TCPAddr
	loopErrs chan error

	// Admin listener: set by Start, stopped by Shutdown.
	admin     *http.Server
	adminLn   net.Listener
	adminDone chan struct{}

	stopOnce sync.Once
	started  time.Time // when Start began; immutable afterwards
	fds      fdCount   // the dashboard's cached count of open files
}

// New validates cfg and prepares a Server; Start opens its sockets.
func New(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.Loops <= 0 {
		cfg.Loops = runtime.GOMAXPROCS(0)
	}
	if cfg.Loops > 255 {
		return nil, fmt.Errorf("loops: %d is more than the 255 supported", cfg.Loops)
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if n := runtime.NumCPU(); len(cfg.CPUs) > 0 {
		for _, c := range cfg.CPUs {
			if c < 0 || c >= n {
				return nil, fmt.Errorf("cpus: CPU %d does not exist (this host has %d)", c, n)
			}
		}
	}
	if cfg.Tick < 0 || (cfg.Tick > 0 && (cfg.Tick < time.Millisecond || cfg.Tick > time.Second)) {
		return nil, fmt.Errorf("wheel tick %v: must be between 1ms and 1s (0 = the default %v)", cfg.Tick, netpoll.DefaultWheelTick)
	}
	if cfg.Handler == nil {
		return nil, errors.New("config: Handler is required (wsgate.Echo{}, a *pubsub.PubSub or your own)")
	}
	if err := cfg.Conn.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg.Conn = cfg.Conn.WithDefaults()
	if ch, ok := cfg.Handler.(Checker); ok && cfg.Conn.Check == nil {
		cfg.Conn.Check = ch.Check
	}
	return &Server{cfg: cfg, log: cfg.Logger, metrics: metrics.NewSet(), stopped: make(chan struct{})}, nil
}

// Start opens the listeners, starts one goroutine per loop and the admin listener. It returns
// once the server accepts connections.
func (s *Server) Start() error {
	cfg := &s.cfg
	s.started = time.Now()
	fds, addr, err := netpoll.Listen(cfg.Addr, cfg.Loops, cfg.Backlog)
	if err != nil {
		return err
	}
	s.addr = addr
	for i := 0; i < cfg.Loops; i++ {
		cpu := 0
		if len(cfg.CPUs) > 0 {
			cpu = cfg.CPUs[i%len(cfg.CPUs)]
		}
		l, err := netpoll.NewLoop(netpoll.LoopConfig{
			Index: i, Pin: len(cfg.CPUs) > 0, CPU: cpu, ListenFD: fds[i], Tick: cfg.Tick, Now: cfg.Now,
			Logger: s.log,
		})
		if err != nil {
			for _, fd := range fds[i:] {
				unix.Close(fd)
			}
			s.abortLoops()
			return err
		}
		s.loops = append(s.loops, l)
		s.engines = append(s.engines, conn.NewEngine(l, cfg.Conn, cfg.Handler, &s.held))
	}
	if app, ok := cfg.Handler.(Application); ok {
		if err := app.Start(s.engines, s.metrics); err != nil {
			s.abortLoops()
			return err
		}
	}
	s.registerMetrics()
	s.loopErrs = make(chan error, len(s.loops))
	for i, l := range s.loops {
		go func(l *netpoll.Loop, e *conn.Engine) {
			if err := l.Run(e); err != nil {
				s.log.Error("event loop failed", "loop", l.Index(), "err", err)
				s.loopErrs <- err
			}
		}(l, s.engines[i])
		if cfg.CPUs != nil {
			s.log.Info("event loop pinned", "loop", i, "cpu", cfg.CPUs[i%len(cfg.CPUs)])
		}
	}
	if cfg.AdminAddr != "" {
		if err := s.startAdmin(); err != nil {
			s.stopLoops()
			return err
		}
	}
	s.log.Info("wsgate listening", "addr", s.addr.String(), "loops", len(s.loops), "mode", s.mode(),
		"admin", s.AdminAddr())
	return nil
}

// mode names the application for logs and the demo page: ModePubSub, ModeEcho or "custom".
func (s *Server) mode() string {
	switch s.cfg.Handler.(type) {
	case *pubsub.PubSub:
		return ModePubSub
	case Echo:
		return ModeEcho
	}
	return "custom"
}

// Addr returns the WebSocket listen address (with the real port when Config.Addr had port 0).
func (s *Server) Addr() *net.TCPAddr { return s.addr }

// AdminAddr returns the admin listener's address, or "" when it is disabled.
func (s *Server) AdminAddr() string {
	if s.adminLn == nil {
		return ""
	}
	return s.adminLn.Addr().String()
}

// Metrics returns the server's metric set.
func (s *Server) Metrics() *metrics.Set { return s.metrics }

// Engines returns the per-loop engines (for embedding applications that route work to loops).
func (s *Server) Engines() []*conn.Engine { return s.engines }

// Connections returns the sockets currently held (handshaking or open).
func (s *Server) Connections() int64 { return s.held.Load() }

// Err returns a channel that receives an error if an event loop fails.
func (s *Server) Err() <-chan error { return s.loopErrs }

// Shutdown stops accepting, sends close 1001 to every connection and waits for the close
// handshakes until ctx ends or Config.ShutdownTimeout passes, whichever is first; then it closes
// whatever is left and stops the loops. It returns ctx's error or a timeout error if connections
// had to be cut, nil if every connection closed cleanly.
func (s *Server) Shutdown(ctx context.Context) error {
	var result error
	s.stopOnce.Do(func() {
		defer close(s.stopped)
		ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
		defer cancel()
		for i, l := range s.loops {
			e := s.engines[i]
			l.Post(func() {
				l.CloseListener()
				e.Shutdown("server shutting down")
			})
		}
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for s.held.Load() > 0 {
			select {
			case <-ctx.Done():
				result = fmt.Errorf("shutdown: %d connections did not finish the close handshake: %w",
					s.held.Load(), ctx.Err())
				s.log.Warn("shutdown timed out; closing remaining connections", "left", s.held.Load())
			case <-tick.C:
				continue
			}
			break
		}
		s.stopLoops()
		s.stopAdmin()
		if app, ok := s.cfg.Handler.(Application); ok {
			if err := app.Close(); err != nil {
				s.log.Warn("closing the application", "err", err)
			}
		}
	})
	return result
}

// Close stops the server at once, without close handshakes.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Shutdown(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// abortLoops releases loops that were created but never run.
func (s *Server) abortLoops() {
	for _, l := range s.loops {
		l.Stop()
		l.Run(nil) // returns at once: stopped before its first pass; frees its fds
	}
	s.loops, s.engines = nil, nil
}

func (s *Server) stopLoops() {
	for i, l := range s.loops {
		if i < len(s.engines) {
			e := s.engines[i]
			l.Post(e.CloseAll)
		}
		l.Stop()
	}
	for _, l := range s.loops {
		<-l.Done()
	}
}
