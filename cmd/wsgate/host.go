package main

import (
	"io"
	"log/slog"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/sysctl"
)

func sysctlMain(args []string, stdout, stderr io.Writer) int {
	return sysctl.Main(args, stdout, stderr)
}

// prepareHost raises the open-files limit to its hard limit, derives -max-conns from it when the
// flag was left at 0, and logs what on this host cannot support the configured load. It never
// fails the start: a host that is short gets warnings, and -max-conns keeps the server from
// running into EMFILE.
func prepareHost(cfg *wsgate.Config, log *slog.Logger) {
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
	for _, w := range sysctl.Readiness("/proc/sys", int(cfg.Conn.MaxConns), soft) {
		log.Warn("host readiness", "problem", w)
	}
}
