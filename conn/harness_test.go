package conn

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/netpoll"
)

// The tests of this package drive an Engine by hand, on the test goroutine, with a fake clock:
// harness.pass does what netpoll.Loop.pass does after epoll_wait (Advance the wheel with the
// loop's clock, then OnPass), and peer.deliver does what an EPOLLIN edge does. Each connection
// is one end of a socketpair(2); the test holds the other end, non-blocking, so that everything
// the server wrote during a pass can be read at once, without waiting. No goroutine, no sleep:
// every deadline is checked to the tick.

const (
	testTick   = 10 * time.Millisecond
	testOrigin = int64(1_000_000_000_000) // the fake clock's start: any value works
)

type closeRec struct {
	id   uint64
	code ws.StatusCode
}

// recorder is the Handler of the tests: it echoes messages, except "close:CODE" which makes the
// server start the closing handshake with that code.
type recorder struct {
	opened int
	msgs   int
	closed []closeRec
}

func (r *recorder) OnOpen(*Conn) { r.opened++ }

func (r *recorder) OnMessage(c *Conn, op ws.OpCode, p []byte) {
	r.msgs++
	if rest, ok := bytes.CutPrefix(p, []byte("close:")); ok && len(rest) == 2 {
		c.Close(ws.StatusCode(binary.BigEndian.Uint16(rest)), "asked to")
		return
	}
	c.WriteMessage(op, p)
}

func (r *recorder) OnClose(c *Conn, code ws.StatusCode) {
	r.closed = append(r.closed, closeRec{c.ID(), code})
}

type harness struct {
	t    testing.TB
	now  int64
	loop *netpoll.Loop
	e    *Engine
	rec  *recorder
}

func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, now: testOrigin, rec: &recorder{}}
	loop, err := netpoll.NewLoop(netpoll.LoopConfig{ListenFD: -1, Tick: testTick,
		Now: func() int64 { return h.now }})
	if err != nil {
		t.Fatal(err)
	}
	h.loop = loop
	h.e = NewEngine(loop, cfg, h.rec, nil)
	t.Cleanup(func() {
		h.e.CloseAll()
		loop.Stop()
		loop.Run(nil) // stopped before its first pass: returns at once and frees the epoll fds
	})
	return h
}

// pass runs the end of a loop pass at the current fake time.
func (h *harness) pass() {
	h.loop.Wheel().Advance(h.now)
	h.e.OnPass(h.now)
}

// step moves the clock by d and runs a pass, as the loop does when epoll_wait times out.
func (h *harness) step(d time.Duration) {
	h.now += int64(d)
	h.pass()
}

// peer is the client end of one connection.
type peer struct {
	h   *harness
	fd  int    // client end, non-blocking
	srv int    // server end, owned by the engine
	id  uint64 // the server's connection ID
	in  []byte // bytes received and not parsed yet
	eof bool
}

// dial hands the server end of a new socketpair to the engine as an accepted socket.
func (h *harness) dial() *peer {
	h.t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	h.e.OnAccept(fds[0])
	p := &peer{h: h, fd: fds[1], srv: fds[0]}
	c := h.e.conns[p.srv]
	if c == nil {
		h.t.Fatal("OnAccept did not take the socket")
	}
	p.id = c.id
	h.t.Cleanup(func() { unix.Close(p.fd) })
	return p
}

// open dials and completes the WebSocket handshake.
func (h *harness) open() *peer {
	h.t.Helper()
	p := h.dial()
	p.send([]byte(upgradeRequest))
	p.readHTTP(101)
	return p
}

const upgradeRequest = "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// close closes the client end (a later close from the test's cleanup does nothing).
func (p *peer) close() {
	unix.Close(p.fd)
	p.fd = -1
}

// write puts b on the wire without telling the server.
func (p *peer) write(b []byte) {
	p.h.t.Helper()
	for len(b) > 0 {
		n, err := unix.Write(p.fd, b)
		if err != nil {
			p.h.t.Fatalf("peer write: %v", err)
		}
		b = b[n:]
	}
}

// deliver reports the readiness to the engine and ends the pass, as the loop would.
func (p *peer) deliver() {
	p.h.e.OnEvent(p.srv, netpoll.EventRead)
	p.h.pass()
}

// send writes b and lets the server read it at the current fake time.
func (p *peer) send(b []byte) {
	p.h.t.Helper()
	p.write(b)
	p.deliver()
}

// sendFrame sends one masked client frame.
func (p *peer) sendFrame(op ws.OpCode, payload []byte) {
	p.h.t.Helper()
	p.send(clientFrame(op, payload))
}

func clientFrame(op ws.OpCode, payload []byte) []byte {
	f := ws.NewFrame(op, true, append([]byte(nil), payload...))
	f = ws.MaskFrameInPlace(f)
	var buf bytes.Buffer
	if err := ws.WriteFrame(&buf, f); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// drain reads everything the server has written so far.
func (p *peer) drain() {
	p.h.t.Helper()
	var buf [4096]byte
	for !p.eof {
		n, err := unix.Read(p.fd, buf[:])
		switch {
		case n > 0:
			p.in = append(p.in, buf[:n]...)
		case err == unix.EAGAIN:
			return
		case err == nil: // n == 0
			p.eof = true
		default:
			p.h.t.Fatalf("peer read: %v", err)
		}
	}
}

// readHTTP expects a complete response head with the given status.
func (p *peer) readHTTP(status int) {
	p.h.t.Helper()
	p.drain()
	end := bytes.Index(p.in, []byte("\r\n\r\n"))
	if end < 0 {
		p.h.t.Fatalf("no complete HTTP response: %q", p.in)
	}
	if !bytes.HasPrefix(p.in, []byte("HTTP/1.1 "+strconv.Itoa(status)+" ")) {
		p.h.t.Fatalf("response %q, want status %d", p.in[:end], status)
	}
	p.in = p.in[end+4:]
}

// frames returns the complete frames received so far (server frames are never masked).
func (p *peer) frames() []ws.Frame {
	p.h.t.Helper()
	p.drain()
	var out []ws.Frame
	for {
		r := bytes.NewReader(p.in)
		f, err := ws.ReadFrame(r)
		if err != nil {
			return out // incomplete
		}
		if f.Header.Masked {
			p.h.t.Fatal("server frame is masked (RFC 6455 5.1)")
		}
		p.in = p.in[len(p.in)-r.Len():]
		out = append(out, f)
	}
}

// open reports whether the server still holds this connection's socket (in any state).
func (p *peer) open() bool {
	c := p.h.e.conns[p.srv]
	return c != nil && c.id == p.id
}

// state returns the server-side state of the connection; stateClosed once the socket is gone.
func (p *peer) state() uint8 {
	if !p.open() {
		return stateClosed
	}
	return p.h.e.conns[p.srv].state
}

// closedByServer reports whether the server has closed its socket: the peer has read everything
// up to EOF and a write fails with EPIPE. It tells a close(2) from a shutdown(SHUT_WR).
func (p *peer) closedByServer() bool {
	p.drain()
	if !p.eof {
		return false
	}
	_, err := unix.Write(p.fd, []byte{0x88, 0x80, 0, 0, 0, 0})
	return err == unix.EPIPE
}
