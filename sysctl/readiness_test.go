package sysctl

import (
	"strings"
	"testing"
)

// warningsAbout returns the warnings that start with or mention key.
func warningsAbout(warn []string, key string) []string {
	var out []string
	for _, w := range warn {
		if strings.Contains(w, key) {
			out = append(out, w)
		}
	}
	return out
}

func TestReadinessGoodHost(t *testing.T) {
	h := testHost(fakeRoot(t, goodValues(t)))
	if warn := h.readiness(1_000_000, 1<<20); len(warn) != 0 {
		t.Errorf("a host meeting the profile, 1M connections, LimitNOFILE=%d: %q", 1<<20, warn)
	}
}

func TestReadinessStockHost(t *testing.T) {
	h := testHost(fakeRoot(t, stockValues))
	warn := h.readiness(1_000_000, 1<<20)
	for _, key := range []string{
		"net.core.somaxconn is 4096",
		"net.ipv4.tcp_max_syn_backlog is 2048",
		"net.ipv4.ip_local_port_range 32768-60999 gives 28232 ports",
		"net.netfilter.nf_conntrack_max is 262144",
		"net.ipv4.tcp_mem allows TCP 575796 pages",
	} {
		if len(warningsAbout(warn, key)) != 1 {
			t.Errorf("want one warning containing %q in %q", key, warn)
		}
	}
	for _, key := range []string{"RLIMIT_NOFILE", "fs.file-max", "max_user_watches", "tcp_rmem"} {
		if got := warningsAbout(warn, key); len(got) != 0 {
			t.Errorf("unexpected warning about %s: %q", key, got)
		}
	}
	if len(warn) != 5 {
		t.Errorf("%d warnings, want 5: %q", len(warn), warn)
	}
}

func TestReadinessSmallDeployment(t *testing.T) {
	// 20000 connections on a stock host: the backlogs, the port range, conntrack and tcp_mem all
	// suffice, so nothing is said.
	h := testHost(fakeRoot(t, stockValues))
	if warn := h.readiness(19000, 20000); len(warn) != 0 {
		t.Errorf("stock host, 19000 connections: %q", warn)
	}
}

func TestReadinessFDLimit(t *testing.T) {
	h := testHost(fakeRoot(t, goodValues(t)))
	warn := h.readiness(50000, 20000)
	if got := warningsAbout(warn, "RLIMIT_NOFILE soft limit 20000 holds about 19432 connections"); len(got) != 1 {
		t.Errorf("want the descriptor warning: %q", warn)
	}
	// maxConns <= 0 means the default for the limit, which fits by definition.
	if warn := h.readiness(0, 20000); len(warn) != 0 {
		t.Errorf("default -max-conns: %q", warn)
	}
	// System-wide limits below the connections.
	h = testHost(fakeRoot(t, with(goodValues(t), "fs.file-max", "500000", "fs.epoll.max_user_watches", "400000")))
	warn = h.readiness(1_000_000, 1<<20)
	if len(warningsAbout(warn, "fs.file-max is 500000")) != 1 || len(warningsAbout(warn, "fs.epoll.max_user_watches is 400000")) != 1 {
		t.Errorf("want file-max and epoll warnings: %q", warn)
	}
}

func TestReadinessMemory(t *testing.T) {
	// tcp_mem above RAM: 16 GiB is 4194304 pages.
	h := testHost(fakeRoot(t, with(goodValues(t), "net.ipv4.tcp_mem", "5000000 6000000 9000000")))
	if warn := h.readiness(100000, 1<<20); len(warningsAbout(warn, "more than this host's RAM")) != 1 {
		t.Errorf("want the tcp_mem-above-RAM warning: %q", warn)
	}
	// Raised per-socket floors: 64 KiB + 64 KiB over 1M sockets is far above a quarter of 16 GiB.
	h = testHost(fakeRoot(t, with(goodValues(t),
		"net.ipv4.tcp_rmem", "65536 131072 6291456", "net.ipv4.tcp_wmem", "65536 65536 4194304")))
	if warn := h.readiness(1_000_000, 1<<20); len(warningsAbout(warn, "guarantee every socket 131072 bytes")) != 1 {
		t.Errorf("want the socket floor warning: %q", warn)
	}
	// The same floors for 1000 connections are harmless.
	if warn := h.readiness(1000, 1<<20); len(warn) != 0 {
		t.Errorf("1000 connections: %q", warn)
	}
}

func TestReadinessMissingAndBrokenKeys(t *testing.T) {
	// An empty root: nothing to judge, nothing to say.
	if warn := testHost(t.TempDir()).readiness(1_000_000, 1<<20); len(warn) != 0 {
		t.Errorf("empty root: %q", warn)
	}
	h := testHost(fakeRoot(t, with(goodValues(t), "net.core.somaxconn", "many", "net.ipv4.tcp_mem", "1 2")))
	warn := h.readiness(1000, 1<<20)
	if len(warningsAbout(warn, "net.core.somaxconn: cannot read it")) != 1 ||
		len(warningsAbout(warn, "net.ipv4.tcp_mem: has 2 fields, expected 3")) != 1 || len(warn) != 2 {
		t.Errorf("want exactly the two unreadable-key warnings: %q", warn)
	}
}

func TestReadinessExported(t *testing.T) {
	warn := Readiness(fakeRoot(t, stockValues), 1_000_000, 1<<20)
	if len(warningsAbout(warn, "net.core.somaxconn is 4096")) != 1 {
		t.Errorf("Readiness on a stock root: %q", warn)
	}
}

func TestProfilePorts(t *testing.T) {
	if got := profilePorts(); got != 55536 {
		t.Errorf("profilePorts() = %d, want 55536 (10000-65535)", got)
	}
}
