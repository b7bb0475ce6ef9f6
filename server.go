package wsgate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gobwas/ws"
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
	// ShutdownTimeout bounds the close handshakes at the end of Shutdown or Drain (default
	// 10 s): a drain over a period P lasts at most P plus this.
	ShutdownTimeout time.Duration
	// ListenFDs are listening sockets inherited from the process this one replaces (a
	// zero-downtime restart, see Server.ListenerFDs): Start serves them instead of opening
	// new ones, one per loop (Loops is raised to their number if it is lower; loops beyond them
	// open listeners of their own on the same address), so no connection waiting in their
	// queues is lost. They must be bound to Addr's host (Addr's port 0 matches any port); the
	// Server owns them from Start on, and closes them if Start fails.
	ListenFDs []int
	// AdminListener, if set, is the admin listener to serve instead of listening on AdminAddr
	// (one inherited the same way). The Server owns it.
	AdminListener net.Listener
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
	cfg     Config       // immutable after Start (which may raise Loops to the inherited listeners)
	log     *slog.Logger // immutable after New
	metrics *metrics.Set // immutable after New; safe for concurrent use
	held    atomic.Int64 // sockets held by every engine; written by the loops, read by any

	// Any goroutine.
	handedOver atomic.Bool // StopAccepting ran: the listeners are served by another process
	draining   atomic.Bool // Drain or Shutdown started (/healthz answers 503)

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
	return &Server{cfg: cfg, log: cfg.Logger, metrics: metrics.NewSet()}, nil
}

// Start opens the listeners, starts one goroutine per loop and the admin listener. It returns
// once the server accepts connections.
func (s *Server) Start() error {
	cfg := &s.cfg
	s.started = time.Now()
	fds, addr, err := s.listen()
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
	if cfg.AdminAddr != "" || cfg.AdminListener != nil {
		if err := s.startAdmin(); err != nil {
			s.stopLoops()
			return err
		}
	}
	s.log.Info("wsgate listening", "addr", s.addr.String(), "loops", len(s.loops), "mode", s.mode(),
		"admin", s.AdminAddr(), "inherited_listeners", len(cfg.ListenFDs), "pid", os.Getpid())
	return nil
}

// listen returns one listening socket per loop: the inherited ones (Config.ListenFDs), topped up
// with new ones on the same address, or all new. It raises cfg.Loops to the number inherited:
// every inherited socket must be served, or the connections the kernel queues on it are lost.
func (s *Server) listen() ([]int, *net.TCPAddr, error) {
	cfg := &s.cfg
	if len(cfg.ListenFDs) == 0 {
		return netpoll.Listen(cfg.Addr, cfg.Loops, cfg.Backlog)
	}
	fds := cfg.ListenFDs
	fail := func(err error) ([]int, *net.TCPAddr, error) {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, nil, err
	}
	addr, err := netpoll.Inherit(fds)
	if err != nil {
		return fail(err)
	}
	if ok, err := netpoll.SameAddr(cfg.Addr, addr); err != nil {
		return fail(err)
	} else if !ok {
		return fail(fmt.Errorf("the inherited listeners are bound to %s, not to -addr %s: an address change needs a restart, not a reload", addr, cfg.Addr))
	}
	if len(fds) > 255 {
		return fail(fmt.Errorf("%d inherited listeners: more than the 255 loops supported", len(fds)))
	}
	if cfg.Loops < len(fds) {
		s.log.Warn("loops raised to the number of inherited listeners, each of which must be served",
			"loops", cfg.Loops, "inherited", len(fds))
		cfg.Loops = len(fds)
	}
	if extra := cfg.Loops - len(fds); extra > 0 {
		more, _, err := netpoll.Listen(addr.String(), extra, cfg.Backlog)
		if err != nil {
			return fail(err)
		}
		fds = append(fds, more...)
	}
	return fds, addr, nil
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

// Shutdown sends close 1001 to every connection at once and waits for the close handshakes until
// ctx ends or Config.ShutdownTimeout passes; then it closes whatever is left and stops the loops.
// Upgrades that arrive meanwhile get HTTP 503 with Retry-After. It is Drain with code 1001, no
// period. It returns ctx's error or a timeout error if connections had to be cut, nil if every
// connection closed cleanly.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.Drain(ctx, ws.StatusGoingAway, "server shutting down", 0)
}

// Drain ends the server: every WebSocket connection is closed with code and reason, the closes
// spread evenly over period (conn.Drain: paced on the loops, whole frames before the close
// frame), then it waits for the close handshakes until ctx ends or Config.ShutdownTimeout after
// the period, closes whatever is left, the listeners and the loops. While the server still
// accepts, upgrades get HTTP 503 with Retry-After during the drain; after StopAccepting (a
// hand-over) a handshake already under way completes and is drained like the others. Only the
// first call of Drain, Shutdown or Close does anything. Any goroutine.
func (s *Server) Drain(ctx context.Context, code ws.StatusCode, reason string, period time.Duration) error {
	var result error
	s.stopOnce.Do(func() {
		s.draining.Store(true)
		ctx, cancel := context.WithTimeout(ctx, period+s.cfg.ShutdownTimeout)
		defer cancel()
		d := conn.Drain{Code: code, Reason: reason, Period: period, Refuse: !s.handedOver.Load()}
		drained := make(chan struct{}, len(s.loops))
		for i, l := range s.loops {
			e := s.engines[i]
			d := d
			d.Done = func() { drained <- struct{}{} }
			if !l.Post(func() { e.Drain(d) }) {
				drained <- struct{}{} // a loop that stopped holds nothing
			}
		}
		for left := len(s.loops); left > 0; left-- {
			select {
			case <-drained:
				continue
			case <-ctx.Done():
				result = fmt.Errorf("shutdown: %d connections did not finish the close handshake: %w",
					s.held.Load(), ctx.Err())
				s.log.Warn("shutdown timed out; closing remaining connections", "left", s.held.Load())
			}
			break
		}
		// The listeners stayed open during the drain to refuse upgrades with a 503 rather than a
		// reset; the answers written, the sockets being refused get a moment to close.
		for _, l := range s.loops {
			l.Post(l.CloseListener)
		}
		if result == nil {
			grace := time.NewTimer(time.Second)
			tick := time.NewTicker(10 * time.Millisecond)
			for s.held.Load() > 0 {
				select {
				case <-tick.C:
					continue
				case <-grace.C:
				case <-ctx.Done():
				}
				break
			}
			tick.Stop()
			grace.Stop()
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

// ListenerFDs returns new descriptors (close-on-exec) of the server's listening sockets, one per
// loop in loop order, and of the admin listener (-1 without one), for handing them to the
// process that replaces this one; the caller owns them and closes them once they are passed.
// The sockets keep being served here until StopAccepting. Any goroutine, after Start and
// before Shutdown.
func (s *Server) ListenerFDs() (loops []int, admin int, err error) {
	type dup struct {
		fd  int
		err error
	}
	admin = -1
	defer func() {
		if err != nil {
			for _, fd := range loops {
				unix.Close(fd)
			}
			if admin >= 0 {
				unix.Close(admin)
			}
			loops, admin = nil, -1
		}
	}()
	for _, l := range s.loops {
		ch := make(chan dup, 1)
		if !l.Post(func() { fd, err := l.DupListener(); ch <- dup{fd, err} }) {
			return loops, admin, errors.New("the server is stopping")
		}
		d := <-ch
		if d.err != nil {
			return loops, admin, fmt.Errorf("loop %d: %w", l.Index(), d.err)
		}
		loops = append(loops, d.fd)
	}
	if s.adminLn != nil {
		tl, ok := s.adminLn.(*net.TCPListener)
		if !ok {
			return loops, admin, fmt.Errorf("the admin listener is a %T, not a TCP listener", s.adminLn)
		}
		rc, err := tl.SyscallConn()
		if err != nil {
			return loops, admin, fmt.Errorf("admin listener: %w", err)
		}
		var derr error
		if err := rc.Control(func(fd uintptr) { admin, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
			return loops, admin, fmt.Errorf("admin listener: %w", err)
		}
		if derr != nil {
			admin = -1
			return loops, admin, fmt.Errorf("admin listener: dup: %w", derr)
		}
	}
	return loops, admin, nil
}

// StopAccepting stops taking new connections, for a hand-over to the process that inherited the
// listeners (ListenerFDs): the loops stop polling their listening sockets without closing them,
// and the admin listener's descriptor is closed here (the socket lives on in the new process),
// with keep-alive off so that open admin connections end after their current request.
// Connections already accepted are served until Drain. It returns once every loop has stopped
// accepting. Any goroutine.
func (s *Server) StopAccepting() {
	if s.handedOver.Swap(true) {
		return
	}
	var wg sync.WaitGroup
	for _, l := range s.loops {
		wg.Add(1)
		if !l.Post(func() { l.StopAccepting(); wg.Done() }) {
			wg.Done()
		}
	}
	wg.Wait()
	if s.admin != nil {
		s.admin.SetKeepAlivesEnabled(false)
		s.adminLn.Close() // Serve returns; startAdmin's goroutine knows why (handedOver)
	}
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

// Close codes Drain is given by the command (conn.Drain explains the pacing).
const (
	StatusGoingAway      = ws.StatusGoingAway        // 1001: the server shuts down
	StatusServiceRestart = conn.StatusServiceRestart // 1012: the server restarts, reconnect
)
