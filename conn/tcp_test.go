package conn

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/netpoll"
)

// Most tests of this package drive an Engine by hand on socketpairs (harness_test.go). The ones
// that need real TCP (a peer address, a client library of its own such as gorilla/websocket, a
// flood of sockets, or the loop's own wake-ups) run one Engine on one running netpoll.Loop with
// a loopback listener of its own: tcpServer, a one-loop server without the root package's
// Server. Its loop runs on a fakeClock that only the test moves, unless a test says otherwise;
// after moving the clock, sync waits until the loop has run a complete pass at the new time, so
// each deadline is checked to the tick and nothing depends on how fast this machine is.

// fakeClock is a monotonic clock for netpoll.LoopConfig.Now that only the test moves.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(testOrigin)
	return c
}

func (c *fakeClock) Now() int64 { return c.ns.Load() }

// echo is the Handler of the TCP tests: every message goes back as it came.
type echo struct{}

func (echo) OnOpen(*Conn)                              {}
func (echo) OnMessage(c *Conn, op ws.OpCode, p []byte) { c.WriteMessage(op, p) }
func (echo) OnClose(*Conn, ws.StatusCode)              {}

type tcpServer struct {
	loop  *netpoll.Loop
	e     *Engine
	addr  string     // host:port of the listener
	clock *fakeClock // nil: the loop runs on the real clock
}

// startTCP runs an echo Engine on a loop of its own for the duration of the test. clock nil runs
// the loop on the real clock; log nil discards the loop's logs.
func startTCP(t testing.TB, cfg Config, clock *fakeClock, log *slog.Logger) *tcpServer {
	t.Helper()
	return startTCPWith(t, cfg, clock, log, echo{})
}

// startTCPWith is startTCP with another Handler.
func startTCPWith(t testing.TB, cfg Config, clock *fakeClock, log *slog.Logger, h Handler) *tcpServer {
	t.Helper()
	fds, addr, err := netpoll.Listen("127.0.0.1:0", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	lc := netpoll.LoopConfig{ListenFD: fds[0], Tick: testTick, Logger: log}
	if clock != nil {
		lc.Now = clock.Now
	}
	loop, err := netpoll.NewLoop(lc)
	if err != nil {
		unix.Close(fds[0])
		t.Fatal(err)
	}
	s := &tcpServer{loop: loop, e: NewEngine(loop, cfg, h, nil), addr: addr.String(), clock: clock}
	ran := make(chan error, 1)
	go func() { ran <- loop.Run(s.e) }()
	t.Cleanup(func() {
		loop.Post(s.e.CloseAll)
		loop.Stop()
		if err := <-ran; err != nil {
			t.Errorf("loop: %v", err)
		}
	})
	return s
}

// advance moves the fake clock by d and returns once the loop has run a complete pass with it.
func (s *tcpServer) advance(t testing.TB, d time.Duration) {
	t.Helper()
	s.clock.ns.Add(int64(d))
	s.sync(t)
}

// sync returns once the loop has completed a pass that started after the call. The loop reads
// its clock for the wheel after running its tasks, so the pass that runs a first task posted now
// fires what is due; a second task, posted once the first ran, runs in the next pass, after that
// one ended (and flushed).
func (s *tcpServer) sync(t testing.TB) {
	t.Helper()
	for range 2 {
		ran := make(chan struct{})
		if !s.e.Post(func() { close(ran) }) {
			t.Fatal("the loop has stopped")
		}
		select {
		case <-ran:
		case <-time.After(20 * time.Second):
			t.Fatal("the loop did not run a posted task")
		}
	}
}

// waitUntil polls cond until it holds; the 20 s bound only ends a test that is failing anyway.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// tcpClient is a WebSocket client on a plain TCP socket, so that a test writes exactly the bytes
// it wants. gobwas/ws's Dialer makes the handshake (and checks Sec-WebSocket-Accept) and its
// reader reads the server's frames: an implementation independent of ours.
type tcpClient struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

// dial connects and completes the WebSocket handshake.
func (s *tcpServer) dial(t testing.TB) *tcpClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, br, _, err := ws.Dialer{}.Dial(ctx, "ws://"+s.addr+"/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if br == nil { // nothing was sent after the 101 yet
		br = bufio.NewReader(c)
	}
	return &tcpClient{t: t, c: c, br: br}
}

func (r *tcpClient) write(b []byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// readFrame reads one server frame (which must be unmasked); the 10 s deadline only ends a test
// that is failing anyway.
func (r *tcpClient) readFrame() ws.Frame {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := ws.ReadFrame(r.br)
	if err != nil {
		r.t.Fatalf("read frame: %v", err)
	}
	if f.Header.Masked {
		r.t.Fatal("server frame is masked (RFC 6455 5.1 forbids it)")
	}
	return f
}

func (r *tcpClient) expectEOF() {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, r.br); err != nil {
		r.t.Fatalf("waiting for the server to close TCP: %v", err)
	}
}

// syncBuffer is a bytes buffer safe for the loop's logging and the test's reading.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
