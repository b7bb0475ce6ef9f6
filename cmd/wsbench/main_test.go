package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench"
)

// buildBinaries builds wsgate and wsbench into a temporary directory: the
// integration tests drive them as black boxes, exactly as a user would.
func buildBinaries(t *testing.T) (wsgate, wsbench string) {
	t.Helper()
	dir := t.TempDir()
	wsgate, wsbench = filepath.Join(dir, "wsgate"), filepath.Join(dir, "wsbench")
	for bin, pkg := range map[string]string{wsgate: "github.com/wsgate/wsgate/cmd/wsgate", wsbench: "github.com/wsgate/wsgate/cmd/wsbench"} {
		out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return wsgate, wsbench
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startWsgate runs wsgate on a free loopback port and stops it (by its PID)
// when the test ends. It returns the ws:// URL and the PID.
func startWsgate(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	var logs bytes.Buffer
	cmd := exec.Command(bin, append([]string{"-addr", addr, "-loops", "1"}, args...)...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("wsgate output:\n%s", logs.String())
		}
	})
	for {
		c, err := net.Dial("tcp4", addr)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("wsgate exited: %v\n%s", err, logs.String())
		case <-t.Context().Done():
			t.Fatal("wsgate never listened")
		case <-time.After(10 * time.Millisecond):
		}
	}
	return "ws://" + addr + "/", cmd.Process.Pid
}

// runWsbench runs the wsbench binary with -json and returns the result.
func runWsbench(t *testing.T, bin string, args ...string) *bench.Result {
	t.Helper()
	out := filepath.Join(t.TempDir(), "result.json")
	cmd := exec.Command(bin, append(args, "-json", out, "-strict")...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("wsbench %s\n%s%s", strings.Join(args, " "), stderr.String(), stdout.String())
	if err != nil {
		t.Fatalf("wsbench: %v", err)
	}
	if lines := strings.Split(strings.TrimSpace(stdout.String()), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "scenario=") {
		t.Errorf("stdout is not one summary line: %q", stdout.String())
	}
	r, err := bench.ReadResult(out)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// TestAgainstWsgateEchoMode runs the scenarios wsgate's echo mode supports
// against a wsgate subprocess and checks that the counts add up.
func TestAgainstWsgateEchoMode(t *testing.T) {
	wsgate, wsbench := buildBinaries(t)
	// Pings every second, and a connection only counts as dead after ten
	// silent intervals: on a loaded 2-core CI machine a process can be
	// starved for a while, and this test is about counts, not timing.
	url, pid := startWsgate(t, wsgate, "-mode", "echo", "-admin-addr", "", "-ping-interval", "1s", "-pong-misses", "10")
	spid := strconv.Itoa(pid)

	t.Run("connect", func(t *testing.T) {
		r := runWsbench(t, wsbench, "connect", "-url", url, "-conns", "1000", "-rate", "4000", "-hold", "2500ms",
			"-src", "127.0.0.2-127.0.0.9", "-server-pid", spid, "-label", "wsgate")
		eq(t, "opened", r.Opened, 1000)
		eq(t, "open at end", r.OpenAtEnd, 1000)
		eq(t, "failed", r.Failed, 0)
		eq(t, "handshake samples", r.Handshake.Count(), 1000)
		if r.PingsAnswered == 0 {
			t.Error("wsgate pings every second during a 2.5s hold, but no ping was answered")
		}
		if r.Server == nil || r.Server.End.RSS <= 0 {
			t.Errorf("server stats missing: %+v", r.Server)
		}
	})
	t.Run("echo", func(t *testing.T) {
		r := runWsbench(t, wsbench, "echo", "-url", url, "-conns", "200", "-duration", "500ms", "-size", "200", "-server-pid", spid)
		e := r.Echo
		if e.Sent == 0 {
			t.Fatal("nothing sent")
		}
		eq(t, "received", e.Received, e.Sent)
		eq(t, "lost", e.Lost, 0)
		eq(t, "mismatched", e.Mismatched, 0)
		eq(t, "latency samples", r.Latency.Count(), e.Received)
		if r.Server == nil || r.Server.CPUMicrosPerOp <= 0 {
			t.Errorf("server CPU per op missing: %+v", r.Server)
		}
	})
	t.Run("echo-paced-two-processes", func(t *testing.T) {
		r := runWsbench(t, wsbench, "echo", "-url", url, "-conns", "300", "-procs", "2", "-rate", "3000", "-duration", "500ms", "-size", "16")
		eq(t, "procs", r.Procs, 2)
		eq(t, "opened", r.Opened, 300)
		e := r.Echo
		if e.Sent == 0 {
			t.Fatal("nothing sent")
		}
		eq(t, "received", e.Received, e.Sent)
		eq(t, "lost", e.Lost, 0)
		eq(t, "latency samples", r.Latency.Count(), e.Received)
	})
	t.Run("churn", func(t *testing.T) {
		r := runWsbench(t, wsbench, "churn", "-url", url, "-conns", "100", "-rate", "2000", "-hold", "50ms",
			"-backoff-base", "20ms", "-backoff-max", "200ms", "-backoff-jitter", "5ms", "-duration", "800ms")
		c := r.Churn
		if c.Reconnects == 0 {
			t.Fatal("no reconnects")
		}
		eq(t, "failed", r.Failed, 0)
		eq(t, "first connects", c.Connects-c.Reconnects, 100)
		eq(t, "disconnects", r.Disconnects, r.Opened-r.OpenAtEnd)
	})
}

// TestAgainstWsgatePubSubMode publishes over the WebSocket publish op and
// over the HTTP API of a wsgate subprocess and checks, from the per-channel
// sequence numbers, that every subscriber got every message exactly once.
func TestAgainstWsgatePubSubMode(t *testing.T) {
	wsgate, wsbench := buildBinaries(t)
	admin := "127.0.0.1:" + strconv.Itoa(freePort(t))
	url, pid := startWsgate(t, wsgate, "-mode", "pubsub", "-client-publish", "-api-key", "test-key",
		"-admin-addr", admin, "-ping-interval", "1s", "-pong-misses", "10")
	spid := strconv.Itoa(pid)
	check := func(t *testing.T, r *bench.Result, subsPerChannel int64) {
		t.Helper()
		p := r.PubSub
		if p.Published == 0 {
			t.Fatal("nothing published")
		}
		eq(t, "subscribed", p.Subscribed, int64(r.Conns))
		eq(t, "acked", p.PublishAcked, p.Published)
		eq(t, "expected", p.Expected, p.Published*subsPerChannel)
		eq(t, "delivered", p.Delivered, p.Expected)
		eq(t, "lost", p.Lost, 0)
		eq(t, "duplicated", p.Duplicated, 0)
		eq(t, "latency samples", r.Latency.Count(), p.Delivered)
	}
	t.Run("websocket-publish", func(t *testing.T) {
		r := runWsbench(t, wsbench, "pubsub", "-url", url, "-conns", "400", "-channels", "8", "-publish-rate", "400",
			"-duration", "1s", "-server-pid", spid)
		check(t, r, 50)
	})
	t.Run("http-publish-two-processes", func(t *testing.T) {
		r := runWsbench(t, wsbench, "pubsub", "-url", url, "-conns", "400", "-procs", "2", "-channels", "8",
			"-publish-rate", "400", "-duration", "1s", "-publish-url", "http://"+admin+"/api/publish", "-api-key", "test-key")
		check(t, r, 50)
		eq(t, "server-reported deliveries", r.PubSub.ServerDelivered, r.PubSub.Delivered)
	})
}

func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i, label := range []string{"wsgate", "peer"} {
		r := &bench.Result{Scenario: bench.ScenarioEcho, Label: label, Conns: 100, Throughput: float64(1000 * (i + 1)),
			ThroughputUnit: "msgs/s", LatencyUs: bench.Percentiles{P50: 10, P90: 20, P99: 30, P999: 40}}
		p := filepath.Join(dir, label+".json")
		if err := bench.WriteResult(p, r); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	img, md := filepath.Join(dir, "img"), filepath.Join(dir, "table.md")
	var stdout, stderr bytes.Buffer
	// Flags after the files, as in "wsbench report results/*.json -o docs/img/".
	code := run(append(append([]string{"report"}, files...), "-o", img, "-md", md), &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, f := range []string{"latency-echo.svg", "throughput-echo.svg"} {
		if _, err := os.Stat(filepath.Join(img, f)); err != nil {
			t.Error(err)
		}
	}
	table, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(table, stdout.Bytes()) || !strings.Contains(string(table), "| echo | wsgate | 100 | 1000 msgs/s (0.50x) |") {
		t.Errorf("table:\n%s", table)
	}
}

func TestUsageErrors(t *testing.T) {
	cases := [][]string{
		{},
		{"nope"},
		{"echo", "-conns", "0"},
		{"echo", "-bogus"},
		{"echo", "stray"},
		{"connect", "-procs", "1", "-conns", "20000"},
		{"pubsub", "-publish-url", "ftp://x"},
		{"report"},
	}
	for _, args := range cases {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != exitUsage {
			t.Errorf("%q: exit %d, want %d (%s)", args, code, exitUsage, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"help"}, &stdout, &stderr); code != exitOK || !strings.Contains(stdout.String(), "churn") {
		t.Errorf("help: exit %d, %q", code, stdout.String())
	}
}

// TestStrictFailsOnRefusedConnections runs the CLI in-process against a
// closed port: every connection fails, so -strict must exit with 3.
func TestStrictFailsOnRefusedConnections(t *testing.T) {
	url := "ws://127.0.0.1:" + strconv.Itoa(freePort(t)) + "/"
	var stdout, stderr bytes.Buffer
	code := run([]string{"connect", "-url", url, "-conns", "5", "-hold", "0s", "-strict"}, &stdout, &stderr)
	if code != exitStrict {
		t.Fatalf("exit %d, want %d\n%s%s", code, exitStrict, stderr.String(), stdout.String())
	}
	if !strings.Contains(stdout.String(), "failures=refused:5") {
		t.Errorf("summary %q", stdout.String())
	}
}
