package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/sysctl"
)

// fakeSysctl builds a sysctl tree in a temporary directory ("net.ipv4.x" is <root>/net/ipv4/x),
// so that prepareHostAt never reads, let alone writes, the real /proc/sys.
func fakeSysctl(t *testing.T, vals map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for k, v := range vals {
		p := filepath.Join(root, strings.ReplaceAll(k, ".", "/"))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// hostWarnings runs prepareHostAt on cfg against root and returns the "problem" of every
// warning it logged that is about listen ports.
func hostWarnings(t *testing.T, cfg wsgate.Config, root string) []string {
	t.Helper()
	var buf bytes.Buffer
	cfg.Conn.MaxConns = 100 // not derived: this test is not about the descriptor limit
	prepareHostAt(&cfg, slog.New(slog.NewJSONHandler(&buf, nil)), root)
	var out []string
	dec := json.NewDecoder(&buf)
	for {
		var rec struct{ Level, Msg, Problem string }
		if err := dec.Decode(&rec); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		if rec.Level == "WARN" && strings.Contains(rec.Problem, "listen port") {
			out = append(out, rec.Problem)
		}
	}
}

// TestPrepareHostWarnsAboutListenPortsInEphemeralRange: at start-up the server warns about each
// of its listen ports that an outgoing connection could take (inside ip_local_port_range, not in
// ip_local_reserved_ports), and about nothing else of the kind.
func TestPrepareHostWarnsAboutListenPortsInEphemeralRange(t *testing.T) {
	const (
		rangeKey    = "net.ipv4.ip_local_port_range"
		reservedKey = "net.ipv4.ip_local_reserved_ports"
	)
	defaults := wsgate.Config{Addr: "127.0.0.1:8080", AdminAddr: "127.0.0.1:9090"}
	cases := []struct {
		name string
		cfg  wsgate.Config
		vals map[string]string
		want []string
	}{
		{"wide range, nothing reserved", defaults, map[string]string{rangeKey: "1024\t65535", reservedKey: ""},
			[]string{"listen port 8080 (-addr 127.0.0.1:8080) is inside net.ipv4.ip_local_port_range 1024-65535",
				"listen port 9090 (-admin-addr 127.0.0.1:9090) is inside net.ipv4.ip_local_port_range 1024-65535"}},
		{"wide range, both reserved", defaults, map[string]string{rangeKey: "1024\t65535", reservedKey: "8080,9090"}, nil},
		{"wide range, one reserved in a range", defaults, map[string]string{rangeKey: "1024\t65535", reservedKey: "9000-9100"},
			[]string{"listen port 8080 (-addr 127.0.0.1:8080)"}},
		{"stock range", defaults, map[string]string{rangeKey: "32768\t60999", reservedKey: ""}, nil},
		{"admin disabled", wsgate.Config{Addr: ":40000"}, map[string]string{rangeKey: "32768\t60999", reservedKey: ""},
			[]string{"listen port 40000 (-addr :40000)"}},
		{"empty addr is the server's default", wsgate.Config{}, map[string]string{rangeKey: "1024\t65535", reservedKey: "22"},
			[]string{"listen port 8080 (-addr 127.0.0.1:8080)"}},
		{"port 0", wsgate.Config{Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0"}, map[string]string{rangeKey: "1\t65535"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			warn := hostWarnings(t, c.cfg, fakeSysctl(t, c.vals))
			if len(warn) != len(c.want) {
				t.Fatalf("%d listen-port warnings, want %d: %q", len(warn), len(c.want), warn)
			}
			for i, w := range c.want {
				if !strings.Contains(warn[i], w) || !strings.Contains(warn[i], "bind: address already in use") {
					t.Errorf("warning %d: %q, want it to contain %q and the symptom", i, warn[i], w)
				}
			}
		})
	}
}

// TestDefaultListenPortsAreReservedByProfile: the server's default -addr and -admin-addr are the
// ones the sysctl package knows, and the bundled profile reserves their ports: on a host whose
// whole port space is ephemeral, the profile's reserved list alone protects both listeners.
func TestDefaultListenPortsAreReservedByProfile(t *testing.T) {
	var o options
	fs := newFlagSet(&o, io.Discard)
	if got := fs.Lookup("addr").DefValue; got != sysctl.DefaultAddr {
		t.Errorf("-addr default %q, sysctl.DefaultAddr %q", got, sysctl.DefaultAddr)
	}
	if got := fs.Lookup("admin-addr").DefValue; got != sysctl.DefaultAdminAddr {
		t.Errorf("-admin-addr default %q, sysctl.DefaultAdminAddr %q", got, sysctl.DefaultAdminAddr)
	}
	var reserved string
	for _, e := range sysctl.Profile() {
		if e.Key == "net.ipv4.ip_local_reserved_ports" {
			reserved = e.Value
		}
	}
	if reserved == "" {
		t.Fatal("the profile does not reserve any port")
	}
	root := fakeSysctl(t, map[string]string{"net.ipv4.ip_local_port_range": "1\t65535", "net.ipv4.ip_local_reserved_ports": reserved})
	cfg := wsgate.Config{Addr: fs.Lookup("addr").DefValue, AdminAddr: fs.Lookup("admin-addr").DefValue}
	if warn := hostWarnings(t, cfg, root); len(warn) != 0 {
		t.Errorf("with the profile's reserved ports %q: %q", reserved, warn)
	}
}

// TestSpareP: the loops' default is taken before GOMAXPROCS is raised to one more than the
// loops, and a GOMAXPROCS from the environment is left alone.
func TestSpareP(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	noEnv := func(string) string { return "" }

	runtime.GOMAXPROCS(2)
	cfg := wsgate.Config{}
	spareP(&cfg, noEnv, log)
	if cfg.Loops != 2 || runtime.GOMAXPROCS(0) != 3 {
		t.Fatalf("default loops: loops %d, GOMAXPROCS %d; want 2 and 3", cfg.Loops, runtime.GOMAXPROCS(0))
	}

	runtime.GOMAXPROCS(2)
	cfg = wsgate.Config{Loops: 4}
	spareP(&cfg, noEnv, log)
	if cfg.Loops != 4 || runtime.GOMAXPROCS(0) != 5 {
		t.Fatalf("4 loops: loops %d, GOMAXPROCS %d; want 4 and 5", cfg.Loops, runtime.GOMAXPROCS(0))
	}

	runtime.GOMAXPROCS(8)
	cfg = wsgate.Config{Loops: 2}
	spareP(&cfg, noEnv, log)
	if runtime.GOMAXPROCS(0) != 8 {
		t.Fatalf("GOMAXPROCS already above the loops was changed to %d", runtime.GOMAXPROCS(0))
	}

	runtime.GOMAXPROCS(2)
	cfg = wsgate.Config{}
	spareP(&cfg, func(k string) string {
		if k == "GOMAXPROCS" {
			return "2"
		}
		return ""
	}, log)
	if cfg.Loops != 2 || runtime.GOMAXPROCS(0) != 2 {
		t.Fatalf("GOMAXPROCS from the environment: loops %d, GOMAXPROCS %d; want 2 and 2", cfg.Loops, runtime.GOMAXPROCS(0))
	}
}
