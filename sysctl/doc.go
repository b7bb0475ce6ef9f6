// Package sysctl holds wsgate's bundled kernel profile and compares a host with it: it parses
// the embedded profile (million.conf), checks the live values under /proc/sys (see proc_sys(5)
// and sysctl(8)), raises what falls short, writes a sysctl.d(5) file for reboots, and checks the
// process's RLIMIT_NOFILE (getrlimit(2)) against the connections the server is asked to hold.
// `wsgate sysctl show|check|apply` is Main; the server calls RaiseNOFILE, DefaultMaxConns,
// Readiness and ListenPortWarnings at start-up.
//
// Invariants:
//   - The profile is the single source of truth: every key, its comparison rule and its
//     explanation live in million.conf, whose syntax is documented at its top. Profile panics
//     with "BUG: ..." if the embedded file does not parse; a test proves that it does.
//   - Nothing is ever made worse: a min or ram/UNIT field that is already higher is never
//     lowered, a max field that is already lower is never raised, a range is only widened, a
//     port list (net.ipv4.ip_local_reserved_ports) only gains ports: apply writes the union of
//     the host's list and the wanted one. Fields marked "*" are never compared or changed.
//   - A key whose file does not exist under the root (module not loaded, older kernel) is
//     reported as StatusMissing and never counts as falling short or as an error.
//   - Every function takes the sysctl root as a parameter ("/proc/sys" in production, a
//     temporary directory in tests); no function writes outside the root it is given, except
//     Persist and PersistFrom, which write the path they are given (through a temporary file
//     in the same directory). A key is only mapped to a path after it passed the parser's key
//     check, so it cannot escape the root, and a key file is never created.
//   - The package holds no mutable state: the parsed profile is computed once and copied out.
//     All functions are safe to call from any goroutine; RaiseNOFILE changes a process-wide
//     limit and belongs to start-up, before the event loops open sockets.
package sysctl
