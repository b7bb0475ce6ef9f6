package wsgate

import (
	"bytes"
	"compress/flate"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/pubsub"
)

// permessage-deflate (RFC 7692) end to end, against gorilla/websocket, coder/websocket and a raw
// client that compresses and inflates with compress/flate itself.

func deflateConfig(f func(c *ConnConfig)) ConnConfig {
	return connCfg(func(c *ConnConfig) {
		c.Compression = true
		if f != nil {
			f(c)
		}
	})
}

// compressRaw compresses p as a client does (RFC 7692 section 7.2.1), with compress/flate.
func compressRaw(t testing.TB, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(p)
	w.Flush()
	z := b.Bytes()
	if !bytes.HasSuffix(z, []byte{0, 0, 0xff, 0xff}) {
		t.Fatalf("flush did not end with the empty stored block: %x", z[max(0, len(z)-8):])
	}
	return z[:len(z)-4]
}

// inflateRaw inflates a compressed server payload (RFC 7692 section 7.2.2), with compress/flate.
func inflateRaw(t testing.TB, z []byte) []byte {
	t.Helper()
	r := flate.NewReader(io.MultiReader(bytes.NewReader(z), bytes.NewReader([]byte{0, 0, 0xff, 0xff})))
	var out bytes.Buffer
	_, err := io.Copy(&out, r)
	if err != nil && err != io.ErrUnexpectedEOF {
		t.Fatalf("inflate: %v", err)
	}
	return out.Bytes()
}

// deflateHandshake upgrades with the given Sec-WebSocket-Extensions offer (none if empty) and
// returns the extension the server answered with.
func (r *rawClient) deflateHandshake(offer string) string {
	r.t.Helper()
	req := upgradeRequest("/")
	if offer != "" {
		req = strings.Replace(req, "\r\n\r\n", "\r\nSec-WebSocket-Extensions: "+offer+"\r\n\r\n", 1)
	}
	r.write([]byte(req))
	status, headers := r.readHTTP()
	if status != 101 {
		r.t.Fatalf("handshake status %d, want 101", status)
	}
	return headers["sec-websocket-extensions"]
}

// sendCompressed sends p as one compressed message in frames of at most frag bytes of
// compressed payload (0: one frame): RSV1 on the first frame only (RFC 7692 section 6.1).
func (r *rawClient) sendCompressed(op ws.OpCode, p []byte, frag int) {
	r.t.Helper()
	z := compressRaw(r.t, p)
	if frag <= 0 || frag >= len(z) {
		r.write(encodeFrame(op, true, 4, true, z))
		return
	}
	var out []byte
	for i := 0; i < len(z); i += frag {
		o, rsv := ws.OpContinuation, byte(0)
		if i == 0 {
			o, rsv = op, 4
		}
		out = append(out, encodeFrame(o, i+frag >= len(z), rsv, true, z[i:min(i+frag, len(z))])...)
	}
	r.write(out)
}

// readMessage reads one data message (skipping pings) and returns its opcode, whether it was
// compressed, and its payload inflated.
func (r *rawClient) readMessage() (ws.OpCode, bool, []byte) {
	r.t.Helper()
	for {
		f := r.readFrame()
		switch f.Header.OpCode {
		case ws.OpPing, ws.OpPong:
			continue
		case ws.OpClose:
			code, reason := ws.ParseCloseFrameData(f.Payload)
			r.t.Fatalf("close %d %q instead of a message", code, reason)
		}
		if !f.Header.Fin {
			r.t.Fatal("the server fragmented a message")
		}
		if f.Header.Rsv&4 != 0 {
			return f.Header.OpCode, true, inflateRaw(r.t, f.Payload)
		}
		if f.Header.Rsv != 0 {
			r.t.Fatalf("RSV %b", f.Header.Rsv)
		}
		return f.Header.OpCode, false, f.Payload
	}
}

const deflateAnswer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

// TestDeflateEchoGorilla: gorilla/websocket with EnableCompression (it compresses every message
// it writes, and fragments those over its write buffer): text, binary, fragmented and large
// messages come back whole; both directions were compressed.
func TestDeflateEchoGorilla(t *testing.T) {
	s := startServer(t, Config{Handler: Echo{}, Conn: deflateConfig(nil)})
	d := websocket.Dialer{EnableCompression: true, WriteBufferSize: 4096, ReadBufferSize: 4096}
	c, resp, err := d.Dial(wsURL(s, "/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != deflateAnswer {
		t.Fatalf("Sec-WebSocket-Extensions %q", got)
	}
	msgs := []struct {
		typ int
		p   []byte
	}{
		{websocket.TextMessage, []byte("hello")}, // under the minimum: sent back plain
		{websocket.TextMessage, []byte("")},
		{websocket.TextMessage, []byte(strings.Repeat(`{"k":"value"},`, 100))}, // compressed both ways
		{websocket.BinaryMessage, randBytes(1000, 1)},                          // incompressible: back plain
		{websocket.BinaryMessage, bytes.Repeat([]byte("binary "), 20000)},      // fragmented by gorilla
		{websocket.TextMessage, []byte(strings.Repeat("ü€𝄞 κόσμε ", 40000))},   // fragmented, multibyte
		{websocket.BinaryMessage, randBytes(1<<20, 5)},                         // 1 MiB, incompressible
	}
	for i, m := range msgs {
		if err := c.WriteMessage(m.typ, m.p); err != nil {
			t.Fatalf("msg %d: write: %v", i, err)
		}
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		typ, got, err := c.ReadMessage()
		if err != nil || typ != m.typ || !bytes.Equal(got, m.p) {
			t.Fatalf("msg %d (%d bytes): type %d, %d bytes back, %v", i, len(m.p), typ, len(got), err)
		}
	}
	st := zStats(s)
	if st.inflated < 4 || st.compressed < 3 || st.deflate != 1 {
		t.Fatalf("inflated %d, compressed %d messages, %d deflate handshakes", st.inflated, st.compressed, st.deflate)
	}
}

type deflateStats struct{ inflated, compressed, deflate uint64 }

func zStats(s *Server) deflateStats {
	var d deflateStats
	for _, e := range s.Engines() {
		d.inflated += e.Stats.MessagesInflated.Load()
		d.compressed += e.Stats.MessagesCompressed.Load()
		d.deflate += e.Stats.DeflateHandshakes.Load()
	}
	return d
}

// TestDeflateEchoCoder: coder/websocket in both of its compression modes. With context takeover
// it offers a plain "permessage-deflate"; the server's answer makes it compress every message on
// its own (client_no_context_takeover), so both modes work.
func TestDeflateEchoCoder(t *testing.T) {
	s := startServer(t, Config{Handler: Echo{}, Conn: deflateConfig(nil)})
	for _, mode := range []coder.CompressionMode{coder.CompressionContextTakeover, coder.CompressionNoContextTakeover} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			ctx := ctxT(t)
			c, resp, err := coder.Dial(ctx, wsURL(s, "/"), &coder.DialOptions{CompressionMode: mode, CompressionThreshold: 64})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			c.SetReadLimit(64 << 20)
			if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != deflateAnswer {
				t.Fatalf("Sec-WebSocket-Extensions %q", got)
			}
			msgs := []struct {
				typ coder.MessageType
				p   []byte
			}{
				{coder.MessageText, []byte(strings.Repeat(`{"price":42.5,"sym":"ABC"}`, 40))},
				{coder.MessageText, []byte(strings.Repeat(`{"price":42.5,"sym":"ABC"}`, 40))}, // a repeat: no window kept
				{coder.MessageBinary, bytes.Repeat([]byte{1, 2, 3, 4, 5}, 100000)},
				{coder.MessageText, []byte("short")},
				{coder.MessageBinary, randBytes(300000, 9)},
			}
			for i, m := range msgs {
				// A streamed writer sends several frames: the fragmented case.
				w, err := c.Writer(ctx, m.typ)
				if err != nil {
					t.Fatal(err)
				}
				for p := m.p; len(p) > 0; p = p[min(len(p), 7000):] {
					if _, err := w.Write(p[:min(len(p), 7000)]); err != nil {
						t.Fatalf("msg %d: write: %v", i, err)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				typ, got, err := c.Read(ctx)
				if err != nil || typ != m.typ || !bytes.Equal(got, m.p) {
					t.Fatalf("msg %d (%d bytes): type %v, %d bytes back, %v", i, len(m.p), typ, len(got), err)
				}
			}
			c.Close(coder.StatusNormalClosure, "")
		})
	}
}

// TestDeflateRaw: exact frames. A compressed message in one frame and in fragments (with a ping
// between them) comes back compressed; a message under -compression-min-size comes back plain.
func TestDeflateRaw(t *testing.T) {
	s := startServer(t, Config{Handler: Echo{}, Conn: deflateConfig(nil)})
	r := dialRaw(t, s)
	if got := r.deflateHandshake("permessage-deflate; client_max_window_bits"); got != deflateAnswer {
		t.Fatalf("Sec-WebSocket-Extensions %q", got)
	}
	text := []byte(strings.Repeat("The quick brown fox jumps over the lazy dog. ", 50))
	r.sendCompressed(ws.OpText, text, 0)
	if op, z, got := r.readMessage(); op != ws.OpText || !z || !bytes.Equal(got, text) {
		t.Fatalf("one frame: op %v compressed %v %q", op, z, got)
	}
	// Fragments with a ping in the middle.
	zt := compressRaw(t, text)
	r.write(encodeFrame(ws.OpText, false, 4, true, zt[:10]))
	r.send(ws.OpPing, true, []byte("p"))
	if f := r.readFrame(); f.Header.OpCode != ws.OpPong || f.Header.Rsv != 0 {
		t.Fatalf("pong: %+v", f.Header)
	}
	r.write(encodeFrame(ws.OpContinuation, false, 0, true, zt[10:20]))
	r.write(encodeFrame(ws.OpContinuation, true, 0, true, zt[20:]))
	if op, z, got := r.readMessage(); op != ws.OpText || !z || !bytes.Equal(got, text) {
		t.Fatalf("fragments: op %v compressed %v %q", op, z, got)
	}
	// A plain message on a compressing connection, under the minimum size.
	r.send(ws.OpBinary, true, []byte("tiny"))
	if op, z, got := r.readMessage(); op != ws.OpBinary || z || string(got) != "tiny" {
		t.Fatalf("small: op %v compressed %v %q", op, z, got)
	}
	// A compressed empty message.
	r.sendCompressed(ws.OpBinary, nil, 0)
	if op, z, got := r.readMessage(); op != ws.OpBinary || z || len(got) != 0 {
		t.Fatalf("empty: op %v compressed %v %q", op, z, got)
	}
	r.send(ws.OpClose, true, []byte{0x03, 0xe8})
	if code, _ := r.expectClose(); code != 1000 {
		t.Fatalf("close %d", code)
	}
}

// TestDeflateFailures: the RFC 6455 and RFC 7692 violations and their close codes.
func TestDeflateFailures(t *testing.T) {
	bad := []byte{'a', 0xff, 'b'}
	tests := []struct {
		name  string
		offer string
		send  func(r *rawClient)
		code  ws.StatusCode
	}{
		{"RSV1 without negotiation", "", func(r *rawClient) {
			r.write(encodeFrame(ws.OpText, true, 4, true, compressRaw(t, []byte("hello"))))
		}, 1002},
		{"RSV1 when the offer was declined", "permessage-deflate; server_max_window_bits=10", func(r *rawClient) {
			r.write(encodeFrame(ws.OpText, true, 4, true, compressRaw(t, []byte("hello"))))
		}, 1002},
		{"RSV1 on a continuation", "permessage-deflate", func(r *rawClient) {
			z := compressRaw(t, []byte("hello hello"))
			r.write(encodeFrame(ws.OpText, false, 4, true, z[:3]))
			r.write(encodeFrame(ws.OpContinuation, true, 4, true, z[3:]))
		}, 1002},
		{"RSV1 on a ping", "permessage-deflate", func(r *rawClient) {
			r.write(encodeFrame(ws.OpPing, true, 4, true, nil))
		}, 1002},
		{"RSV1 on a close", "permessage-deflate", func(r *rawClient) {
			r.closeSent = true
			r.write(encodeFrame(ws.OpClose, true, 4, true, []byte{0x03, 0xe8}))
		}, 1002},
		{"RSV2 with deflate", "permessage-deflate", func(r *rawClient) {
			r.write(encodeFrame(ws.OpText, true, 2, true, []byte("x")))
		}, 1002},
		{"invalid UTF-8 once inflated", "permessage-deflate", func(r *rawClient) {
			r.sendCompressed(ws.OpText, bad, 0)
		}, 1007},
		{"invalid UTF-8 across fragments once inflated", "permessage-deflate", func(r *rawClient) {
			r.sendCompressed(ws.OpText, append(bytes.Repeat([]byte("€"), 300), 0xe2, 0x82), 16)
		}, 1007},
		{"not DEFLATE", "permessage-deflate", func(r *rawClient) {
			r.write(encodeFrame(ws.OpBinary, true, 4, true, []byte{0xff, 0xff, 0xff, 0xff}))
		}, 1007},
		{"deflate bomb", "permessage-deflate", func(r *rawClient) {
			r.sendCompressed(ws.OpBinary, make([]byte, 32<<20), 0) // 32 MiB of zeros, ~32 KiB on the wire
		}, 1009},
		{"fragmented deflate bomb", "permessage-deflate", func(r *rawClient) {
			r.sendCompressed(ws.OpText, bytes.Repeat([]byte("a"), 32<<20), 1000)
		}, 1009},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Config{Handler: Echo{}, Conn: deflateConfig(func(c *ConnConfig) { c.MaxMessage = 1 << 20 })})
			r := dialRaw(t, s)
			r.deflateHandshake(tt.offer)
			tt.send(r)
			if code, reason := r.expectClose(); code != tt.code {
				t.Fatalf("close %d %q, want %d", code, reason, tt.code)
			}
		})
	}
}

// TestDeflateNegotiation: offers the server accepts, and offers it declines; a declined offer
// leaves the connection working uncompressed, never fails the handshake. With -compression off
// no offer is accepted.
func TestDeflateNegotiation(t *testing.T) {
	on := startServer(t, Config{Handler: Echo{}, Conn: deflateConfig(nil)})
	off := startServer(t, Config{Handler: Echo{}})
	tests := []struct {
		s      *Server
		offer  string
		answer string
	}{
		{on, "permessage-deflate; client_max_window_bits", deflateAnswer},
		{on, "permessage-deflate; server_no_context_takeover; client_no_context_takeover", deflateAnswer},
		{on, "permessage-deflate; client_max_window_bits=9; server_max_window_bits=15", deflateAnswer + "; server_max_window_bits=15"},
		{on, `x-webkit-deflate-frame, permessage-deflate; client_max_window_bits="12"`, deflateAnswer},
		{on, "permessage-deflate; server_max_window_bits=12, permessage-deflate", deflateAnswer},
		{on, "permessage-deflate; server_max_window_bits=12", ""},
		{on, "permessage-deflate; client_no_context_takeover; client_no_context_takeover", ""},
		{on, "permessage-deflate; mystery=1", ""},
		{on, "permessage-deflate; server_max_window_bits=99", ""},
		{on, "permessage-deflate; client_max_window_bits=0x0f", ""},
		{on, `permessage-deflate; "quoted"`, ""},
		{on, ",,,;", ""},
		{on, "x-webkit-deflate-frame", ""},
		{off, "permessage-deflate; client_max_window_bits", ""},
	}
	for _, tt := range tests {
		r := dialRaw(t, tt.s)
		if got := r.deflateHandshake(tt.offer); got != tt.answer {
			t.Errorf("offer %q: answered %q, want %q", tt.offer, got, tt.answer)
			continue
		}
		msg := []byte(strings.Repeat("abc", 200))
		r.send(ws.OpText, true, msg)
		if op, z, got := r.readMessage(); op != ws.OpText || z != (tt.answer != "") || !bytes.Equal(got, msg) {
			t.Errorf("offer %q: echo op %v compressed %v, %d bytes", tt.offer, op, z, len(got))
		}
	}
}

// TestDeflateConformance covers what Autobahn's compression sections check (12.x: many message
// sizes, each sent and echoed compressed; 13.x: the same under the negotiated parameter
// variants), in both directions, with the messages also fragmented at several sizes. This
// repository has no Autobahn harness; these are its cases as table tests, read back with an
// independent inflater (compress/flate).
func TestDeflateConformance(t *testing.T) {
	s := startServer(t, Config{Handler: Echo{}, Conn: deflateConfig(func(c *ConnConfig) { c.CompressionMinSize = 1 })})
	offers := []string{ // 13.x's variants of the client's offer
		"permessage-deflate",
		"permessage-deflate; client_no_context_takeover",
		"permessage-deflate; server_no_context_takeover",
		"permessage-deflate; client_max_window_bits",
		"permessage-deflate; client_max_window_bits=9",
		"permessage-deflate; client_max_window_bits=15; client_no_context_takeover; server_no_context_takeover",
	}
	sizes := []int{16, 64, 256, 1024, 4096, 16384, 65536, 131072}
	frags := []int{0, 100, 1024, 4096}
	for _, offer := range offers {
		r := dialRaw(t, s)
		if got := r.deflateHandshake(offer); !strings.HasPrefix(got, deflateAnswer) {
			t.Fatalf("offer %q answered %q", offer, got)
		}
		for _, n := range sizes {
			for _, frag := range frags {
				// 12.1-12.3: text and binary payloads of varying compressibility.
				for k, p := range [][]byte{
					[]byte(strings.Repeat("Hello, world! ", n/14+1)[:n]),
					randBytes(n, uint64(n+frag)),
				} {
					op := ws.OpText
					if k == 1 {
						op = ws.OpBinary
					}
					r.sendCompressed(op, p, frag)
					gop, _, got := r.readMessage()
					if gop != op || !bytes.Equal(got, p) {
						t.Fatalf("offer %q size %d frag %d op %v: %d bytes back as %v", offer, n, frag, op, len(got), gop)
					}
				}
			}
		}
		r.send(ws.OpClose, true, []byte{0x03, 0xe8})
		if code, _ := r.expectClose(); code != 1000 {
			t.Fatalf("close %d", code)
		}
	}
}

// TestDeflatePubSubMix: one publish reaches compressing subscribers (gorilla, coder, raw) and
// plain ones (gorilla without compression, raw without an offer); the compressing ones get the
// same compressed frame, the plain ones the plain frame, and the message was compressed once.
func TestDeflatePubSubMix(t *testing.T) {
	s := pubsubServer(t, Config{Conn: deflateConfig(nil), Loops: 2}, pubsub.Config{})
	subscribeRaw := func(offer string) *rawClient {
		r := dialRaw(t, s)
		r.deflateHandshake(offer)
		r.send(ws.OpText, true, []byte(`{"op":"subscribe","channel":"mix"}`))
		if _, _, got := r.readMessage(); !strings.Contains(string(got), `"subscribed"`) {
			t.Fatalf("subscribe: %s", got)
		}
		return r
	}
	rawZ, rawPlain := subscribeRaw("permessage-deflate"), subscribeRaw("")
	gz := dialGorilla(t, s, true)
	gp := dialGorilla(t, s, false)
	ctx := ctxT(t)
	cc, _, err := coder.Dial(ctx, wsURL(s, "/"), &coder.DialOptions{CompressionMode: coder.CompressionNoContextTakeover})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.CloseNow()
	cc.Write(ctx, coder.MessageText, []byte(`{"op":"subscribe","channel":"mix"}`))
	if _, b, err := cc.Read(ctx); err != nil || !strings.Contains(string(b), `"subscribed"`) {
		t.Fatalf("coder subscribe: %s %v", b, err)
	}
	before := zStats(s).compressed
	data := `{"items":[` + strings.Repeat(`{"symbol":"ABC","price":101.25,"volume":1200},`, 30) + `{}]}`
	if code, body := apiPost(t, s, "/api/publish", "", "application/json", `{"channel":"mix","data":`+data+`}`); code != 200 {
		t.Fatalf("publish: %d %v", code, body)
	}
	want := func(got []byte, who string) {
		t.Helper()
		if !strings.Contains(string(got), `"data":`+data) {
			t.Fatalf("%s got %.200s", who, got)
		}
	}
	_, z, got := rawZ.readMessage()
	if !z {
		t.Fatal("the compressing raw subscriber got a plain frame")
	}
	want(got, "raw deflate")
	_, z, got = rawPlain.readMessage()
	if z {
		t.Fatal("the plain raw subscriber got a compressed frame")
	}
	want(got, "raw plain")
	for i, g := range []*websocket.Conn{gz, gp} {
		g.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, b, err := g.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		want(b, fmt.Sprint("gorilla ", i))
	}
	_, b, err := cc.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want(b, "coder")
	if n := zStats(s).compressed - before; n != 1 {
		t.Fatalf("the message was compressed %d times, want once", n)
	}
	// A broadcast too.
	if code, body := apiPost(t, s, "/api/broadcast", "", "application/json", `{"data":`+data+`}`); code != 200 {
		t.Fatalf("broadcast: %d %v", code, body)
	}
	if _, z, got = rawZ.readMessage(); !z || !strings.Contains(string(got), `"broadcast"`) {
		t.Fatalf("broadcast to the compressing subscriber: compressed %v %.100s", z, got)
	}
	if _, z, got = rawPlain.readMessage(); z || !strings.Contains(string(got), `"broadcast"`) {
		t.Fatalf("broadcast to the plain subscriber: compressed %v %.100s", z, got)
	}
	if n := zStats(s).compressed - before; n != 2 {
		t.Fatalf("%d compressions for a publish and a broadcast, want 2", n)
	}
}

func dialGorilla(t *testing.T, s *Server, compress bool) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{EnableCompression: compress}
	c, resp, err := d.Dial(wsURL(s, "/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if got := resp.Header.Get("Sec-WebSocket-Extensions"); (got != "") != compress {
		t.Fatalf("gorilla (compression %v) negotiated %q", compress, got)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	c.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","channel":"mix"}`))
	if _, b, err := c.ReadMessage(); err != nil || !strings.Contains(string(b), `"subscribed"`) {
		t.Fatalf("gorilla subscribe: %s %v", b, err)
	}
	return c
}

// TestDeflateMetrics: the compression counters reach /metrics.
func TestDeflateMetrics(t *testing.T) {
	s := startServer(t, Config{Handler: Echo{}, Conn: deflateConfig(nil), AdminAddr: "127.0.0.1:0"})
	d := websocket.Dialer{EnableCompression: true}
	c, _, err := d.Dial(wsURL(s, "/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := []byte(strings.Repeat("metrics ", 200))
	c.WriteMessage(websocket.TextMessage, msg)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, _, err := c.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.AdminAddr()+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"wsgate_deflate_handshakes_total 1",
		"wsgate_compressed_messages_total 1",
		fmt.Sprintf("wsgate_compression_bytes_before_total %d", len(msg)),
		"wsgate_compression_bytes_after_total ",
		"wsgate_compression_ratio ",
		"wsgate_inflated_messages_total 1",
		fmt.Sprintf("wsgate_inflate_bytes_after_total %d", len(msg)),
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
