package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// recHandler records what the engine reports.
type recHandler struct {
	opened int
	ops    []ws.OpCode
	msgs   [][]byte
	closes []CloseEvent
}

func (h *recHandler) OnOpen(*Conn) { h.opened++ }
func (h *recHandler) OnMessage(_ *Conn, op ws.OpCode, p []byte) {
	h.ops = append(h.ops, op)
	h.msgs = append(h.msgs, append([]byte(nil), p...))
}
func (h *recHandler) OnClose(_ *Conn, ev CloseEvent) { h.closes = append(h.closes, ev) }
func (h *recHandler) OnTimer(*Conn, uint8)           {}
func (h *recHandler) OnTick(*Loop)                   {}

// pairConn puts slot 0 of an engine that is not running onto one end of a
// Unix socket pair, in state st, and returns the other end. The test
// goroutine plays the loop goroutine, so the engine's code runs
// synchronously against raw bytes the test writes and reads.
func pairConn(t testing.TB, h Handler, st uint8) (*Conn, int) {
	t.Helper()
	e, err := NewEngine(EngineConfig{Port: 1, Slots: 1, Loops: 1}, h)
	if err != nil {
		t.Fatal(err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Large buffers so tests never block on a full socket.
	for _, fd := range fds {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20)
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	}
	l := e.Loops()[0]
	c := l.Conn(0)
	c.fd = int32(fds[0])
	c.gen = 1
	c.state = st
	c.key = [keyLen]byte([]byte(rfcKey))
	t.Cleanup(func() {
		if c.fd >= 0 {
			unix.Close(int(c.fd))
		}
		unix.Close(fds[1])
		e.Stop()
	})
	return c, fds[1]
}

// serverFrame encodes an unmasked frame as a server sends it.
func serverFrame(fin bool, op ws.OpCode, p []byte) []byte {
	var b bytes.Buffer
	ws.WriteHeader(&b, ws.Header{Fin: fin, OpCode: op, Length: int64(len(p))})
	b.Write(p)
	return b.Bytes()
}

// readFrames reads everything the client wrote and parses it with gobwas.
func readFrames(t testing.TB, fd int) []ws.Frame {
	t.Helper()
	buf := make([]byte, 1<<20)
	n, err := unix.Read(fd, buf)
	if err != nil {
		if errors.Is(err, unix.EAGAIN) {
			return nil
		}
		t.Fatal(err)
	}
	r := bytes.NewReader(buf[:n])
	var fs []ws.Frame
	for r.Len() > 0 {
		f, err := ws.ReadFrame(r)
		if err != nil {
			t.Fatal(err)
		}
		if !f.Header.Masked {
			t.Fatal("client frame not masked (RFC 6455 5.3)")
		}
		fs = append(fs, ws.UnmaskFrameInPlace(f))
	}
	return fs
}

func TestConsumeHandshakeThenFramesInOneRead(t *testing.T) {
	h := &recHandler{}
	c, _ := pairConn(t, h, stHandshake)
	in := append([]byte(goodResponse("")), serverFrame(true, ws.OpText, []byte("hello"))...)
	c.consume(in)
	c.loop.notifyClosed()
	if h.opened != 1 || len(h.msgs) != 1 || string(h.msgs[0]) != "hello" || !c.IsOpen() {
		t.Fatalf("opened %d msgs %q open %v closes %v", h.opened, h.msgs, c.IsOpen(), h.closes)
	}
	if c.rq != nil {
		t.Fatal("idle connection still holds a read buffer")
	}
}

func TestConsumeSplitsAnywhere(t *testing.T) {
	var stream []byte
	stream = append(stream, goodResponse("")...)
	stream = append(stream, serverFrame(true, ws.OpText, []byte("one"))...)
	stream = append(stream, serverFrame(false, ws.OpBinary, []byte("tw"))...)
	stream = append(stream, serverFrame(true, ws.OpPing, []byte("?"))...) // control frame between fragments (5.4)
	stream = append(stream, serverFrame(false, ws.OpContinuation, []byte("o-"))...)
	stream = append(stream, serverFrame(true, ws.OpContinuation, bytes.Repeat([]byte("z"), 300))...)
	stream = append(stream, serverFrame(true, ws.OpText, bytes.Repeat([]byte("y"), 70000))...)
	for _, chunk := range []int{1, 2, 3, 7, 100, 4096, len(stream)} {
		h := &recHandler{}
		c, peer := pairConn(t, h, stHandshake)
		for i := 0; i < len(stream); i += chunk {
			c.consume(stream[i:min(i+chunk, len(stream))])
		}
		c.loop.notifyClosed()
		if len(h.closes) != 0 || len(h.msgs) != 3 {
			t.Fatalf("chunk %d: %d messages, closes %v", chunk, len(h.msgs), h.closes)
		}
		if string(h.msgs[0]) != "one" || h.ops[0] != ws.OpText {
			t.Fatalf("chunk %d: first %q", chunk, h.msgs[0])
		}
		if want := "two-" + string(bytes.Repeat([]byte("z"), 300)); string(h.msgs[1]) != want || h.ops[1] != ws.OpBinary {
			t.Fatalf("chunk %d: reassembled %d bytes op %v", chunk, len(h.msgs[1]), h.ops[1])
		}
		if len(h.msgs[2]) != 70000 {
			t.Fatalf("chunk %d: large message %d bytes", chunk, len(h.msgs[2]))
		}
		fs := readFrames(t, peer)
		if len(fs) != 1 || fs[0].Header.OpCode != ws.OpPong || string(fs[0].Payload) != "?" {
			t.Fatalf("chunk %d: want one pong with the ping's payload, got %+v", chunk, fs)
		}
		if c.rq != nil || c.msg != nil {
			t.Fatalf("chunk %d: buffers held after complete messages", chunk)
		}
	}
}

func TestServerCloseIsEchoed(t *testing.T) {
	h := &recHandler{}
	c, peer := pairConn(t, h, stOpen)
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], 1001)
	c.consume(serverFrame(true, ws.OpClose, append(p[:], "bye"...)))
	c.loop.notifyClosed()
	if len(h.closes) != 1 || h.closes[0].Reason != ReasonServerClose || h.closes[0].Status != 1001 || !h.closes[0].Opened {
		t.Fatalf("closes %+v", h.closes)
	}
	fs := readFrames(t, peer)
	if len(fs) != 1 || fs[0].Header.OpCode != ws.OpClose || binary.BigEndian.Uint16(fs[0].Payload) != 1001 {
		t.Fatalf("want a close frame echoing 1001, got %+v", fs)
	}
	if !c.IsIdle() {
		t.Fatal("slot not idle after close")
	}
}

func TestClientCloseHandshake(t *testing.T) {
	h := &recHandler{}
	c, peer := pairConn(t, h, stOpen)
	c.Close()
	fs := readFrames(t, peer)
	if len(fs) != 1 || fs[0].Header.OpCode != ws.OpClose || binary.BigEndian.Uint16(fs[0].Payload) != 1000 {
		t.Fatalf("want close 1000, got %+v", fs)
	}
	c.consume(serverFrame(true, ws.OpText, []byte("late"))) // discarded while closing
	c.consume(serverFrame(true, ws.OpClose, fs[0].Payload))
	c.loop.notifyClosed()
	if len(h.msgs) != 0 || len(h.closes) != 1 || h.closes[0].Reason != ReasonClosed {
		t.Fatalf("msgs %q closes %+v", h.msgs, h.closes)
	}
}

func TestProtocolErrorsFailTheConnection(t *testing.T) {
	cases := map[string][]byte{
		"masked server frame": {0x81, 0x81, 1, 2, 3, 4, 'x'},
		"continuation first":  serverFrame(true, ws.OpContinuation, []byte("x")),
		"data inside fragments": append(serverFrame(false, ws.OpText, []byte("a")),
			serverFrame(true, ws.OpText, []byte("b"))...),
		"one-byte close": serverFrame(true, ws.OpClose, []byte{3}),
	}
	for name, in := range cases {
		h := &recHandler{}
		c, peer := pairConn(t, h, stOpen)
		c.consume(in)
		c.loop.notifyClosed()
		if len(h.closes) != 1 || h.closes[0].Reason != ReasonProtocol {
			t.Errorf("%s: closes %+v", name, h.closes)
			continue
		}
		fs := readFrames(t, peer)
		if len(fs) != 1 || fs[0].Header.OpCode != ws.OpClose || binary.BigEndian.Uint16(fs[0].Payload) != 1002 {
			t.Errorf("%s: want close 1002, got %+v", name, fs)
		}
	}
}

func TestBadHandshakeResponses(t *testing.T) {
	cases := map[string]struct {
		in     string
		reason string
		status int
	}{
		"503":        {in: "HTTP/1.1 503 Busy\r\n\r\n", reason: ReasonHTTPStatus, status: 503},
		"bad accept": {in: strings.Replace(goodResponse(""), rfcAccept, "x", 1), reason: ReasonBadHandshake, status: 101},
	}
	for name, c := range cases {
		h := &recHandler{}
		conn, _ := pairConn(t, h, stHandshake)
		conn.consume([]byte(c.in))
		conn.loop.notifyClosed()
		if h.opened != 0 || len(h.closes) != 1 || h.closes[0].Reason != c.reason || h.closes[0].Status != c.status || h.closes[0].Opened {
			t.Errorf("%s: opened %d closes %+v", name, h.opened, h.closes)
		}
	}
}

// TestWriteQueuesUnderBackpressure fills the socket, checks the rest is
// queued in order and flushed once the peer reads.
func TestWriteQueuesUnderBackpressure(t *testing.T) {
	h := &recHandler{}
	c, peer := pairConn(t, h, stOpen)
	payload := bytes.Repeat([]byte("q"), 60000)
	sent := 0
	for c.wq == nil {
		if !c.Send(ws.OpBinary, payload) {
			t.Fatal("send failed")
		}
		sent++
	}
	for range 3 {
		c.Send(ws.OpBinary, payload)
		sent++
	}
	got := 0
	var pending []byte
	buf := make([]byte, 1<<20)
	for got < sent {
		n, err := unix.Read(peer, buf)
		if err != nil && !errors.Is(err, unix.EAGAIN) {
			t.Fatal(err)
		}
		if n > 0 {
			pending = append(pending, buf[:n]...)
		}
		for {
			hd, err := ws.ReadHeader(bytes.NewReader(pending))
			if err != nil || int64(len(pending)) < int64(ws.HeaderSize(hd))+hd.Length {
				break
			}
			pending = pending[int64(ws.HeaderSize(hd))+hd.Length:]
			got++
		}
		if c.wq != nil {
			c.flush()
		}
	}
	if c.wq != nil || got != sent {
		t.Fatalf("got %d of %d frames, queue %d bytes", got, sent, len(c.wq))
	}
}

// TestStopWhileSyncing: Sync and Stop may race; every Sync returns (its
// task runs or is refused) and nothing touches a closed descriptor (the
// race detector watches the eventfd bookkeeping).
func TestStopWhileSyncing(t *testing.T) {
	for range 20 {
		e, err := NewEngine(EngineConfig{Port: 1, Loops: 2, Slots: 2}, &recHandler{})
		if err != nil {
			t.Fatal(err)
		}
		e.Start()
		done := make(chan int)
		for range 2 {
			go func() {
				n := 0
				for range 200 {
					e.Sync(func(*Loop) { n++ })
				}
				done <- n
			}()
		}
		e.Stop()
		<-done
		<-done
		for _, l := range e.Loops() {
			if l.post(func(*Loop) {}) {
				t.Fatal("a stopped loop accepted a task")
			}
		}
	}
}

// TestChurnAppliesBackoffSchedule drives the churn handler's OnClose and
// OnOpen directly and reads the redial timers it arms: consecutive failures
// wait Base, 2*Base, 4*Base... up to Max, and a successful open resets the
// count. Jitter is zero so the delays are exact.
func TestChurnAppliesBackoffSchedule(t *testing.T) {
	cfg := DefaultConfig(ScenarioChurn)
	cfg.Backoff = Backoff{Base: 500 * time.Millisecond, Max: 30 * time.Second}
	sc := newScenario(&cfg, 1, 1, 1).(*churnScenario)
	c, _ := pairConn(t, sc, stIdle)
	l := c.Loop()
	sc.ls[0].measuring = true
	lastDelay := func() time.Duration {
		t.Helper()
		if len(l.timers) == 0 {
			t.Fatal("no timer armed")
		}
		var newest timer
		for _, tm := range l.timers {
			if tm.at > newest.at {
				newest = tm
			}
		}
		if newest.kind != timerUser || newest.tag != tagRedial || newest.gen != c.gen {
			t.Fatalf("timer %+v is not a redial for this socket", newest)
		}
		l.timers = l.timers[:0]
		return time.Duration(newest.at)
	}
	fail := func() time.Duration {
		before := l.Now()
		sc.OnClose(c, CloseEvent{Reason: ReasonRefused})
		return lastDelay() - time.Duration(before)
	}
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 30 * time.Second, 30 * time.Second}
	for n, w := range want {
		// The timer is armed at Now() plus the delay; Now() may advance
		// between the two readings by a little, never by a whole step.
		if got := fail(); got < w || got >= w+w/2 {
			t.Fatalf("failure %d: redial after %v, want %v", n, got, w)
		}
	}
	c.state = stOpen
	sc.OnOpen(c) // success resets the count (and arms the hold timer)
	l.timers = l.timers[:0]
	c.state = stIdle
	before := l.Now()
	sc.OnClose(c, CloseEvent{Opened: true, Reason: ReasonClosed})
	if got := lastDelay() - time.Duration(before); got < 500*time.Millisecond || got >= 750*time.Millisecond {
		t.Fatalf("after a successful connection: redial after %v, want 500ms", got)
	}
}

// BenchmarkEchoRoundTrip measures the driver's own cost per echo: parse the
// echoed frame, record latency, frame, mask and write the next message.
func BenchmarkEchoRoundTrip(b *testing.B) {
	cfg := DefaultConfig(ScenarioEcho)
	cfg.Size = 64
	sc := newScenario(&cfg, 1, 1, 1).(*echoScenario)
	c, peer := pairConn(b, sc, stOpen)
	l := &sc.ls[0]
	l.payload = bytes.Repeat([]byte("x"), cfg.Size)
	l.measuring = true
	sc.send(c, l)
	buf := make([]byte, 1<<16)
	frame := make([]byte, 2+cfg.Size)
	frame[0], frame[1] = 0x81, byte(cfg.Size)
	copy(frame[2:], l.payload)
	b.ReportAllocs()
	b.SetBytes(int64(cfg.Size))
	for b.Loop() {
		unix.Read(peer, buf)
		frame[2] = 'a' + byte(sc.seq[0]%26)
		c.consume(frame)
	}
	if l.mismatch != 0 {
		b.Fatalf("%d mismatches", l.mismatch)
	}
}
