package sysctl

import (
	"fmt"
	"math"
	"syscall"
)

// WantNOFILE is the hard RLIMIT_NOFILE `wsgate sysctl check` asks of the process, and the
// LimitNOFILE= of docs/wsgate.service: DefaultMaxConns(WantNOFILE) is just over a million
// connections. It is the kernel's default fs.nr_open; the profile raises fs.nr_open further so
// it is never the ceiling.
const WantNOFILE = 1 << 20

// Descriptors kept back from connections by DefaultMaxConns: reservedFDs fixed ones (stdio, one
// listener, epoll instance and eventfd per loop on hosts with up to ~80 CPUs, the admin and
// metrics listeners and their clients, broker connections, log files, the Go runtime's own)
// plus 1/reservedShare of the limit for connections accepted past -max-conns, which hold a
// descriptor until their HTTP 503 is written and they are closed.
const (
	reservedFDs   = 256
	reservedShare = 64
)

// RaiseNOFILE raises the process's soft RLIMIT_NOFILE to its hard limit (getrlimit(2),
// setrlimit(2)) and returns the limits in force afterwards. Lowering never happens. Go programs
// importing os already do this at start-up (Go 1.19 and later); calling it makes the step
// explicit, reports the values to log, and covers a limit lowered since. On error the returned
// limits are those read before the failed attempt (zero if even reading failed).
//
// It changes a process-wide limit: call it once at start-up, before the event loops run.
func RaiseNOFILE() (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, fmt.Errorf("sysctl: getrlimit(RLIMIT_NOFILE): %w", err)
	}
	if lim.Cur < lim.Max {
		raised := syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			return lim.Cur, lim.Max, fmt.Errorf("sysctl: raise RLIMIT_NOFILE soft limit %d to the hard limit %d: %w",
				lim.Cur, lim.Max, err)
		}
		lim = raised
	}
	return lim.Cur, lim.Max, nil
}

// DefaultMaxConns is the -max-conns default for a process whose RLIMIT_NOFILE soft limit is
// nofile: the limit minus 256 descriptors and 1/64 of the limit kept for everything that is not
// a client connection (see reservedFDs), and never more than half of a small limit. It is
// non-decreasing in nofile and never negative; DefaultMaxConns(1<<20) is 1031936.
func DefaultMaxConns(nofile uint64) int {
	const maxFD = math.MaxInt32 // descriptors are C ints; no limit can exceed this
	if nofile > maxFD {
		nofile = maxFD
	}
	return int(nofile - reserveFor(nofile))
}

// reserveFor is how many of nofile descriptors DefaultMaxConns keeps back from connections.
func reserveFor(nofile uint64) uint64 {
	return min(nofile/2, reservedFDs+nofile/reservedShare)
}
