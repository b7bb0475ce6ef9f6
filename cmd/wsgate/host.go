package main

import (
	"io"
	"log/slog"
	"runtime"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/sysctl"
)

func sysctlMain(args []string, stdout, stderr io.Writer) int {
	return sysctl.Main(args, stdout, stderr)
}

// prepareHost raises the open-files limit to its hard limit, derives -max-conns from it when the
// flag was left at 0, and logs what on this host cannot support the configured load or may keep
// the listeners from binding (see prepareHostAt). It never fails the start.
func prepareHost(cfg *wsgate.Config, log *slog.Logger) {
	prepareHostAt(cfg, log, sysctl.DefaultRoot)
}

// spareP gives the Go runtime one P (scheduler processor) more than the server has event loops,
// unless GOMAXPROCS is set in the environment (then the operator's number stands). A loop blocks
// in epoll_wait holding its P in a system call; when every P is held that way, the runtime's
// sysmon takes the P away from each blocked loop within 20 µs so that some other goroutine could
// run, and every pass of every loop then pays thread hand-offs and futex wake-ups on its way back.
// With one idle P the loops keep theirs, and the HTTP API, NATS and the garbage collector run on
// the spare one. It fills in cfg.Loops' default (one per P) before raising the count, so the
// spare P does not become one more loop. Main goroutine, before the server is created.
func spareP(cfg *wsgate.Config, getenv func(string) string, log *slog.Logger) {
	if cfg.Loops <= 0 {
		cfg.Loops = runtime.GOMAXPROCS(0)
	}
	if getenv("GOMAXPROCS") != "" {
		return
	}
	if p := runtime.GOMAXPROCS(0); p <= cfg.Loops {
		runtime.GOMAXPROCS(cfg.Loops + 1)
		log.Debug("GOMAXPROCS raised to one more than the event loops", "loops", cfg.Loops, "from", p, "to", cfg.Loops+1)
	}
}

// prepareHostAt is prepareHost reading the sysctls under root (tests pass a fake tree). A host
// that is short gets warnings, and -max-conns keeps the server from running into EMFILE. A
// listen port inside net.ipv4.ip_local_port_range that is not in ip_local_reserved_ports gets a
// warning too: an outgoing connection can take it, and a restart then fails to bind. Main
// goroutine, before the server starts (it changes the process's RLIMIT_NOFILE).
func prepareHostAt(cfg *wsgate.Config, log *slog.Logger, root string) {
	soft, hard, err := sysctl.RaiseNOFILE()
	if err != nil {
		log.Warn("could not raise the open-files limit", "soft", soft, "hard", hard, "err", err)
	} else {
		log.Info("open-files limit", "soft", soft, "hard", hard)
	}
	if cfg.Conn.MaxConns <= 0 {
		cfg.Conn.MaxConns = int64(sysctl.DefaultMaxConns(soft))
		log.Info("max-conns derived from the open-files limit", "max_conns", cfg.Conn.MaxConns)
	}
	for _, w := range sysctl.Readiness(root, int(cfg.Conn.MaxConns), soft) {
		log.Warn("host readiness", "problem", w)
	}
	addr := cfg.Addr
	if addr == "" {
		addr = sysctl.DefaultAddr // what wsgate.New uses for an empty Addr
	}
	listeners := []sysctl.Listener{{Name: "-addr", Addr: addr}, {Name: "-admin-addr", Addr: cfg.AdminAddr}}
	for _, w := range sysctl.ListenPortWarnings(root, listeners...) {
		log.Warn("host readiness", "problem", w)
	}
}
