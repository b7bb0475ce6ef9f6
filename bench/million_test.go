package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The tests of bench/million.sh (`make million`): its logic at a small scale and its refusals.
// The script is a black box here: it is run with bash, and only its exit status, its output and
// the files it writes are looked at.

// millionScript runs bench/million.sh from the module root with env added to this process's
// environment, bounded by timeout. It returns the exit status and the combined output.
func millionScript(t *testing.T, timeout time.Duration, env ...string) (int, string) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "bench/million.sh")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), env...)
	// On the timeout, SIGTERM lets the script stop what it started; SIGKILL only after WaitDelay.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 90 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("million.sh did not finish within %v:\n%s", timeout, out.String())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String()
	}
	t.Fatalf("million.sh: %v\n%s", err, out.String())
	return -1, ""
}

// A host that cannot carry the run and a missing nats-server are refused before anything is
// started, with a message that says why and exit status 2.
func TestMillionScriptRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		want []string
	}{
		{
			name: "memory",
			// A billion connections need terabytes: far more than any CI host has.
			env:  []string{"CONNS=1000000000", "PER_NODE=15000"},
			want: []string{"refusing to run", "MiB", "MemAvailable", "ask for at most about"},
		},
		{
			name: "nats-server",
			env:  []string{"CONNS=1000", "NATS_SERVER=/nonexistent/nats-server"},
			want: []string{"refusing to run", "nats-server not found at /nonexistent/nats-server"},
		},
		{
			name: "open files",
			env:  []string{"CONNS=1000", "PER_NODE=100000000"},
			want: []string{"refusing to run", "open-files limit"},
		},
		{
			// The CPU budget is a warning printed before the run starts (here it then stops at
			// the missing nats-server).
			name: "cpu warning",
			env:  []string{"CONNS=1000", "PING_CPU_US=100000000", "NATS_SERVER=/nonexistent/nats-server"},
			want: []string{"warning: pings every 25s to 1000 connections", "CPUs for both ends", "refusing to run", "nats-server not found"},
		},
		{
			name: "bad cpu estimate",
			env:  []string{"CONNS=1000", "FANOUT_CPU_US=lots"},
			want: []string{"refusing to run", "FANOUT_CPU_US must be a whole number"},
		},
		{
			name: "open files per driver",
			env:  []string{"CONNS=1000", "PER_DRIVER=100000000"},
			want: []string{"refusing to run", "in one wsbench worker under the open-files limit"},
		},
		{
			name: "not loopback",
			env:  []string{"CONNS=1000", "SRC=10.0.0.1-10.0.0.9"},
			want: []string{"refusing to run", "loopback"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			env := append([]string{"BUILD=0", "BIN=" + filepath.Join(out, "nobin"), "OUT=" + filepath.Join(out, "res")}, tc.env...)
			code, text := millionScript(t, 60*time.Second, env...)
			if code != 2 {
				t.Fatalf("exit status %d, want 2; output:\n%s", code, text)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("output lacks %q:\n%s", w, text)
				}
			}
			if _, err := os.Stat(filepath.Join(out, "res", "report.json")); err == nil {
				t.Errorf("a refused run wrote a report")
			}
		})
	}
}

// findNATS returns a nats-server binary: the repository's bin/ (make nats-server), then $PATH.
func findNATS() string {
	if p, err := filepath.Abs("../bin/nats-server"); err == nil {
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	return ""
}

// buildBinaries builds wsgate and wsbench into dir (the script's BIN).
func buildBinaries(t *testing.T, dir string) {
	t.Helper()
	for _, b := range []string{"wsgate", "wsbench"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b), "./cmd/"+b)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b, err, out)
		}
	}
}

// millionReport is the part of report.json the test checks.
type millionReport struct {
	Config struct {
		Conns   int `json:"conns"`
		Nodes   int `json:"nodes"`
		Drivers int `json:"drivers"`
	} `json:"config"`
	Connections struct {
		Target           int64                           `json:"target"`
		Opened           int64                           `json:"opened"`
		Failed           *int64                          `json:"failed"`
		FailuresByReason map[string]int64                `json:"failures_by_reason"`
		HeldAtEnd        int64                           `json:"held_at_end"`
		HeldServer       int64                           `json:"held_at_end_of_hold_server"`
		Unexpected       *int64                          `json:"unexpected_closes"`
		ConnectRate      float64                         `json:"connect_rate"`
		Handshake        struct{ P50, P99, Max float64 } `json:"handshake_us"`
	} `json:"connections"`
	Delivery struct {
		Publishes int64    `json:"publishes"`
		Expected  int64    `json:"expected"`
		Delivered int64    `json:"delivered"`
		Ratio     *float64 `json:"ratio"`
		SeqGaps   *int64   `json:"seq_gaps"`
		Latency   struct {
			Count         int64
			P50, P99, Max float64
		} `json:"latency_us"`
	} `json:"delivery"`
	Memory struct {
		RSSBefore     int64   `json:"server_rss_kb_before"`
		RSSEnd        int64   `json:"server_rss_kb_end_of_hold"`
		RSSPerConn    float64 `json:"server_rss_bytes_per_conn"`
		SlabBefore    int64   `json:"slab_kb_before"`
		SlabEnd       int64   `json:"slab_kb_end_of_hold"`
		KernelPerConn float64 `json:"kernel_bytes_per_conn"`
		MemAvailMin   int64   `json:"memavailable_kb_min"`
	} `json:"memory"`
	CPU struct {
		HZ    int `json:"hz"`
		Setup struct {
			ServerCPU       float64 `json:"server_cpu_s"`
			ServerUsPerConn float64 `json:"server_us_per_conn"`
			DriverUsPerConn float64 `json:"driver_us_per_conn"`
		} `json:"setup"`
		Hold struct {
			Seconds   float64 `json:"seconds"`
			ServerCPU float64 `json:"server_cpu_s"`
		} `json:"hold"`
		Heartbeat *struct {
			Seconds     float64 `json:"seconds"`
			ServerCores float64 `json:"server_cores"`
		} `json:"heartbeat_only"`
		Fanout struct {
			Windows     int     `json:"windows"`
			Deliveries  int64   `json:"deliveries"`
			ServerCores float64 `json:"server_cores"`
		} `json:"fanout"`
	} `json:"cpu"`
	Samples struct {
		Count int `json:"count"`
		Hold  int `json:"hold"`
	} `json:"samples"`
	PIDs struct {
		NATS    int   `json:"nats"`
		Nodes   []int `json:"nodes"`
		WSBench int   `json:"wsbench"`
		Drivers []int `json:"drivers"`
	} `json:"pids"`
	Sysctl struct {
		Applied bool `json:"applied"`
	} `json:"sysctl"`
	Problems []string `json:"problems"`
	OK       *bool    `json:"ok"`
}

// running reports whether pid is a live process (a zombie is not).
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// The script at a small scale, end to end: 3 wsgate nodes through a real nats-server, 6,000
// connections from 2 wsbench workers, a 20 s hold with pings every 5 s and a publish every 4 s.
// Every number in its report must come from a measurement, and nothing it started may be left.
func TestMillionScriptSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a 30 s run of 3 wsgate nodes and nats-server")
	}
	for _, tool := range []string{"curl", "jq", "awk", "pgrep"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("no %s: .ci/run installs it", tool)
			}
			t.Skipf("no %s", tool)
		}
	}
	dir := t.TempDir()
	buildBinaries(t, dir)
	nats := findNATS()
	if nats == "" {
		// The nats-server module is a dependency of this one (the cluster tests run it
		// in-process): build its binary rather than skip.
		nats = filepath.Join(dir, "nats-server")
		cmd := exec.Command("go", "build", "-o", nats, "github.com/nats-io/nats-server/v2")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building nats-server: %v\n%s", err, out)
		}
	}
	res := filepath.Join(dir, "res")
	const conns = 6000
	code, text := millionScript(t, 180*time.Second,
		"CONNS="+strconv.Itoa(conns), "PER_NODE=2000", "PER_DRIVER=3000", "RATE=1500", "HOLD=20s",
		"PUBLISH_EVERY=4", "PING_INTERVAL=5s", "DRAIN=15s", "BUILD=0", "BIN="+dir, "NATS_SERVER="+nats,
		"OUT="+res, "APPLY_SYSCTL=0")
	if code != 0 {
		t.Fatalf("exit status %d; output:\n%s", code, text)
	}
	for _, w := range []string{"[wsbench", "[pubsub setup]", "[pubsub measure]", "[million", "held ", "targets "} {
		if !strings.Contains(text, w) {
			t.Errorf("output lacks the progress or summary text %q", w)
		}
	}
	b, err := os.ReadFile(filepath.Join(res, "report.json"))
	if err != nil {
		t.Fatalf("report: %v\n%s", err, text)
	}
	var r millionReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	t.Logf("summary:\n%s", must(os.ReadFile(filepath.Join(res, "summary.txt"))))

	// Nothing it started is left running.
	pids := append([]int{r.PIDs.NATS, r.PIDs.WSBench}, r.PIDs.Nodes...)
	pids = append(pids, r.PIDs.Drivers...)
	for _, p := range pids {
		if p <= 0 {
			t.Errorf("report lists pid %d", p)
		} else if running(p) {
			t.Errorf("pid %d is still running after the script ended", p)
		}
	}
	if len(r.PIDs.Nodes) != 3 || len(r.PIDs.Drivers) < 1 {
		t.Errorf("pids: %d nodes, %d drivers; want 3 and at least 1", len(r.PIDs.Nodes), len(r.PIDs.Drivers))
	}

	// The plan and the connections. A busy machine may lose a few handshakes; most must hold.
	c := r.Connections
	if r.Config.Conns != conns || r.Config.Nodes != 3 || r.Config.Drivers != 2 || c.Target != conns {
		t.Errorf("config: %+v, target %d", r.Config, c.Target)
	}
	if c.Opened < conns*95/100 || c.HeldAtEnd < conns*95/100 || c.HeldServer < conns*95/100 {
		t.Errorf("opened %d, held %d (server: %d) of %d", c.Opened, c.HeldAtEnd, c.HeldServer, conns)
	}
	if c.Failed == nil || c.Unexpected == nil || c.FailuresByReason == nil {
		t.Errorf("failures or unexpected closes missing: %s", b)
	} else if *c.Failed < 0 || *c.Unexpected < 0 {
		t.Errorf("failed %d, unexpected closes %d", *c.Failed, *c.Unexpected)
	}
	if !(c.ConnectRate > 0 && c.ConnectRate < 1e6) {
		t.Errorf("connect rate %v", c.ConnectRate)
	}
	if !(c.Handshake.P50 > 0 && c.Handshake.P99 >= c.Handshake.P50 && c.Handshake.Max >= c.Handshake.P99) {
		t.Errorf("handshake µs %+v", c.Handshake)
	}

	// Deliveries: every publish reached every subscriber, with real latencies.
	d := r.Delivery
	if d.Publishes < 3 || d.Expected < 3*conns*95/100 || d.Delivered <= 0 {
		t.Errorf("publishes %d, expected %d, delivered %d", d.Publishes, d.Expected, d.Delivered)
	}
	if d.Ratio == nil || *d.Ratio < 0.99 || *d.Ratio > 1 || d.SeqGaps == nil || *d.SeqGaps > d.Expected/100 {
		t.Errorf("ratio %v, seq gaps %v", d.Ratio, d.SeqGaps)
	}
	l := d.Latency
	if l.Count != d.Delivered || !(l.P50 > 0 && l.P99 >= l.P50 && l.Max >= l.P99 && l.Max < 60e6) {
		t.Errorf("latency µs %+v for %d deliveries", l, d.Delivered)
	}

	// Memory per connection: measured growth, in a plausible range.
	m := r.Memory
	if !(m.RSSBefore > 0 && m.RSSEnd > m.RSSBefore && m.RSSPerConn > 50 && m.RSSPerConn < 100_000) {
		t.Errorf("wsgate RSS: %d kB before, %d kB after, %.0f B per connection", m.RSSBefore, m.RSSEnd, m.RSSPerConn)
	}
	// Kernel memory is host-wide (/proc/meminfo Slab, /proc/net/sockstat): other work on the
	// machine may free more than 6,000 connections take during the run, so its sign is the host's
	// business; the samples must be there and the figure bounded.
	if !(m.SlabBefore > 0 && m.SlabEnd > 0 && m.KernelPerConn > -1_000_000 && m.KernelPerConn < 1_000_000 && m.MemAvailMin > 0) {
		t.Errorf("kernel: slab %d -> %d kB, %.0f B per connection, MemAvailable min %d kB", m.SlabBefore, m.SlabEnd, m.KernelPerConn, m.MemAvailMin)
	}

	// CPU by phase, from the processes' ticks.
	p := r.CPU
	if p.HZ <= 0 || !(p.Setup.ServerCPU > 0 && p.Setup.ServerUsPerConn > 0 && p.Setup.DriverUsPerConn > 0) {
		t.Errorf("setup CPU %+v (hz %d)", p.Setup, p.HZ)
	}
	if !(p.Hold.Seconds >= 10 && p.Hold.ServerCPU > 0) {
		t.Errorf("hold CPU %+v", p.Hold)
	}
	if p.Heartbeat == nil || p.Heartbeat.Seconds < 0 || p.Heartbeat.ServerCores < 0 {
		t.Errorf("heartbeat-only CPU %+v", p.Heartbeat)
	}
	if p.Fanout.Windows < 1 || p.Fanout.Deliveries <= 0 || p.Fanout.ServerCores <= 0 {
		t.Errorf("fan-out CPU %+v", p.Fanout)
	}
	// One sample a second, but a sample waits for every node's /api/stats: on a loaded machine
	// fewer than one a second arrive.
	if r.Samples.Count < 5 || r.Samples.Hold < 4 {
		t.Errorf("samples %+v", r.Samples)
	}
	if r.Sysctl.Applied || r.OK == nil {
		t.Errorf("sysctl applied %v, ok %v", r.Sysctl.Applied, r.OK)
	}

	// The charts and the series behind them.
	for _, f := range []string{"connections.svg", "memory.svg", "cpu.svg", "latency.svg"} {
		svg, err := os.ReadFile(filepath.Join(res, f))
		if err != nil || !bytes.HasPrefix(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("<polyline")) || !bytes.HasSuffix(bytes.TrimSpace(svg), []byte("</svg>")) {
			t.Errorf("%s: not a chart (%v)", f, err)
		}
	}
	tsv := string(must(os.ReadFile(filepath.Join(res, "samples.tsv"))))
	if n := strings.Count(tsv, "\n"); n < 6 || !strings.Contains(tsv, "\tmeasure\t") {
		t.Errorf("samples.tsv: %d lines", n)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		return []byte("(" + err.Error() + ")")
	}
	return b
}
