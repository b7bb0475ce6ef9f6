package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"
)

// Process-level tests of the reload: the real binary, built into the test's directory, run as a
// process of its own; its successor is a process the test did not start, found through the PID
// file and reaped by the test as the subreaper it makes itself.

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// wsgateBinary builds cmd/wsgate once per test run.
func wsgateBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wsgate-bin")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "wsgate")
		out, err := exec.Command("go", "build", "-o", buildPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildPath != "" {
		os.RemoveAll(filepath.Dir(buildPath))
	}
	os.Exit(code)
}

// proc is a wsgate process under test: its log (JSON lines, shared with its successors, which
// inherit its stderr) and its PID file.
type proc struct {
	t       *testing.T
	cmd     *exec.Cmd
	log     string
	pidFile string
	exited  chan struct{} // closed when the first process has exited
	waitErr error         // its exec.Cmd.Wait error, once exited is closed
}

// startWsgate runs the binary with args plus JSON logging, a PID file and loopback addresses.
func startWsgate(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	return startWsgateBinary(t, wsgateBinary(t), env, args...)
}

// startWsgateBinary is startWsgate with the executable at bin.
func startWsgateBinary(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	// Successors are reparented to the test process, which can then reap them (wait4) and
	// tell a live process from a zombie.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := &proc{t: t, log: filepath.Join(dir, "wsgate.log"), pidFile: filepath.Join(dir, "wsgate.pid"), exited: make(chan struct{})}
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	args = append([]string{"-mode", "echo", "-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-loops", "2",
		"-log-format", "json", "-pid-file", p.pidFile}, args...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.waitErr = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		// Whatever the test's outcome, no process is left behind: the PID file's owner and the
		// first process are stopped by their PIDs.
		if pid := p.pid(); pid > 0 && pid != p.cmd.Process.Pid {
			unix.Kill(pid, unix.SIGKILL)
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, 0, nil)
		}
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("wsgate log:\n%s", b)
		}
	})
	return p
}

// pid returns the PID in the PID file, 0 if there is none.
func (p *proc) pid() int {
	b, err := os.ReadFile(p.pidFile)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// lines returns the log lines that match, in order.
func (p *proc) lines(match func(l map[string]any) bool) []map[string]any {
	b, _ := os.ReadFile(p.log)
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var l map[string]any
		if json.Unmarshal(sc.Bytes(), &l) == nil && match(l) {
			out = append(out, l)
		}
	}
	return out
}

// waitLog polls the log until a line matches and returns it.
func (p *proc) waitLog(what string, match func(l map[string]any) bool) map[string]any {
	p.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if ls := p.lines(match); len(ls) > 0 {
			return ls[0]
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no log line: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func logPID(l map[string]any) int {
	f, _ := l["pid"].(float64)
	return int(f)
}

// listening waits for pid's "wsgate listening" line and returns its addresses.
func (p *proc) listening(pid int) (addr, admin string) {
	l := p.waitLog(fmt.Sprintf("pid %d listening", pid), func(l map[string]any) bool {
		return l["msg"] == "wsgate listening" && logPID(l) == pid
	})
	return l["addr"].(string), l["admin"].(string)
}

// waitPIDFile waits until the PID file names a process other than not.
func (p *proc) waitPIDFile(not int) int {
	p.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if pid := p.pid(); pid != 0 && pid != not {
			return pid
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the PID file still names %d", not)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stopReaped sends SIGTERM to a successor (a process the test did not start) and reaps it.
func stopReaped(t *testing.T, pid int) unix.WaitStatus {
	t.Helper()
	if err := unix.Kill(pid, unix.SIGTERM); err != nil {
		t.Fatalf("the new process %d is not alive: %v", pid, err)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
		t.Fatalf("wait4 %d: %v", pid, err)
	}
	return ws
}

func echoOnce(c *websocket.Conn, msg string) error {
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		return err
	}
	_, m, err := c.ReadMessage()
	if err != nil {
		return err
	}
	if string(m) != msg {
		return fmt.Errorf("echo %q, want %q", m, msg)
	}
	return nil
}

// heldConn is one of the connections held across the reload.
type heldConn struct {
	code   int       // close code received from the old process
	at     time.Time // when it arrived
	err    error     // what went wrong, if anything
	again  *websocket.Conn
	closed chan struct{}
}

// TestReloadHandsOverWithoutRefusing: 500 held connections and a steady 300 connects a second;
// SIGHUP. Not one connect is refused or reset during the hand-over; every held connection gets
// 1012, the closes spread over -drain-period, and reconnects to the new process, which then
// holds them all; the old process exits 0 and leaves the PID file to the new one, which the
// test stops by its PID.
func TestReloadHandsOverWithoutRefusing(t *testing.T) {
	const (
		held   = 500
		rate   = 300 // connects per second
		period = 3 * time.Second
	)
	p := startWsgate(t, nil, "-drain-period", period.String(), "-shutdown-timeout", "20s")
	oldPID := p.cmd.Process.Pid
	addr, admin := p.listening(oldPID)
	if got := p.waitPIDFile(0); got != oldPID {
		t.Fatalf("PID file %d, want %d", got, oldPID)
	}
	url := "ws://" + addr + "/"
	dialer := &websocket.Dialer{HandshakeTimeout: 30 * time.Second}

	conns := make([]*heldConn, held)
	for i := range conns {
		c, _, err := dialer.Dial(url, nil)
		if err != nil {
			t.Fatalf("held connection %d: %v", i, err)
		}
		h := &heldConn{closed: make(chan struct{})}
		conns[i] = h
		go func() {
			defer close(h.closed)
			_, _, err := c.ReadMessage() // the echo server sends nothing until the close
			h.at = time.Now()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				h.err = fmt.Errorf("read ended with %v, not a close frame", err)
				c.Close()
				return
			}
			h.code = ce.Code
			c.Close() // gorilla has answered the close frame
			// Reconnect, as a client told "service restart" does.
			again, _, err := dialer.Dial(url, nil)
			if err != nil {
				h.err = fmt.Errorf("reconnect: %w", err)
				return
			}
			if err := echoOnce(again, "back"); err != nil {
				h.err = fmt.Errorf("reconnected echo: %w", err)
				again.Close()
				return
			}
			h.again = again
		}()
	}

	// The steady connect loop: each connect completes the WebSocket handshake and closes.
	var attempts, failures atomic.Int64
	var failMu sync.Mutex
	var failed []string
	stop := make(chan struct{})
	var loopWG sync.WaitGroup
	loopWG.Add(1)
	go func() {
		defer loopWG.Done()
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			attempts.Add(1)
			loopWG.Add(1)
			go func() {
				defer loopWG.Done()
				c, _, err := dialer.Dial(url, nil)
				if err != nil {
					failures.Add(1)
					failMu.Lock()
					failed = append(failed, err.Error())
					failMu.Unlock()
					return
				}
				c.Close()
			}()
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		loopWG.Wait()
	}()
	for attempts.Load() < rate/2 { // the loop runs before the hand-over too
		time.Sleep(10 * time.Millisecond)
	}

	if err := unix.Kill(oldPID, unix.SIGHUP); err != nil {
		t.Fatal(err)
	}
	newPID := p.waitPIDFile(oldPID)
	p.waitLog("the old process hands over", func(l map[string]any) bool {
		n, _ := l["new_pid"].(float64)
		return logPID(l) == oldPID && strings.HasPrefix(l["msg"].(string), "reload: the new process is ready") && int(n) == newPID
	})
	for i, h := range conns {
		select {
		case <-h.closed:
		case <-time.After(time.Minute):
			t.Fatalf("held connection %d got no close frame", i)
		}
		if h.err != nil {
			t.Fatalf("held connection %d: %v", i, h.err)
		}
		if h.code != 1012 {
			t.Fatalf("held connection %d closed with %d, want 1012", i, h.code)
		}
	}
	select {
	case <-p.exited:
		if p.waitErr != nil {
			t.Fatalf("the old process: %v, want exit 0", p.waitErr)
		}
	case <-time.After(time.Minute):
		t.Fatal("the old process did not exit after its drain")
	}
	close(stop)
	loopWG.Wait()

	// The closes spread over the drain period rather than all at once. The verdict is about
	// shape, with room for a busy machine: a stalled loop or client delays closes (pushes them
	// later), it cannot bunch them early.
	first, last := conns[0].at, conns[0].at
	for _, h := range conns {
		if h.at.Before(first) {
			first = h.at
		}
		if h.at.After(last) {
			last = h.at
		}
	}
	var firstThird, secondHalf int
	for _, h := range conns {
		switch d := h.at.Sub(first); {
		case d < period/3:
			firstThird++
		case d >= period/2:
			secondHalf++
		}
	}
	t.Logf("1012 closes over %v: %d in the first third of the period, %d in its second half", last.Sub(first), firstThird, secondHalf)
	// Evenly spread: a third in the first third, half in the second half; all at once: every
	// close in the first third. The thresholds sit between the two.
	if firstThird > held*7/10 {
		t.Errorf("%d of %d closes in the first third of -drain-period: not spread", firstThird, held)
	}
	if secondHalf < held*15/100 {
		t.Errorf("only %d of %d closes in the second half of -drain-period: not spread", secondHalf, held)
	}
	if last.Sub(first) > 2*period {
		t.Errorf("the closes took %v, more than the drain period allows", last.Sub(first))
	}

	t.Logf("connects during the test: %d, failed %d", attempts.Load(), failures.Load())
	if n := failures.Load(); n != 0 {
		t.Errorf("%d of %d connects failed during the hand-over, first: %s", n, attempts.Load(), failed[0])
	}

	// The new process serves the reconnected clients (the old one is gone) and the admin
	// listener it inherited.
	for i, h := range conns {
		if err := echoOnce(h.again, "still"); err != nil {
			t.Fatalf("reconnected client %d: %v", i, err)
		}
	}
	resp, err := http.Get("http://" + admin + "/healthz")
	if err != nil {
		t.Fatalf("admin after the reload: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var open int
	fmt.Sscanf(strings.TrimPrefix(string(body), "ok\n"), "connections %d", &open)
	if resp.StatusCode != 200 || open < held {
		t.Fatalf("/healthz of the new process: %d %q, want 200 with at least %d connections", resp.StatusCode, body, held)
	}
	for _, h := range conns {
		h.again.Close()
	}

	// Both PIDs accounted for: the old one exited 0 (above), the new one is alive until the
	// test stops it by its PID, and removes its PID file as it goes.
	if ws := stopReaped(t, newPID); !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("the new process ended with %v, want exit 0 after SIGTERM", ws)
	}
	if _, err := os.Stat(p.pidFile); !os.IsNotExist(err) {
		t.Fatalf("PID file left after the last process stopped: %v", err)
	}
}

// TestReloadFailureKeepsServing: a reload whose new process cannot start (a bad value in the
// settings file it reads) leaves the old process serving its connections and its listeners,
// and logging why; a reload once the file is fixed goes through.
func TestReloadFailureKeepsServing(t *testing.T) {
	envFile := filepath.Join(t.TempDir(), "wsgate.env")
	if err := os.WriteFile(envFile, []byte("# settings\nWSGATE_MAX_MESSAGE=1MiB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startWsgate(t, nil, "-env-file", envFile, "-drain-period", "1s")
	oldPID := p.cmd.Process.Pid
	addr, _ := p.listening(oldPID)
	url := "ws://" + addr + "/"
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	if err := os.WriteFile(envFile, []byte("WSGATE_MAX_MESSAGE=lots\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Kill(oldPID, unix.SIGHUP); err != nil {
		t.Fatal(err)
	}
	l := p.waitLog("reload failed", func(l map[string]any) bool {
		return l["msg"] == "reload failed; this process keeps serving" && logPID(l) == oldPID
	})
	if why, _ := l["err"].(string); !strings.Contains(why, "WSGATE_MAX_MESSAGE") || !strings.Contains(why, "lots") {
		t.Fatalf("the failure's log line does not say why: %q", why)
	}
	if pid := p.pid(); pid != oldPID {
		t.Fatalf("PID file names %d after a failed reload, want %d", pid, oldPID)
	}
	if err := echoOnce(c, "still here"); err != nil {
		t.Fatalf("held connection after the failed reload: %v", err)
	}
	c2, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("new connection after the failed reload: %v", err)
	}
	if err := echoOnce(c2, "new"); err != nil {
		t.Fatal(err)
	}
	c2.Close()

	// Fixed: the next reload hands over.
	if err := os.WriteFile(envFile, []byte("WSGATE_MAX_MESSAGE=2MiB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Kill(oldPID, unix.SIGHUP); err != nil {
		t.Fatal(err)
	}
	newPID := p.waitPIDFile(oldPID)
	c.SetReadDeadline(time.Now().Add(time.Minute))
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, 1012) {
		t.Fatalf("held connection after the reload: %v, want close 1012", err)
	}
	<-p.exited
	if p.waitErr != nil {
		t.Fatalf("the old process: %v", p.waitErr)
	}
	if ws := stopReaped(t, newPID); !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("the new process ended with %v", ws)
	}
}
