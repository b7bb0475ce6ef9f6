// Command wsgate is the WebSocket server: a pub/sub gateway by default, an echo server with
// -mode echo, and `wsgate sysctl show|check|apply` for the bundled kernel profile.
// Every flag can also be set with the environment variable WSGATE_<FLAG> (upper case, dashes as
// underscores); a flag on the command line wins over the environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/pubsub"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, nil))
}

// options are the parsed flags.
type options struct {
	cfg       wsgate.Config // the engine's settings; Handler is set from mode
	mode      string
	pubsub    pubsub.Config
	cluster   pubsub.ClusterConfig // used when cluster.URLs is set (-nats)
	authCfg   authOptions
	logLevel  string
	logFormat string
	version   bool

	drainPeriod   time.Duration // -drain-period
	reloadTimeout time.Duration // -reload-timeout
	pidFile       string        // -pid-file
	envFile       string        // -env-file (read by parse before the flags, see withEnvFile)
}

// newFlagSet declares every flag of the server into o.
func newFlagSet(o *options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("wsgate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &o.cfg
	fs.StringVar(&o.mode, "mode", wsgate.ModePubSub, "application: pubsub (channels, HTTP publish API) or echo (benchmarks, conformance)")
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "WebSocket listen address; every path upgrades (a request without Upgrade to /sse or /events is a Server-Sent Events stream)")
	fs.StringVar(&c.AdminAddr, "admin-addr", "127.0.0.1:9090", "admin HTTP address for /metrics, /healthz, /debug/pprof/ and the API; empty disables it")
	fs.IntVar(&c.Loops, "loops", 0, "event loops, each with its own SO_REUSEPORT listener (0 = one per CPU)")
	fs.Var((*cpuList)(&c.CPUs), "cpus", "pin loop i to the i-th CPU of this comma-separated list, e.g. 0,1 (empty = no pinning)")
	fs.IntVar(&c.Backlog, "backlog", 0, "listen backlog (0 = as large as net.core.somaxconn allows)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long close handshakes get after the drain (SIGHUP, SIGINT/SIGTERM) before the process exits")
	fs.DurationVar(&o.drainPeriod, "drain-period", 30*time.Second, "after a reload (SIGHUP), close the old process's connections with 1012 spread evenly over this long; SIGINT/SIGTERM spread their 1001 over it only when the flag is set explicitly (otherwise all at once)")
	fs.DurationVar(&o.reloadTimeout, "reload-timeout", 30*time.Second, "on SIGHUP, how long the new process has to become ready before it is killed and this one keeps serving")
	fs.StringVar(&o.pidFile, "pid-file", "", "write the process ID to this file; after a reload the new process writes it (for systemd's PIDFile=)")
	fs.StringVar(&o.envFile, "env-file", "", "read WSGATE_* settings from this file of KEY=VALUE lines at every start, so a reload applies its current contents (the command line wins over it, it wins over the environment)")
	cc := &c.Conn
	cc.MaxMessage = 16 << 20
	fs.Var((*byteSize)(&cc.MaxMessage), "max-message", "largest message accepted (bytes; K, KiB, M, MiB suffixes); larger ones close with 1009")
	fs.DurationVar(&cc.HandshakeTimeout, "handshake-timeout", 5*time.Second, "time a new connection has to complete the WebSocket handshake")
	fs.DurationVar(&cc.PingInterval, "ping-interval", 25*time.Second, "ping each connection this often (jittered per connection); 0 disables pings")
	fs.DurationVar(&c.Tick, "wheel-tick", 10*time.Millisecond, "timing wheel resolution (1ms to 1s): every deadline fires on a tick, so a coarser tick wakes the loops less often for idle connections' pings (less CPU per idle connection) at the cost of that much timer precision")
	fs.IntVar(&cc.PongMisses, "pong-misses", 3, "close a connection after this many ping intervals without any frame from it")
	fs.DurationVar(&cc.IdleTimeout, "idle-timeout", 0, "close connections that sent no data frame for this long (0 = never)")
	fs.DurationVar(&cc.CloseTimeout, "close-timeout", 3*time.Second, "after the server sends a close frame, how long the peer has to answer")
	maxQueue := int64(1 << 20)
	fs.Func("max-queue", "outbound bytes queued per connection before it is closed with 1008 \"slow consumer\" (default 1MiB)", func(v string) error {
		if err := (*byteSize)(&maxQueue).Set(v); err != nil {
			return err
		}
		cc.MaxQueue = int(maxQueue)
		return nil
	})
	cc.MaxQueue = int(maxQueue)
	fs.Var((*intSize)(&cc.HighWater), "high-water", "stop reading a connection whose queued output passes this many bytes, until it drains below -low-water (0 = half of -max-queue)")
	fs.Var((*intSize)(&cc.LowWater), "low-water", "resume reading a paused connection below this many queued bytes (0 = a quarter of -max-queue)")
	fs.Int64Var(&cc.MaxConns, "max-conns", 0, "connections held at once; excess upgrades get HTTP 503 (0 = derived from the open-files limit)")
	fs.Float64Var(&cc.MaxMsgRate, "max-msg-rate", 0, "inbound messages per second per connection, token bucket; excess closes with 1008 (0 = unlimited)")
	fs.DurationVar(&cc.WriteDelay, "write-delay", 0, "hold output up to this long so messages leave in fewer TCP sends: less CPU per message for that much added latency (0 = send at the end of every loop pass)")
	fs.IntVar(&cc.MsgBurst, "msg-burst", 0, "token bucket size for -max-msg-rate (0 = the rate, at least 1)")
	fs.BoolVar(&cc.Compression, "compression", false, "offer permessage-deflate (RFC 7692) without context takeover: clients that accept get messages of at least -compression-min-size compressed, a fanned-out message compressed once for all of them")
	cc.CompressionMinSize = 256
	fs.Var((*intSize)(&cc.CompressionMinSize), "compression-min-size", "with -compression, the smallest message compressed (bytes; K, KiB suffixes; 0 = the default)")
	ps := &o.pubsub
	fs.BoolVar(&ps.ClientPublish, "client-publish", false, `pubsub: let WebSocket clients publish with {"op":"publish"}`)
	fs.StringVar(&ps.APIKey, "api-key", "", "require \"Authorization: Bearer <key>\" on /api/ requests and the dashboard's data (prefer the env var)")
	fs.DurationVar(&ps.DedupWindow, "dedup-window", 30*time.Minute, "pubsub: remember publish ids per channel this long; a repeat is not delivered again (0 disables)")
	fs.IntVar(&ps.DedupMaxIDs, "dedup-max-ids", 100000, "pubsub: most publish ids remembered across all channels (bounds dedup memory; oldest forgotten first)")
	fs.IntVar(&ps.MaxChannels, "max-channels", 128, "pubsub: channels one connection may subscribe to")
	fs.IntVar(&ps.MaxErrors, "max-errors", 10, "pubsub: bad requests a connection may send before it is closed with 1008")
	fs.IntVar(&ps.HistorySize, "history-size", 100, "pubsub: messages kept per channel for recovery (subscribe with since) and /api/history; 0 turns history off")
	fs.DurationVar(&ps.HistoryTTL, "history-ttl", 5*time.Minute, "pubsub: how long a message stays in history")
	fs.DurationVar(&ps.HistoryMetaTTL, "history-meta-ttl", 24*time.Hour, "pubsub: how long a channel's numbering and epoch survive without any publish or subscriber (at least -history-ttl)")
	ps.HistoryMaxBytes = 64 << 20
	fs.Var((*byteSize)(&ps.HistoryMaxBytes), "history-max-bytes", "pubsub: memory for history across all channels (bytes; K, KiB, M, MiB suffixes); the oldest messages go first")
	cl := &o.cluster
	fs.StringVar(&cl.URLs, "nats", "", "pubsub: join a cluster through NATS JetStream at these comma-separated URLs (e.g. nats://127.0.0.1:4222); empty = single node")
	fs.StringVar(&cl.NodeID, "node-id", "", "pubsub: this node's name in logs, metrics and /api/stats (default hostname-pid)")
	fs.StringVar(&cl.Stream, "nats-stream", pubsub.DefaultStream, "pubsub: JetStream stream holding every channel's messages")
	fs.StringVar(&cl.Subject, "nats-subject", pubsub.DefaultSubject, "pubsub: prefix of the cluster's NATS subjects (channels under <prefix>.ch.>)")
	a := &o.authCfg
	fs.StringVar(&a.secret, "jwt-secret", "", "pubsub: HS256 secret of connection tokens (at least 32 bytes; prefer the env var WSGATE_JWT_SECRET); with it or -jwt-public-key every connection needs a token")
	fs.StringVar(&a.publicKey, "jwt-public-key", "", "pubsub: PEM file of the public key of RS256 (RSA 2048-4096) or ES256 (P-256) connection tokens")
	fs.StringVar(&a.audience, "jwt-audience", "", `pubsub: required "aud" of connection tokens`)
	fs.StringVar(&a.issuer, "jwt-issuer", "", `pubsub: required "iss" of connection tokens`)
	fs.StringVar(&a.origins, "allowed-origins", "", "pubsub: comma-separated Origins browsers may connect from, '*' allowed in the host (e.g. https://*.example.com); others get 403 (empty = any)")
	fs.BoolVar(&a.requireOrigin, "require-origin", false, "pubsub: refuse handshakes without an Origin header (non-browser clients) with 403")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	return fs
}

// envName is the environment variable that sets a flag.
func envName(flagName string) string {
	return "WSGATE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse applies the environment (with -env-file's variables over it), then the command line.
func parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	getenv, err := withEnvFile(args, getenv)
	if err != nil {
		return err
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if envErr != nil {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("invalid value %q for %s: %v", v, envName(f.Name), err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	return fs.Parse(args)
}

func usage(fs *flag.FlagSet, w io.Writer) func() {
	return func() {
		fmt.Fprintf(w, `wsgate: a WebSocket server for very many connections

Usage:
  wsgate [flags]                       run the server (pub/sub gateway; -mode echo for an echo server)
  wsgate sysctl show|check|apply ...   the bundled kernel profile (wsgate sysctl -h)
  wsgate token -sub ID [flags]         sign a connection token for testing (wsgate token -h)

Flags (each also read from the environment variable shown):
`)
		fs.VisitAll(func(f *flag.Flag) {
			name, help := flag.UnquoteUsage(f)
			fmt.Fprintf(w, "  -%s %s\n    \t%s", f.Name, name, help)
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "[]" {
				fmt.Fprintf(w, " (default %s)", f.DefValue)
			}
			fmt.Fprintf(w, "\n    \tenv %s\n", envName(f.Name))
		})
	}
}

// run is main with its dependencies injected; ready, when non-nil, receives the started server
// (tests use it to find the bound addresses and to stop it).
func run(args []string, stdout, stderr io.Writer, ready chan<- *wsgate.Server) int {
	if len(args) > 0 && args[0] == "sysctl" {
		return sysctlMain(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "token" {
		return tokenMain(args[1:], stdout, stderr, os.Getenv)
	}
	// A process started by a reload reports how its start went to the old process (reload.go).
	var pipe *readyPipe
	var inh *inherited
	if v := os.Getenv(upgradeEnv); v != "" {
		os.Unsetenv(upgradeEnv) // not for this process's own successor
		h, err := parseInherited(v)
		if err != nil {
			fmt.Fprintln(stderr, "wsgate:", err)
			return 2
		}
		inh = &h
		pipe = &readyPipe{f: os.NewFile(uintptr(h.ready), "reload-ready"), w: stderr}
		stderr = pipe
	}
	code := serve(args, stdout, stderr, ready, inh, pipe)
	pipe.failed(code) // a no-op once ready was reported
	return code
}

// serve parses the flags, runs the server and handles the signals: SIGINT/SIGTERM shut down,
// SIGHUP hands over to a new process (reload.go). inh and pipe are set in a process started by
// a reload.
func serve(args []string, stdout, stderr io.Writer, ready chan<- *wsgate.Server, inh *inherited, pipe *readyPipe) int {
	var o options
	fs := newFlagSet(&o, stderr)
	fs.Usage = usage(fs, stderr)
	if err := parse(fs, args, os.Getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "wsgate:", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wsgate: unexpected argument %q (see wsgate -h)\n", fs.Arg(0))
		return 2
	}
	if o.version {
		fmt.Fprintln(stdout, versionString())
		return 0
	}
	if o.drainPeriod < 0 || o.reloadTimeout <= 0 {
		fmt.Fprintln(stderr, "wsgate: -drain-period must not be negative and -reload-timeout must be positive")
		return 2
	}
	termDrain := time.Duration(0) // SIGTERM closes everyone at once unless -drain-period is set
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "drain-period" {
			termDrain = o.drainPeriod
		}
	})
	logger, err := newLogger(stderr, o.logLevel, o.logFormat)
	if err != nil {
		fmt.Fprintln(stderr, "wsgate:", err)
		return 2
	}
	o.cfg.Logger = logger
	switch o.mode {
	case wsgate.ModePubSub:
		if o.cluster.URLs != "" {
			if o.cluster.NodeID == "" {
				host, _ := os.Hostname()
				o.cluster.NodeID = fmt.Sprintf("%s-%d", host, os.Getpid())
			}
			logger = logger.With("node_id", o.cluster.NodeID)
			o.cfg.Logger = logger
			o.pubsub.Cluster = &o.cluster
		}
		o.pubsub.Logger = logger
		if err := o.authCfg.apply(&o.pubsub); err != nil {
			fmt.Fprintln(stderr, "wsgate:", err)
			return 2
		}
		if o.pubsub.Auth != nil {
			logger.Info("connection tokens required", "algorithms", strings.Join(o.pubsub.Auth.Algorithms(), ","))
		}
		app, err := pubsub.New(o.pubsub)
		if err != nil {
			fmt.Fprintln(stderr, "wsgate:", err)
			return 2
		}
		o.cfg.Handler = app
	case wsgate.ModeEcho:
		if o.authCfg.set() {
			fmt.Fprintln(stderr, "wsgate: -jwt-*, -allowed-origins and -require-origin need -mode pubsub")
			return 2
		}
		o.cfg.Handler = wsgate.Echo{}
	default:
		fmt.Fprintf(stderr, "wsgate: -mode %q: want %s or %s\n", o.mode, wsgate.ModePubSub, wsgate.ModeEcho)
		return 2
	}
	o.cfg.APIKey = o.pubsub.APIKey // the dashboard's data is behind the same key as the API
	// The command's own lines name their process: during a reload two of them write one log.
	// (The server's lines keep their layout, which scripts parse; "wsgate listening" ends with
	// the pid.)
	logger = logger.With("pid", os.Getpid())
	if inh != nil {
		if err := adoptInherited(*inh, &o.cfg); err != nil {
			logger.Error("start failed", "err", err)
			return 1
		}
	}
	prepareHost(&o.cfg, logger)
	spareP(&o.cfg, os.Getenv, logger)
	srv, err := wsgate.New(o.cfg)
	if err != nil {
		fmt.Fprintln(stderr, "wsgate:", err)
		return 2
	}
	// Signals are caught before the server is announced ready, so that a signal sent as soon as
	// it serves is a shutdown, not the default action (the process killed outright).
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	if err := srv.Start(); err != nil {
		logger.Error("start failed", "err", err)
		return 1
	}
	if o.pidFile != "" {
		if err := writePIDFile(o.pidFile, os.Getpid()); err != nil {
			logger.Error("start failed", "err", err)
			srv.Close()
			return 1
		}
	}
	notify := "READY=1"
	if inh != nil {
		notify = fmt.Sprintf("MAINPID=%d\nREADY=1", os.Getpid())
		if err := pipe.ready(); err != nil {
			// The old process is gone or gave up on this one: it keeps serving (or nothing
			// does); this process must not serve beside it unannounced.
			logger.Error("start failed: cannot report readiness to the old process", "err", err)
			srv.Close()
			return 1
		}
		logger.Info("reload: serving the inherited listeners; the old process drains")
	}
	if err := sdNotify(notify); err != nil {
		logger.Warn("could not notify the service manager", "err", err)
	}
	if ready != nil {
		ready <- srv
	}
	code, reason, period, handedOver := wsgate.StatusGoingAway, "server shutting down", termDrain, false
	for wait := true; wait; {
		select {
		case s := <-sig:
			if s != syscall.SIGHUP {
				logger.Info("signal received; shutting down", "signal", s.String(), "connections", srv.Connections(),
					"drain_period", period, "timeout", o.cfg.ShutdownTimeout)
				sdNotify("STOPPING=1")
				wait = false
				break
			}
			logger.Info("SIGHUP: reloading: starting a new process on the same listeners", "connections", srv.Connections())
			res := startSuccessor(srv, args, o.reloadTimeout, logger)
			if res.err != nil {
				logger.Error("reload failed; this process keeps serving", "err", res.err)
				continue
			}
			srv.StopAccepting()
			logger.Info("reload: the new process is ready and accepts; draining this one", "new_pid", res.pid,
				"connections", srv.Connections(), "drain_period", o.drainPeriod, "timeout", o.cfg.ShutdownTimeout)
			code, reason, period, handedOver = wsgate.StatusServiceRestart, "service restart", o.drainPeriod, true
			wait = false
		case err := <-srv.Err():
			logger.Error("event loop failed; shutting down", "err", err)
			srv.Close()
			if o.pidFile != "" {
				removePIDFile(o.pidFile, os.Getpid())
			}
			return 1
		}
	}
	// A second SIGINT/SIGTERM cuts the drain short; a SIGHUP now is too late to matter.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			select {
			case s := <-sig:
				if s == syscall.SIGHUP {
					logger.Warn("SIGHUP ignored: this process is already draining")
					continue
				}
				logger.Warn("signal received while draining; closing the remaining connections now", "signal", s.String())
				cancel()
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := srv.Drain(ctx, code, reason, period); err != nil {
		logger.Warn("shutdown incomplete", "err", err)
	} else {
		logger.Info("shutdown complete")
	}
	// After a hand-over the PID file is the new process's; otherwise it goes with this one.
	if o.pidFile != "" && !handedOver {
		removePIDFile(o.pidFile, os.Getpid())
	}
	return 0
}

// versionString reports the module version and VCS revision the binary was built from.
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "wsgate (no build information)"
	}
	v := "wsgate " + bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v += " " + s.Value
		}
	}
	return v + " " + bi.GoVersion
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format %q: want text or json", format)
}

// cpuList is a comma-separated list of CPU numbers.
type cpuList []int

func (c *cpuList) String() string {
	if c == nil {
		return ""
	}
	s := make([]string, len(*c))
	for i, v := range *c {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (c *cpuList) Set(v string) error {
	*c = nil
	if strings.TrimSpace(v) == "" {
		return nil
	}
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a CPU number", f)
		}
		*c = append(*c, n)
	}
	return nil
}

// intSize is a byteSize held in an int.
type intSize int

func (b *intSize) String() string { return strconv.Itoa(int(*b)) }

func (b *intSize) Set(v string) error {
	var n byteSize
	if err := n.Set(v); err != nil {
		return err
	}
	if int64(n) > int64(^uint(0)>>1) {
		return fmt.Errorf("%q is too large", v)
	}
	*b = intSize(n)
	return nil
}

// byteSize is a byte count with an optional K/KiB/M/MiB/G/GiB suffix (all powers of 1024).
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(v string) error {
	s := strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q is not a byte size (e.g. 1048576, 64KiB, 16MiB)", v)
	}
	*b = byteSize(n * mult)
	return nil
}
