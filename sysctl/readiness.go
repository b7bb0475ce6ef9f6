package sysctl

import (
	"fmt"
	"math"
)

// Backlog sizing used by Readiness: after a restart every client reconnects within seconds, and
// the accept and SYN queues should absorb a sixteenth of them arriving at once, between the
// kernel's old default of 128 and the profile's 65535.
const (
	backlogShare = 16
	backlogMin   = 128
	backlogMax   = 65535
)

// Readiness checks whether the host under root ("/proc/sys" in production) and a process whose
// soft RLIMIT_NOFILE is soft can hold maxConns connections (0 or less means
// DefaultMaxConns(soft)), and returns one human-readable warning per problem, nil when there is
// none. The server logs them at start-up and runs anyway: they predict trouble under load, they
// do not stop it. Keys missing on the host are skipped; keys that cannot be read produce a
// warning saying so. Checked: the descriptor limit, fs.file-max, fs.epoll.max_user_watches, the
// accept and SYN backlogs, the ephemeral port range (for outbound connections), the conntrack
// table, and tcp_mem/tcp_rmem/tcp_wmem against the connections and the host's RAM.
//
// Safe to call from any goroutine; it only reads.
func Readiness(root string, maxConns int, soft uint64) []string {
	return liveHost(root).readiness(maxConns, soft)
}

func (h host) readiness(maxConns int, soft uint64) []string {
	var warn []string
	say := func(format string, args ...any) { warn = append(warn, fmt.Sprintf(format, args...)) }
	// get reads a key with the number of fields expected; ok is false when the key is missing
	// or unusable (the latter also produces a warning).
	get := func(key string, nfields int) (v []uint64, ok bool) {
		v, present, err := h.readUints(key)
		switch {
		case !present:
			return nil, false
		case err != nil:
			say("%s: cannot read it: %v", key, err)
			return nil, false
		case len(v) != nfields:
			say("%s: has %d fields, expected %d", key, len(v), nfields)
			return nil, false
		}
		return v, true
	}

	if maxConns <= 0 {
		maxConns = DefaultMaxConns(soft)
	}
	conns := uint64(maxConns)
	if fit := DefaultMaxConns(soft); maxConns > fit {
		say("RLIMIT_NOFILE soft limit %d holds about %d connections after %d descriptors kept for listeners, "+
			"epoll, logs and the admin API; -max-conns %d is higher, so accept(2) will fail with EMFILE "+
			"before the server refuses connections cleanly. Raise LimitNOFILE= (docs/tuning.md) or lower -max-conns",
			soft, fit, reserveFor(min(soft, math.MaxInt32)), maxConns)
	}
	fds := conns + reserveFor(min(soft, math.MaxInt32))
	if v, ok := get("fs.file-max", 1); ok && v[0] < fds {
		say("fs.file-max is %d, below the %d open files -max-conns %d needs with this process's reserve: "+
			"the whole host will fail with ENFILE first (wsgate sysctl apply)", v[0], fds, maxConns)
	}
	if v, ok := get("fs.epoll.max_user_watches", 1); ok && v[0] < fds {
		say("fs.epoll.max_user_watches is %d, below the %d epoll registrations -max-conns %d needs: "+
			"epoll_ctl(2) will fail with ENOSPC (wsgate sysctl apply)", v[0], fds, maxConns)
	}

	backlog := min(max(conns/backlogShare, backlogMin), backlogMax)
	if v, ok := get("net.core.somaxconn", 1); ok && v[0] < backlog {
		say("net.core.somaxconn is %d: each listener's accept queue is capped there, and a reconnect storm "+
			"of %d clients wants about %d; clients beyond it retry with backoff (wsgate sysctl apply)",
			v[0], maxConns, backlog)
	}
	if v, ok := get("net.ipv4.tcp_max_syn_backlog", 1); ok && v[0] < backlog {
		say("net.ipv4.tcp_max_syn_backlog is %d: half-open connections beyond it rely on SYN cookies; "+
			"a reconnect storm of %d clients wants about %d (wsgate sysctl apply)", v[0], maxConns, backlog)
	}

	// Inbound connections use no local ports; the range only limits connections this host
	// opens to one address and port (a proxy or load driver in front of wsgate, for example).
	// Warn when it is narrower than the profile's and cannot cover -max-conns.
	if v, ok := get("net.ipv4.ip_local_port_range", 2); ok && v[1] >= v[0] {
		ports := v[1] - v[0] + 1
		if ports < conns && ports < profilePorts() {
			say("net.ipv4.ip_local_port_range %d-%d gives %d ports per destination address and port: "+
				"fine for inbound connections, but a proxy or load driver on this host can open only that many "+
				"connections to one wsgate address (wsgate sysctl apply widens it)", v[0], v[1], ports)
		}
	}

	if v, ok := get("net.netfilter.nf_conntrack_max", 1); ok && v[0] < conns {
		say("net.netfilter.nf_conntrack_max is %d, below -max-conns %d: when the table is full the kernel "+
			"drops new connections' packets (\"nf_conntrack: table full\"); raise it (wsgate sysctl apply) or "+
			"exempt the port from tracking", v[0], maxConns)
	}

	if v, ok := get("net.ipv4.tcp_mem", 3); ok && h.pageSize != 0 {
		ramPages := h.ram / h.pageSize
		if v[2] < conns {
			say("net.ipv4.tcp_mem allows TCP %d pages (%.1f GiB) of buffers; a message pushed to all %d "+
				"connections holds about one page per socket until acknowledged, so broadcasts will hit the "+
				"limit (wsgate sysctl apply; docs/tuning.md explains the sizing)",
				v[2], gib(v[2], h.pageSize), maxConns)
		}
		if ramPages != 0 && v[2] > ramPages {
			say("net.ipv4.tcp_mem maximum %d pages (%.1f GiB) is more than this host's RAM (%.1f GiB): TCP will "+
				"never push back before the host runs out of memory; lower it by hand (apply never lowers it)",
				v[2], gib(v[2], h.pageSize), gib(h.ram, 1))
		}
	}

	// Under memory pressure every socket still keeps the first field of tcp_rmem and tcp_wmem.
	// The kernel default is one page each; warn when someone raised them far enough that the
	// guarantee alone, over every connection, is more than a quarter of RAM.
	r, rok := get("net.ipv4.tcp_rmem", 3)
	w, wok := get("net.ipv4.tcp_wmem", 3)
	if rok && wok && h.ram != 0 && conns != 0 {
		floor := float64(r[0]) + float64(w[0])
		if floor > 2*float64(h.pageSize) && floor*float64(conns) > float64(h.ram)/4 {
			say("net.ipv4.tcp_rmem and tcp_wmem guarantee every socket %.0f bytes even under memory pressure; "+
				"over %d connections that is %.1f GiB of this host's %.1f GiB. The kernel default is one page each",
				floor, maxConns, floor*float64(conns)/(1<<30), gib(h.ram, 1))
		}
	}
	return warn
}

// profilePorts is the size of the profile's ip_local_port_range (10000-65535 is 55536 ports).
func profilePorts() uint64 {
	for _, r := range parsedProfile() {
		if r.Key == "net.ipv4.ip_local_port_range" {
			return r.fields[1].n - r.fields[0].n + 1
		}
	}
	panic("BUG: sysctl profile has no net.ipv4.ip_local_port_range")
}

// gib returns n units of unit bytes in GiB, in floating point so that no product overflows.
func gib(n, unit uint64) float64 { return float64(n) * float64(unit) / (1 << 30) }
