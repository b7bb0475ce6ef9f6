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
	"github.com/wsgate/wsgate/netpoll"
)

// Modes of the ready server.
const (
	ModePubSub = "pubsub"
	ModeEcho   = "echo"
)

// Config is everything a Server needs. Zero values are sane defaults.
type Config struct {
	// Mode selects the application: ModePubSub (default) or ModeEcho. Ignored when Handler is set.
	Mode string
	// Handler, if set, replaces the built-in application (for embedding the engine).
	Handler conn.Handler
	// Addr is the WebSocket listen address (default 127.0.0.1:8080; port 0 picks a free port).
	Addr string
	// AdminAddr is the admin HTTP listen address (/metrics, /healthz, /debug/pprof/, the API);
	// empty disables the admin listener.
	AdminAddr string
	// Loops is the number of event loops (default: one per CPU the process may run on).
	Loops int
	// CPUs pins loop i to CPUs[i % len(CPUs)] with sched_setaffinity; empty: no pinning.
	CPUs []int
	// Backlog for listen(2); 0 asks for the most the kernel allows (net.core.somaxconn).
	Backlog int
	// Tick is the timing wheel resolution (default netpoll.DefaultWheelTick).
	Tick time.Duration
	// ShutdownTimeout bounds the graceful close handshake at Shutdown (default 10 s).
	ShutdownTimeout time.Duration
	// Conn holds the per-connection limits and timers.
	Conn conn.Config
	// PubSub configures the pub/sub gateway (ModePubSub).
	PubSub PubSubConfig
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Now replaces the loops' monotonic clock (tests).
	Now func() int64
}

// Server is a running wsgate instance.
type Server struct {
	cfg     Config
	log     *slog.Logger
	loops   []*netpoll.Loop
	engines []*conn.Engine
	held    atomic.Int64
	addr    *net.TCPAddr
	metrics *metrics.Set
	passes  *metrics.PrometheusHistogram
	handler conn.Handler
	pubsub  *PubSub

	admin     *http.Server
	adminLn   net.Listener
	adminDone chan struct{}

	loopErrs chan error
	stopOnce sync.Once
	stopped  chan struct{}
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
	cfg.Conn = cfg.Conn.WithDefaults()
	s := &Server{cfg: cfg, log: cfg.Logger, metrics: metrics.NewSet(), stopped: make(chan struct{})}
	switch {
	case cfg.Handler != nil:
		s.handler = cfg.Handler
	case cfg.Mode == "" || cfg.Mode == ModePubSub:
		s.pubsub = newPubSub(s, cfg.PubSub)
		s.handler = s.pubsub
	case cfg.Mode == ModeEcho:
		s.handler = Echo{}
	default:
		return nil, fmt.Errorf("mode %q: want %q or %q", cfg.Mode, ModePubSub, ModeEcho)
	}
	return s, nil
}

// Start opens the listeners, starts one goroutine per loop and the admin listener. It returns
// once the server accepts connections.
func (s *Server) Start() error {
	cfg := &s.cfg
	fds, addr, err := netpoll.Listen(cfg.Addr, cfg.Loops, cfg.Backlog)
	if err != nil {
		return err
	}
	s.addr = addr
	s.passes = s.metrics.NewPrometheusHistogramExt("wsgate_loop_pass_seconds",
		[]float64{10e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1})
	observe := func(d time.Duration) { s.passes.Update(d.Seconds()) }
	for i := 0; i < cfg.Loops; i++ {
		cpu := 0
		if len(cfg.CPUs) > 0 {
			cpu = cfg.CPUs[i%len(cfg.CPUs)]
		}
		l, err := netpoll.NewLoop(netpoll.LoopConfig{
			Index: i, Pin: len(cfg.CPUs) > 0, CPU: cpu, ListenFD: fds[i], Tick: cfg.Tick, Now: cfg.Now,
			OnPassDuration: observe, Logger: s.log,
		})
		if err != nil {
			for _, fd := range fds[i:] {
				unix.Close(fd)
			}
			s.abortLoops()
			return err
		}
		s.loops = append(s.loops, l)
		s.engines = append(s.engines, conn.NewEngine(l, cfg.Conn, s.handler, &s.held))
	}
	if s.pubsub != nil {
		s.pubsub.start()
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

func (s *Server) mode() string {
	switch {
	case s.cfg.Handler != nil:
		return "custom"
	case s.pubsub != nil:
		return ModePubSub
	}
	return ModeEcho
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

// PubSub returns the pub/sub gateway, or nil in other modes.
func (s *Server) PubSub() *PubSub { return s.pubsub }

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
