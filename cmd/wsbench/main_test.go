package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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

// closedPort returns a loopback port on which connections are refused: a
// socket is bound to it (so nothing else can take it) but never listens.
// The socket is closed when the test ends.
func closedPort(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*unix.SockaddrInet4).Port
}

// wsgateServer is a wsgate subprocess started by startWsgate.
type wsgateServer struct {
	URL   string // ws:// URL of the WebSocket listener
	Admin string // admin listener host:port, "" when disabled
	PID   int
}

// listeningRE matches wsgate's start-up line (text log format), written once
// the WebSocket and admin listeners are up.
var listeningRE = regexp.MustCompile(`msg="wsgate listening" addr=(\S+) .* admin=(\S+)`)

// startWsgate runs wsgate with -addr 127.0.0.1:0 (and any -admin-addr in
// args, typically 127.0.0.1:0 too) and reads the addresses the kernel chose
// from its start-up log line: a port picked in advance could be taken before
// wsgate binds it. The server is stopped by its PID when the test ends.
func startWsgate(t *testing.T, bin string, args ...string) wsgateServer {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0", "-loops", "1", "-log-format", "text"}, args...)...)
	cmd.Env = wsgateFreeEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logs bytes.Buffer
	cmd.Stdout = &lockedWriter{mu: &mu, w: &logs}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan []string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			logs.Write(sc.Bytes())
			logs.WriteByte('\n')
			mu.Unlock()
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case listening <- m:
				default:
				}
			}
		}
	}()
	exited := make(chan error, 1)
	go func() {
		<-scanned // Wait must not close the pipe before it is read to EOF
		exited <- cmd.Wait()
	}()
	output := func() string {
		mu.Lock()
		defer mu.Unlock()
		return logs.String()
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM) // the process this test started, by PID
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("wsgate output:\n%s", output())
		}
	})
	var m []string
	select {
	case m = <-listening:
	case err := <-exited:
		exited <- err
		t.Fatalf("wsgate exited: %v\n%s", err, output())
	case <-t.Context().Done():
		t.Fatalf("wsgate never logged its listen address\n%s", output())
	}
	return wsgateServer{URL: "ws://" + m[1] + "/", Admin: strings.Trim(m[2], `"`), PID: cmd.Process.Pid}
}

// wsgateFreeEnv is this process's environment without WSGATE_* variables,
// which would configure the server behind the test's back.
func wsgateFreeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WSGATE_") {
			env = append(env, kv)
		}
	}
	return env
}

// lockedWriter serialises writes to w with mu.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
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
	srv := startWsgate(t, wsgate, "-mode", "echo", "-admin-addr", "", "-ping-interval", "1s", "-pong-misses", "10")
	url, spid := srv.URL, strconv.Itoa(srv.PID)

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
		// How many 10 ms CPU ticks fall in a 0.5 s window is up to the scheduler (0 on a loaded
		// machine), so check that the server was sampled and the figure is the samples' own.
		srv := r.Server
		if srv == nil || srv.Start.RSS <= 0 || srv.End.RSS <= 0 || srv.End.CPUTicks < srv.Setup.CPUTicks {
			t.Fatalf("server not sampled: %+v", srv)
		}
		if got, want := srv.CPUMicrosPerOp*float64(r.Ops), srv.CPUSeconds*1e6; math.Abs(got-want) > 1e-6*max(1, want) {
			t.Errorf("server CPU per op %v x %d ops != %v s", srv.CPUMicrosPerOp, r.Ops, srv.CPUSeconds)
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
// over the HTTP API of a wsgate subprocess, to WebSocket and to Server-Sent
// Events subscribers (the sse scenario), and checks, from the per-channel
// sequence numbers, that every subscriber got every message exactly once.
func TestAgainstWsgatePubSubMode(t *testing.T) {
	wsgate, wsbench := buildBinaries(t)
	srv := startWsgate(t, wsgate, "-mode", "pubsub", "-client-publish", "-api-key", "test-key",
		"-admin-addr", "127.0.0.1:0", "-ping-interval", "1s", "-pong-misses", "10")
	url, admin, spid := srv.URL, srv.Admin, strconv.Itoa(srv.PID)
	if admin == "" {
		t.Fatal("wsgate reported no admin listener")
	}
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
	t.Run("sse", func(t *testing.T) {
		sseURL := "http://" + strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/") + "/sse"
		r := runWsbench(t, wsbench, "sse", "-url", sseURL, "-conns", "400", "-channels", "8",
			"-publish-rate", "400", "-duration", "1s", "-publish-url", "http://"+admin+"/api/publish",
			"-api-key", "test-key", "-server-pid", spid)
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

// TestNoConnectionOpenedExits4 runs the CLI in-process against a port where
// connections are refused: the run measured nothing, so wsbench exits with
// 4 and says why, -strict or not.
func TestNoConnectionOpenedExits4(t *testing.T) {
	url := "ws://127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/"
	for _, strict := range []bool{false, true} {
		args := []string{"connect", "-url", url, "-conns", "5", "-hold", "0s"}
		if strict {
			args = append(args, "-strict")
		}
		var stdout, stderr bytes.Buffer
		code := run(args, &stdout, &stderr)
		if code != exitUnusable {
			t.Fatalf("%q: exit %d, want %d\n%s%s", args, code, exitUnusable, stderr.String(), stdout.String())
		}
		if want := "wsbench connect: the run measured nothing: no connection opened: connection refused: 5\n"; !strings.HasSuffix(stderr.String(), want) {
			t.Errorf("stderr %q lacks %q", stderr.String(), want)
		}
		if !strings.Contains(stdout.String(), `failures="connection refused: 5"`) {
			t.Errorf("summary %q", stdout.String())
		}
	}
}

// runWsbenchCode runs the wsbench binary and returns its exit code, stdout
// and stderr.
func runWsbenchCode(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("wsbench %s\n%s%s", strings.Join(args, " "), stderr.String(), stdout.String())
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// TestAgainstWsgateFailureCauses: wsbench names the cause of what fails
// against a real wsgate, and exits non-zero when nothing worked.
func TestAgainstWsgateFailureCauses(t *testing.T) {
	wsgate, wsbench := buildBinaries(t)
	t.Run("pubsub-without-client-publish", func(t *testing.T) {
		srv := startWsgate(t, wsgate, "-mode", "pubsub", "-admin-addr", "")
		code, stdout, stderr := runWsbenchCode(t, wsbench, "pubsub", "-url", srv.URL, "-conns", "20", "-channels", "2",
			"-publish-rate", "100", "-duration", "500ms")
		eq(t, "exit code", code, exitUnusable)
		const cause = "error 403: publishing from clients is disabled: "
		if !strings.Contains(stderr, "the run measured nothing: no publish was accepted") || !strings.Contains(stderr, cause) {
			t.Errorf("stderr lacks the cause %q", cause)
		}
		if !strings.Contains(stdout, `publish_error_reasons="`+cause) {
			t.Errorf("summary lacks the cause %q", cause)
		}
	})
	t.Run("strict-counts-rejected-upgrades", func(t *testing.T) {
		// wsgate holds 5 connections and answers the other upgrades
		// with 503: the run worked, but -strict fails it and says why.
		srv := startWsgate(t, wsgate, "-mode", "echo", "-admin-addr", "", "-max-conns", "5")
		code, stdout, stderr := runWsbenchCode(t, wsbench, "connect", "-url", srv.URL, "-conns", "10", "-rate", "0",
			"-hold", "0s", "-strict")
		eq(t, "exit code", code, exitStrict)
		const cause = "HTTP 503 answer to the upgrade request: 5"
		if !strings.Contains(stderr, "-strict: 5 failed connection attempts ("+cause+")") {
			t.Errorf("stderr lacks the cause %q", cause)
		}
		if !strings.Contains(stdout, `failures="`+cause+`"`) {
			t.Errorf("summary lacks the cause %q", cause)
		}
	})
}

// runLoadtest runs bench/loadtest.sh (make loadtest) with env added, with
// its temporary directories under a test directory, and returns its exit
// error and its output.
func runLoadtest(t *testing.T, env ...string) (error, string) {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join("..", "..", "bench", "loadtest.sh"))
	cmd.Env = append(os.Environ(), append([]string{"TMPDIR=" + t.TempDir()}, env...)...)
	out, err := cmd.CombinedOutput()
	t.Logf("loadtest.sh %s:\n%s", strings.Join(env, " "), out)
	return err, string(out)
}

// reportedPaths returns the absolute paths named in the "== " lines at the
// end of loadtest.sh's output (from the line starting with start on).
func reportedPaths(out, start string) []string {
	i := strings.LastIndex(out, start)
	if i < 0 {
		return nil
	}
	var paths []string
	for _, line := range strings.Split(out[i:], "\n") {
		if !strings.HasPrefix(line, "== ") {
			continue
		}
		for _, f := range strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '(' || r == ')' || r == ',' || r == ';' }) {
			if strings.HasPrefix(f, "/") {
				paths = append(paths, f)
			}
		}
	}
	return paths
}

// TestLoadtestScript runs the smoke load test on a small scale: it must
// find wsgate's kernel-chosen WebSocket and admin ports (pubsub publishes
// over HTTP to the admin port), pass, and name at the end only paths that
// exist after it exited; a failed run names its kept work directory.
func TestLoadtestScript(t *testing.T) {
	err, out := runLoadtest(t, "LOADTEST_SCENARIOS=connect pubsub", "LOADTEST_CONNS=100")
	if err != nil {
		t.Fatalf("loadtest.sh failed: %v", err)
	}
	if !strings.Contains(out, "-publish-url http://127.0.0.1:") {
		t.Error("no HTTP publish run against the admin listener")
	}
	for _, p := range reportedPaths(out, "== all scenarios passed") {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("the end of the output names %s, which does not exist: %v", p, err)
		}
	}

	keep := filepath.Join(t.TempDir(), "results")
	err, out = runLoadtest(t, "LOADTEST_SCENARIOS=connect", "LOADTEST_CONNS=50", "LOADTEST_OUT="+keep)
	if err != nil {
		t.Fatalf("loadtest.sh with LOADTEST_OUT failed: %v", err)
	}
	paths := reportedPaths(out, "== all scenarios passed")
	if !slices.Contains(paths, keep) {
		t.Errorf("LOADTEST_OUT=%s is not named at the end (%q)", keep, paths)
	}
	for _, p := range append(paths, filepath.Join(keep, "connect.json"), filepath.Join(keep, "table.md")) {
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}

	// -conns 0 is a usage error: the run fails and keeps its work
	// directory, with the server log in it, for whoever reads the output.
	err, out = runLoadtest(t, "LOADTEST_SCENARIOS=connect", "LOADTEST_CONNS=0")
	if err == nil {
		t.Fatal("loadtest.sh passed with 0 connections")
	}
	paths = reportedPaths(out, "== FAILED")
	if len(paths) != 1 {
		t.Fatalf("failed run names %q, want its work directory", paths)
	}
	if _, err := os.Stat(filepath.Join(paths[0], "wsgate-echo.log")); err != nil {
		t.Errorf("kept work directory lacks the server log: %v", err)
	}
}

// TestServerPIDListAddsUp: -server-pid takes every process of a server (a cluster of nodes on
// one host) and refuses what is not a process id.
func TestServerPIDListAddsUp(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"connect", "-server-pid", "12,x", "-conns", "1"}, &bytes.Buffer{}, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), `"x" is not a process id`) {
		t.Fatalf("bad pid list: exit %d, %q", code, stderr.String())
	}
}

// TestAgainstWsgateWithTokens: against a wsgate that requires tokens, wsbench
// sends the tokens of -token-file (from `wsgate token`, two users) from every
// worker process and the pub/sub run is complete; without a token every
// upgrade is refused with 401, which -strict reports.
func TestAgainstWsgateWithTokens(t *testing.T) {
	wsgate, wsbench := buildBinaries(t)
	const secret = "a test secret of thirty-two bytes+"
	srv := startWsgate(t, wsgate, "-mode", "pubsub", "-client-publish", "-jwt-secret", secret,
		"-admin-addr", "", "-ping-interval", "1s", "-pong-misses", "10")
	var lines []string
	for _, sub := range []string{"1", "2"} {
		cmd := exec.Command(wsgate, "token", "-sub", sub, "-channels", "wsbench-*", "-publish", "wsbench-*", "-ttl", "1h")
		cmd.Env = append(wsgateFreeEnv(), "WSGATE_JWT_SECRET="+secret)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("wsgate token: %v", err)
		}
		lines = append(lines, strings.TrimSpace(string(out)))
	}
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte("# two users\n"+strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runWsbench(t, wsbench, "pubsub", "-url", srv.URL, "-conns", "200", "-procs", "2", "-channels", "4",
		"-publish-rate", "200", "-duration", "1s", "-token-file", file)
	eq(t, "subscribed", r.PubSub.Subscribed, int64(200))
	eq(t, "lost", r.PubSub.Lost, 0)
	if r.PubSub.Delivered == 0 || !r.Config.Auth {
		t.Fatalf("delivered %d, auth recorded %v", r.PubSub.Delivered, r.Config.Auth)
	}
	code, stdout, _ := runWsbenchCode(t, wsbench, "connect", "-url", srv.URL, "-conns", "5", "-rate", "0",
		"-hold", "0s", "-strict")
	eq(t, "exit code without a token", code, exitUnusable)
	if !strings.Contains(stdout, "HTTP 401") {
		t.Errorf("summary lacks the 401s: %s", stdout)
	}
	code, _, _ = runWsbenchCode(t, wsbench, "connect", "-url", srv.URL, "-conns", "5", "-rate", "0",
		"-hold", "0s", "-strict", "-token", lines[0])
	eq(t, "exit code with -token", code, exitOK)
}
