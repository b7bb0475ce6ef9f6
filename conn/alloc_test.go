//go:build !race

package conn

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/frame"
	"github.com/wsgate/wsgate/netpoll"
)

// TestHeartbeatSteadyStateNoAllocs: once the pools are warm, a heartbeat cycle (timer fires,
// ping queued and written with writev, pong read and parsed, timer re-filed) allocates nothing,
// for any number of connections. The peers read and answer with preallocated buffers so that
// the whole process allocates nothing.
func TestHeartbeatSteadyStateNoAllocs(t *testing.T) {
	const (
		interval = time.Second
		peers    = 100
	)
	h := newHarness(t, Config{PingInterval: interval})
	ps := make([]*peer, peers)
	for i := range ps {
		ps[i] = h.open()
	}
	pong := clientFrame(ws.OpPong, nil)
	var buf [64]byte
	pings := 0
	cycle := func() {
		for end := h.now + int64(interval); h.now < end; {
			h.step(testTick)
			answered := false
			for _, p := range ps {
				n, err := unix.Read(p.fd, buf[:])
				if err == unix.EAGAIN {
					continue
				}
				if n != 2 || buf[0] != 0x89 || buf[1] != 0 {
					t.Fatalf("read %d bytes (% x), %v: want one empty ping", n, buf[:max(n, 0)], err)
				}
				pings++
				if _, err := unix.Write(p.fd, pong); err != nil {
					t.Fatal(err)
				}
				h.e.OnEvent(p.srv, netpoll.EventRead)
				answered = true
			}
			if answered {
				h.pass()
			}
		}
	}
	cycle()
	cycle()
	if a := testing.AllocsPerRun(3, cycle); a != 0 {
		t.Fatalf("%v allocations per heartbeat cycle of %d connections, want 0", a, peers)
	}
	if want := 6 * peers; pings != want { // 2 warm-up cycles, AllocsPerRun's warm-up and 3 runs
		t.Fatalf("%d pings in 6 intervals, want %d", pings, want)
	}
	for i, p := range ps {
		if p.state() != stateOpen {
			t.Fatalf("peer %d closed", i)
		}
	}
}

// TestSlowlorisWaveNoAllocs: a wave of half-sent handshakes holds a Conn and a pooled input
// buffer each, only until the handshake deadline; the next wave reuses exactly those, so that
// however long a slowloris flood goes on, memory stays at what its largest wave needed.
func TestSlowlorisWaveNoAllocs(t *testing.T) {
	const (
		wave    = 500
		timeout = 5 * time.Second
	)
	h := newHarness(t, Config{HandshakeTimeout: timeout})
	var fds [wave][2]int
	partial := []byte(upgradeRequest[:40])
	run := func() {
		for i := range fds {
			f, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			fds[i] = f
			h.e.OnAccept(f[0])
			if _, err := unix.Write(f[1], partial); err != nil {
				t.Fatal(err)
			}
			h.e.OnEvent(f[0], netpoll.EventRead)
		}
		h.pass()
		if n := h.e.Connections(); n != wave {
			t.Fatalf("%d sockets held, want %d", n, wave)
		}
		h.step(timeout)
		if n := h.e.Connections(); n != 0 {
			t.Fatalf("%d sockets held after the handshake deadline", n)
		}
		for i := range fds {
			unix.Close(fds[i][1])
		}
	}
	run()
	run()
	misses := h.e.pool.Misses
	if a := testing.AllocsPerRun(3, run); a != 0 {
		t.Fatalf("%v allocations per wave of %d half-open handshakes, want 0", a, wave)
	}
	if h.e.pool.Misses != misses {
		t.Fatalf("the pool allocated %d new buffers for later waves", h.e.pool.Misses-misses)
	}
	if len(h.e.free) != wave {
		t.Fatalf("%d pooled Conn structs, want the %d of one wave", len(h.e.free), wave)
	}
	if got := h.e.Stats.Rejects[RejectTimeout].Load(); got != 6*wave {
		t.Fatalf("Rejects[timeout] = %d, want %d", got, 6*wave)
	}
}

// TestTextInPartsAndPausesNoAllocs: once the pools are warm, a large text message that arrives in
// three reads (each part checked and moved to the message buffer as it comes) and a burst of
// answers that pauses reading and resumes it allocate nothing.
func TestTextInPartsAndPausesNoAllocs(t *testing.T) {
	h := newHarness(t, Config{MaxQueue: 16 << 10})
	p := h.open()
	unit := []byte("κόσμε ascii ")
	text := bytes.Repeat(unit, 40000/len(unit)) // under 64 KiB: a 4-byte header back
	wire := clientFrame(ws.OpText, text)
	parts := [][]byte{wire[:3000], wire[3000:20000], wire[20000:]}
	small := clientFrame(ws.OpBinary, make([]byte, 3000))
	var burst []byte
	for range 20 { // 60 KB of answers for a 16 KiB queue: reading pauses
		burst = append(burst, small...)
	}
	buf := make([]byte, 256<<10)
	readAll := func(want int) {
		for got := 0; got < want; {
			n, err := unix.Read(p.fd, buf)
			if err == unix.EAGAIN {
				h.e.OnEvent(p.srv, netpoll.EventRead|netpoll.EventWrite) // the loop's requeue and EPOLLOUT
				h.pass()
				continue
			}
			if err != nil || n == 0 {
				t.Fatalf("read: %d %v", n, err)
			}
			got += n
		}
	}
	pauses := h.e.Stats.ReadPauses.Load()
	run := func() {
		for _, part := range parts {
			if _, err := unix.Write(p.fd, part); err != nil {
				t.Fatal(err)
			}
			h.e.OnEvent(p.srv, netpoll.EventRead)
			h.pass()
		}
		readAll(len(text) + 4)
		if _, err := unix.Write(p.fd, burst); err != nil {
			t.Fatal(err)
		}
		h.e.OnEvent(p.srv, netpoll.EventRead)
		h.pass()
		readAll(20 * (3000 + 4))
	}
	run()
	run()
	if a := testing.AllocsPerRun(20, run); a != 0 {
		t.Fatalf("%v allocations per run, want 0", a)
	}
	if h.e.Stats.ReadPauses.Load()-pauses < 20 {
		t.Fatalf("%d pauses in 22 bursts: the pause path was not exercised", h.e.Stats.ReadPauses.Load()-pauses)
	}
	if h.rec.msgs != 23*21 || p.state() != stateOpen {
		t.Fatalf("%d messages, open %v; want %d and open", h.rec.msgs, p.state() == stateOpen, 23*21)
	}
}

// TestHandshakeAllocs: a whole connection's life, accept, handshake, 101 response written, peer
// gone, socket closed and struct pooled, allocates one object once the pools are warm: the
// Sec-WebSocket-Accept value gobwas/ws's Upgrader makes (ws.writeAccept). The response is built
// in a buffer the engine reuses, the upgrader is pooled (frame.Upgrade). A handshake that agrees
// on permessage-deflate costs the same.
func TestHandshakeAllocs(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testHandshakeAllocs(t, Config{}, upgradeRequest) })
	t.Run("deflate", func(t *testing.T) {
		testHandshakeAllocs(t, Config{Compression: true}, strings.Replace(upgradeRequest, "\r\n\r\n",
			"\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n", 1))
	})
}

func testHandshakeAllocs(t *testing.T, cfg Config, request string) {
	h := newHarness(t, cfg)
	h.rec.closed = make([]closeRec, 0, 1000)
	req := []byte(request)
	buf := make([]byte, 512)
	cycle := func() {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		h.e.OnAccept(fds[0])
		if _, err := unix.Write(fds[1], req); err != nil {
			t.Fatal(err)
		}
		h.e.OnEvent(fds[0], netpoll.EventRead)
		h.pass()
		if n, err := unix.Read(fds[1], buf); err != nil || n < 12 || string(buf[:12]) != "HTTP/1.1 101" {
			t.Fatalf("response %q, %v", buf[:max(n, 0)], err)
		}
		unix.Close(fds[1])
		h.e.OnEvent(fds[0], netpoll.EventRead|netpoll.EventHangup)
		h.pass()
		if h.e.Connections() != 0 {
			t.Fatal("socket still held after the peer left")
		}
	}
	for range 10 {
		cycle()
	}
	if cfg.Compression && h.e.Stats.DeflateHandshakes.Load() != 10 {
		t.Fatalf("%d of 10 handshakes agreed on deflate", h.e.Stats.DeflateHandshakes.Load())
	}
	a := testing.AllocsPerRun(100, cycle)
	t.Logf("%v allocations per connection", a)
	if a > 1 {
		t.Fatalf("%v allocations per connection, want at most 1 (gobwas/ws's accept value)", a)
	}
}

// TestNewConnIsOneObject: a connection struct made when the pool is empty is one allocation, the
// Conn itself: its timer's function is a top-level function that finds the Conn from the timer,
// not a closure per connection (which cost 16 bytes each).
func TestNewConnIsOneObject(t *testing.T) {
	h := newHarness(t, Config{})
	var made []*Conn
	a := testing.AllocsPerRun(100, func() {
		h.e.free = h.e.free[:0]
		made = append(made[:0], h.e.newConn(3))
	})
	if a != 1 {
		t.Fatalf("%v allocations for a new Conn, want 1", a)
	}
	// That the timer leads back to its connection is what every deadline test checks
	// (heartbeat_test.go: pings, pong misses, idle and close timeouts on the right connection).
}

// TestDeflateNoAllocs: on a connection that agreed on permessage-deflate, once the pools are
// warm, a compressed message received in one frame and in fragments is inflated into a pooled
// buffer and its echo compressed into the queue without allocating; the handshake that agrees
// allocates no more than a plain one.
func TestDeflateNoAllocs(t *testing.T) {
	h := newHarness(t, Config{Compression: true})
	p := h.dial()
	p.send([]byte(strings.Replace(upgradeRequest, "\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n", 1)))
	p.readHTTP(101)
	if !h.e.conns[p.srv].Deflate() {
		t.Fatal("deflate not agreed")
	}
	text := bytes.Repeat([]byte(`{"symbol":"ABC","price":101.25},`), 200)
	z := frame.AppendDeflate(nil, text)
	one := maskedFrame(ws.OpText, true, 4, z)
	frags := append(maskedFrame(ws.OpText, false, 4, z[:len(z)/2]), maskedFrame(ws.OpContinuation, true, 0, z[len(z)/2:])...)
	buf := make([]byte, 64<<10)
	roundTrip := func(wire []byte) {
		if _, err := unix.Write(p.fd, wire); err != nil {
			t.Fatal(err)
		}
		h.e.OnEvent(p.srv, netpoll.EventRead)
		h.pass()
		n, err := unix.Read(p.fd, buf)
		if err != nil || n < 4 || buf[0] != 0xc1 { // FIN, RSV1, text
			t.Fatalf("echo %x, %v", buf[:max(n, 0)], err)
		}
	}
	run := func() {
		roundTrip(one)
		roundTrip(frags)
	}
	run()
	run()
	if a := testing.AllocsPerRun(50, run); a != 0 {
		t.Fatalf("%v allocations per compressed round trip, want 0", a)
	}
	if got := h.e.Stats.MessagesInflated.Load(); got != 2*(2+50+1) {
		t.Fatalf("%d messages inflated", got)
	}
}
