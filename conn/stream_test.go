package conn

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/frame"
	"github.com/wsgate/wsgate/netpoll"
)

// streamer is the StreamHandler of the stream tests: GET /s opens a stream (chunked for
// HTTP/1.1), anything else is refused with 404; WebSockets are the recorder's.
type streamer struct {
	*recorder
	streams []*Conn
}

func (s *streamer) OnRequest(c *Conn, r *frame.Request) (int, string, string) {
	if string(r.Path()) != "/s" {
		return 404, "X-Why: test\r\n", "no such stream\n"
	}
	chunked := r.Minor >= 1
	head := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
	if chunked {
		head += "Transfer-Encoding: chunked\r\n"
	}
	c.OpenStream([]byte(head+"\r\n"), chunked)
	s.streams = append(s.streams, c)
	return 0, "", ""
}

func newStreamHarness(t testing.TB, cfg Config) (*harness, *streamer) {
	t.Helper()
	h := &harness{t: t, now: testOrigin, rec: &recorder{}}
	loop, err := netpoll.NewLoop(netpoll.LoopConfig{ListenFD: -1, Tick: testTick,
		Now: func() int64 { return h.now }})
	if err != nil {
		t.Fatal(err)
	}
	st := &streamer{recorder: h.rec}
	h.loop = loop
	h.e = NewEngine(loop, cfg, st, nil)
	t.Cleanup(func() {
		h.e.CloseAll()
		loop.Stop()
		loop.Run(nil)
	})
	return h, st
}

// openStream requests /s and reads the response head.
func (h *harness) openStream(proto string) *peer {
	h.t.Helper()
	p := h.dial()
	p.send([]byte("GET /s " + proto + "\r\nHost: x\r\n\r\n"))
	p.readHTTP(200)
	return p
}

// event is an SSE event of n bytes whose bytes say which it is: "data: <i>xxx...\n\n".
func event(i, n int) []byte {
	b := []byte("data: " + strconv.Itoa(i) + " ")
	for len(b) < n-2 {
		b = append(b, 'x')
	}
	return append(b, "\n\n"...)
}

// chunk frames b as one chunk of a chunked body.
func chunk(b []byte) []byte {
	out := []byte(strconv.FormatInt(int64(len(b)), 16) + "\r\n")
	out = append(out, b...)
	return append(out, "\r\n"...)
}

// body decodes the chunked body received so far with net/http's chunked reader; done says the
// last chunk was seen.
func (p *peer) body() (b []byte, done bool) {
	p.h.t.Helper()
	p.drain()
	b, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(p.in)))
	switch err {
	case nil:
		return b, true
	case io.ErrUnexpectedEOF:
		return b, false
	}
	p.h.t.Fatalf("chunked body: %v in %q", err, p.in)
	return nil, false
}

// TestStreamRouting: a request without Upgrade goes to OnRequest, which opens a stream or
// refuses it with its status, headers and body; an upgrade still goes to the WebSocket path.
func TestStreamRouting(t *testing.T) {
	h, st := newStreamHarness(t, Config{})
	p := h.dial()
	p.send([]byte("GET /other HTTP/1.1\r\nHost: x\r\n\r\n"))
	p.drain()
	if !bytes.HasPrefix(p.in, []byte("HTTP/1.1 404 ")) || !bytes.Contains(p.in, []byte("X-Why: test\r\n")) ||
		!bytes.HasSuffix(p.in, []byte("no such stream\n")) {
		t.Fatalf("refused stream: %q", p.in)
	}
	if h.e.Stats.Rejects[RejectStream].Load() != 1 {
		t.Fatal("refusal not counted under stream")
	}
	s := h.openStream("HTTP/1.1")
	if len(st.streams) != 1 || !st.streams[0].Stream() || !st.streams[0].Chunked() {
		t.Fatal("stream not open")
	}
	if err := st.streams[0].WriteFrame([]byte{0x81, 0}); err != ErrStream {
		t.Fatalf("WriteFrame on a stream: %v", err)
	}
	if err := st.streams[0].WriteMessage(ws.OpText, nil); err != ErrStream {
		t.Fatalf("WriteMessage on a stream: %v", err)
	}
	wsp := h.open()
	if h.e.Stats.Open[TransportSSE].Load() != 1 || h.e.Stats.Open[TransportWebSocket].Load() != 1 || h.rec.opened != 1 {
		t.Fatalf("open: %d streams %d websockets, %d OnOpen", h.e.Stats.Open[TransportSSE].Load(),
			h.e.Stats.Open[TransportWebSocket].Load(), h.rec.opened)
	}
	// Whatever a stream's client sends is dropped; its EOF ends the stream.
	s.send([]byte("garbage\r\n\r\nGET / HTTP/1.1\r\n\r\n"))
	if !s.open() || len(h.rec.closed) != 0 {
		t.Fatal("input closed the stream")
	}
	s.close()
	s.deliver()
	if s.open() || len(h.rec.closed) != 1 || h.e.Stats.Open[TransportSSE].Load() != 0 {
		t.Fatal("the client's EOF did not end the stream")
	}
	wsp.sendFrame(ws.OpText, []byte("still"))
	if fs := wsp.frames(); len(fs) != 1 || string(fs[0].Payload) != "still" {
		t.Fatalf("websocket beside the stream: %v", fs)
	}
}

// TestStreamHeartbeat: a stream gets a ": ping" comment every PingInterval (jittered phase in
// the first), never a ping frame, in chunked form for HTTP/1.1 and as is for HTTP/1.0; a client
// that keeps reading is never closed although it sends nothing.
func TestStreamHeartbeat(t *testing.T) {
	for _, proto := range []string{"HTTP/1.1", "HTTP/1.0"} {
		h, _ := newStreamHarness(t, Config{PingInterval: time.Second, PongMisses: 2})
		p := h.openStream(proto)
		for i := 0; i < 10; i++ {
			h.step(500 * time.Millisecond)
		}
		var got []byte
		if proto == "HTTP/1.1" {
			got, _ = p.body()
		} else {
			p.drain()
			got = p.in
		}
		if n := strings.Count(string(got), ": ping\n\n"); n < 4 || n > 5 || len(got) != n*len(": ping\n\n") {
			t.Fatalf("%s: %q after 5 s of 1 s pings", proto, got)
		}
		if !p.open() || h.e.Stats.PingTimeouts.Load() != 0 {
			t.Fatalf("%s: a reading client was closed", proto)
		}
	}
}

// TestStreamWriteDeadline: a stream whose output stays undrained for PongMisses x PingInterval
// (the client stopped reading) is closed, after the event the socket has partly taken.
func TestStreamWriteDeadline(t *testing.T) {
	h, st := newStreamHarness(t, Config{PingInterval: time.Second, PongMisses: 2, MaxQueue: 64 << 20})
	p := h.openStream("HTTP/1.1")
	c := st.streams[0]
	ev := chunk(event(0, 60000))
	// Fill the socket: the flush hits EAGAIN and output stays queued.
	for i := 0; c.flags&flagBlocked == 0; i++ {
		if err := c.WriteEvent(nil, ev); err != nil {
			t.Fatal(err)
		}
		h.pass()
	}
	for i := 0; i < 4 && p.open(); i++ {
		h.step(time.Second)
	}
	if h.e.Stats.PingTimeouts.Load() != 1 {
		t.Fatalf("write deadline not applied: %d timeouts", h.e.Stats.PingTimeouts.Load())
	}
	// The client reads at last: whole events, then the end of the body.
	for i := 0; i < 1000 && p.open(); i++ {
		p.drain()
		h.e.OnEvent(p.srv, netpoll.EventWrite)
		h.step(10 * time.Millisecond)
	}
	body, done := p.body()
	if !done {
		t.Fatal("the body has no last chunk")
	}
	body = bytes.ReplaceAll(body, []byte(": ping\n\n"), nil)
	if len(body)%len(event(0, 60000)) != 0 || !bytes.HasPrefix(body, event(0, 60000)) {
		t.Fatalf("body of %d bytes is not whole events", len(body))
	}
}

// TestStreamIdleTimeout: with IdleTimeout a stream that is sent no event for that long ends (its
// last chunk); events keep it open.
func TestStreamIdleTimeout(t *testing.T) {
	h, st := newStreamHarness(t, Config{PingInterval: time.Second, IdleTimeout: 5 * time.Second})
	p := h.openStream("HTTP/1.1")
	for i := 0; i < 8; i++ {
		st.streams[0].WriteEvent(nil, chunk(event(i, 20)))
		h.step(time.Second)
	}
	if _, done := p.body(); done || !p.open() {
		b, done := p.body()
		t.Fatalf("a stream with events ended as idle: open %v done %v %q idle %d ping %d slow %d", p.open(), done, b, h.e.Stats.IdleTimeouts.Load(), h.e.Stats.PingTimeouts.Load(), h.e.Stats.SlowConsumers.Load())
	}
	for i := 0; i < 7; i++ {
		h.step(time.Second)
	}
	if _, done := p.body(); !done || h.e.Stats.IdleTimeouts.Load() != 1 {
		t.Fatalf("idle stream not ended (%d idle timeouts)", h.e.Stats.IdleTimeouts.Load())
	}
	p.close()
	p.deliver()
	if p.open() {
		t.Fatal("stream still held after the client closed")
	}
}

// TestStreamSlowConsumerWholeEvents: a client that does not read is closed at MaxQueue; what it
// reads afterwards is whole events (a prefix and a shared rest are one unit), then the end.
func TestStreamSlowConsumerWholeEvents(t *testing.T) {
	h, st := newStreamHarness(t, Config{MaxQueue: 256 << 10})
	p := h.openStream("HTTP/1.0")
	c := st.streams[0]
	var err error
	for i := 0; err == nil; i++ {
		id := []byte("id: " + strconv.Itoa(i) + "\n")
		err = c.WriteEvent(id, event(i, 5000))
		if i%7 == 0 {
			h.pass()
		}
	}
	if err != ErrSlowConsumer || h.e.Stats.SlowConsumers.Load() != 1 {
		t.Fatalf("write past MaxQueue: %v", err)
	}
	for i := 0; i < 1000 && p.open(); i++ {
		p.drain()
		h.e.OnEvent(p.srv, netpoll.EventWrite)
		h.step(10 * time.Millisecond)
		if p.eof {
			p.close()
			p.deliver()
		}
	}
	p.drain()
	r := bufio.NewReader(bytes.NewReader(p.in))
	n := 0
	for ; ; n++ {
		id, err := r.ReadString('\n')
		if err == io.EOF && id == "" {
			break
		}
		want := event(n, 5000)
		got := make([]byte, len(want))
		if id != "id: "+strconv.Itoa(n)+"\n" {
			t.Fatalf("event %d: id line %q", n, id)
		}
		if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("event %d torn: %q (%v)", n, got, err)
		}
	}
	if n == 0 {
		t.Fatal("no event before the close")
	}
}

// TestStreamHeartbeatNetHTTP: over real TCP, a net/http client reading a stream sees a comment
// line for each ping interval the fake clock passes, and nothing else.
func TestStreamHeartbeatNetHTTP(t *testing.T) {
	clock := newFakeClock()
	s := startTCPWith(t, Config{PingInterval: time.Second}, clock, nil, &streamer{recorder: &recorder{}})
	resp, err := http.Get("http://" + s.addr + "/s")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || len(resp.TransferEncoding) != 1 {
		t.Fatalf("stream response %d %v", resp.StatusCode, resp.TransferEncoding)
	}
	br := bufio.NewReader(resp.Body)
	// The first ping comes at a random phase within the first interval: count what the
	// server says it sent, then read exactly that many comments (a read past them would block).
	for i := 0; i < 4; i++ {
		s.advance(t, time.Second)
	}
	n := int(s.e.Stats.PingsSent.Load())
	if n < 3 || n > 4 {
		t.Fatalf("%d pings sent in 4 intervals", n)
	}
	for i := 0; i < n; i++ {
		for _, want := range []string{": ping\n", "\n"} {
			line, err := br.ReadString('\n')
			if err != nil || line != want {
				t.Fatalf("ping %d: line %q (%v), want %q", i, line, err, want)
			}
		}
	}
}
