package wsgate

import (
	"bytes"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"
)

func echoServer(t testing.TB) *Server {
	return startServer(t, Config{Handler: Echo{}})
}

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestEchoGorilla drives echo with gorilla/websocket: text, binary, large and fragmented
// messages (gorilla fragments messages larger than its write buffer), then a clean close.
func TestEchoGorilla(t *testing.T) {
	s := echoServer(t)
	d := websocket.Dialer{WriteBufferSize: 4096, ReadBufferSize: 4096}
	c, resp, err := d.Dial(wsURL(s, "/ws"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	msgs := []struct {
		typ int
		p   []byte
	}{
		{websocket.TextMessage, []byte("hello")},
		{websocket.TextMessage, []byte("")},
		{websocket.BinaryMessage, randBytes(125, 1)},
		{websocket.BinaryMessage, randBytes(126, 2)},
		{websocket.BinaryMessage, randBytes(65535, 3)},
		{websocket.BinaryMessage, randBytes(65536, 4)},
		{websocket.TextMessage, []byte(strings.Repeat("ü€𝄞", 40000))}, // fragmented, multibyte split across fragments
		{websocket.BinaryMessage, randBytes(4<<20, 5)},                // 4 MiB, ~1000 fragments
	}
	for i, m := range msgs {
		if err := c.WriteMessage(m.typ, m.p); err != nil {
			t.Fatalf("msg %d: write: %v", i, err)
		}
		typ, got, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("msg %d: read: %v", i, err)
		}
		if typ != m.typ || !bytes.Equal(got, m.p) {
			t.Fatalf("msg %d: echo differs (type %d, %d bytes; want type %d, %d bytes)", i, typ, len(got), m.typ, len(m.p))
		}
	}
	// Clean close: the server echoes our code, then closes TCP.
	err = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye"))
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = c.ReadMessage()
	ce, ok := err.(*websocket.CloseError)
	if !ok || ce.Code != 4001 {
		t.Fatalf("close: got %v, want close 4001 echoed", err)
	}
}

// TestEchoCoder drives echo with coder/websocket, a second independent implementation.
func TestEchoCoder(t *testing.T) {
	s := echoServer(t)
	ctx := ctxT(t)
	c, _, err := coder.Dial(ctx, wsURL(s, "/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(32 << 20)
	for i, n := range []int{0, 1, 100, 1000, 70000, 1 << 20} {
		typ := coder.MessageBinary
		p := randBytes(n, uint64(i))
		if i%2 == 0 {
			typ = coder.MessageText
			p = bytes.Repeat([]byte("a"), n)
		}
		if err := c.Write(ctx, typ, p); err != nil {
			t.Fatal(err)
		}
		gt, got, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if gt != typ || !bytes.Equal(got, p) {
			t.Fatalf("message %d (%d bytes) not echoed intact", i, n)
		}
	}
	// Fragmented write through the streaming writer.
	w, err := c.Writer(ctx, coder.MessageText)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		w.Write([]byte("part-"))
	}
	w.Close()
	_, got, err := c.Read(ctx)
	if err != nil || string(got) != strings.Repeat("part-", 10) {
		t.Fatalf("fragmented echo: %q %v", got, err)
	}
	if err := c.Close(coder.StatusNormalClosure, "done"); err != nil {
		t.Fatalf("clean close: %v", err)
	}
}

// TestManyClientsAcrossLoops: concurrent clients on several loops all get their own echoes.
func TestManyClientsAcrossLoops(t *testing.T) {
	s := startServer(t, Config{Handler: Echo{}, Loops: 3})
	const clients, msgs = 30, 50
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		go func(i int) {
			c, _, err := websocket.DefaultDialer.Dial(wsURL(s, "/"), nil)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for j := 0; j < msgs; j++ {
				want := []byte(strings.Repeat(string(rune('a'+i%26)), j+1))
				if err := c.WriteMessage(websocket.TextMessage, want); err != nil {
					errs <- err
					return
				}
				_, got, err := c.ReadMessage()
				if err != nil || !bytes.Equal(got, want) {
					errs <- err
					return
				}
			}
			errs <- nil
		}(i)
	}
	for i := 0; i < clients; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestPingPongAndInterleavedControl: a ping gets a pong with the identical payload, unsolicited
// pongs are ignored, and control frames between fragments do not disturb the message.
func TestPingPongAndInterleavedControl(t *testing.T) {
	s := echoServer(t)
	r := dialRaw(t, s).handshake()
	r.send(ws.OpPing, true, []byte("are you there"))
	f := r.readFrame()
	if f.Header.OpCode != ws.OpPong || string(f.Payload) != "are you there" {
		t.Fatalf("got %v %q, want pong with the ping's payload", f.Header.OpCode, f.Payload)
	}
	r.send(ws.OpPong, true, []byte("unsolicited"))
	r.send(ws.OpText, false, []byte("frag"))
	r.send(ws.OpPing, true, []byte("mid"))
	r.send(ws.OpContinuation, false, []byte("men"))
	r.send(ws.OpPong, true, nil)
	r.send(ws.OpContinuation, true, []byte("ted"))
	f = r.readFrame()
	if f.Header.OpCode != ws.OpPong || string(f.Payload) != "mid" {
		t.Fatalf("interleaved ping not answered first: %v %q", f.Header.OpCode, f.Payload)
	}
	f = r.readFrame()
	if f.Header.OpCode != ws.OpText || !f.Header.Fin || string(f.Payload) != "fragmented" {
		t.Fatalf("reassembled message: %v fin=%v %q", f.Header.OpCode, f.Header.Fin, f.Payload)
	}
	// Byte-by-byte delivery of a frame (every split point) still works.
	frame := clientFrame(ws.OpBinary, true, []byte("slow bytes"))
	for _, b := range frame {
		r.write([]byte{b})
	}
	f = r.readFrame()
	if string(f.Payload) != "slow bytes" {
		t.Fatalf("byte-by-byte frame echoed as %q", f.Payload)
	}
	code, _ := func() (ws.StatusCode, string) {
		r.send(ws.OpClose, true, []byte{0x03, 0xe8})
		return r.expectClose()
	}()
	if code != 1000 {
		t.Fatalf("close echo code %d", code)
	}
}

// TestEmptyCloseAnsweredEmpty: a close without a payload is answered with a close without one.
func TestEmptyCloseAnsweredEmpty(t *testing.T) {
	s := echoServer(t)
	r := dialRaw(t, s).handshake()
	r.send(ws.OpClose, true, nil)
	f := r.readFrame()
	if f.Header.OpCode != ws.OpClose || len(f.Payload) != 0 {
		t.Fatalf("got %v with %d payload bytes", f.Header.OpCode, len(f.Payload))
	}
	r.expectEOF()
}

// TestFramesAfterCloseIgnored: data after the peer's close frame is not echoed.
func TestFramesAfterCloseIgnored(t *testing.T) {
	s := echoServer(t)
	r := dialRaw(t, s).handshake()
	var b []byte
	b = append(b, clientFrame(ws.OpClose, true, []byte{0x03, 0xe8, 'o', 'k'})...)
	b = append(b, clientFrame(ws.OpText, true, []byte("after close"))...)
	r.write(b)
	f := r.readFrame()
	if f.Header.OpCode != ws.OpClose {
		t.Fatalf("first frame %v, want close", f.Header.OpCode)
	}
	r.expectEOF() // nothing else, in particular no echo of "after close"
}

// TestIdleConnectionsNoGoroutines: thousands of idle connections add no goroutine.
func TestIdleConnectionsNoGoroutines(t *testing.T) {
	s := echoServer(t)
	before := runtime.NumGoroutine()
	const n = 5000
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	req := []byte(upgradeRequest("/"))
	buf := make([]byte, 512)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		k, err := c.Read(buf)
		if err != nil || !bytes.HasPrefix(buf[:k], []byte("HTTP/1.1 101")) {
			t.Fatalf("conn %d: handshake response %q, %v", i, buf[:k], err)
		}
	}
	if got := s.Connections(); got != n {
		t.Fatalf("server holds %d connections, want %d", got, n)
	}
	// The test's own net.Conns use no goroutines either; allow a little slack for the runtime.
	if after := runtime.NumGoroutine(); after > before+10 {
		t.Fatalf("goroutines grew from %d to %d with %d idle connections", before, after, n)
	}
}
