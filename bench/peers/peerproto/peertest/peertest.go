package peertest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// FreeAddr returns a 127.0.0.1 address whose port was free a moment ago, for
// servers that must be started with a concrete port (SO_REUSEPORT listeners
// opened per event loop would otherwise each get a different port).
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// dial opens a client connection and registers its closing with t.
func dial(t testing.TB, url string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("handshake status %d", resp.StatusCode)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func write(t testing.TB, c *websocket.Conn, mt int, p []byte) {
	t.Helper()
	if err := c.WriteMessage(mt, p); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func read(t testing.TB, c *websocket.Conn) (int, []byte) {
	t.Helper()
	mt, p, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return mt, p
}

// expectText reads one message and requires it to be a text message equal
// to want.
func expectText(t testing.TB, c *websocket.Conn, want string) {
	t.Helper()
	mt, p := read(t, c)
	if mt != websocket.TextMessage || string(p) != want {
		t.Fatalf("got type %d %s\nwant text %s", mt, p, want)
	}
}

// checkPing sends a ping with a payload and proves the pong carried the same
// payload (RFC 6455, section 5.5.3). The pong is handled inside a read, so a
// request that triggers replyWant is sent after the ping and read back.
func checkPing(t testing.TB, c *websocket.Conn, request []byte, replyWant string) {
	t.Helper()
	var got []string
	c.SetPongHandler(func(s string) error { got = append(got, s); return nil })
	if err := c.WriteControl(websocket.PingMessage, []byte("are-you-there"), time.Time{}); err != nil {
		t.Fatalf("ping: %v", err)
	}
	write(t, c, websocket.TextMessage, request)
	expectText(t, c, replyWant)
	if len(got) != 1 || got[0] != "are-you-there" {
		t.Fatalf("pongs received %q, want one with the ping's payload", got)
	}
}

// checkClose starts the closing handshake and requires the server to answer
// with a close frame carrying the same status code (RFC 6455, section 5.5.1).
func checkClose(t testing.TB, c *websocket.Conn) {
	t.Helper()
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	if err := c.WriteControl(websocket.CloseMessage, msg, time.Time{}); err != nil {
		t.Fatalf("close: %v", err)
	}
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
			t.Fatalf("after close got %v, want a close frame with code 1000", err)
		}
		return
	}
}

// EchoEmpty checks that an echo-mode server at url echoes empty text and
// binary messages. It is separate from Echo because nbio v1.6.8 never
// delivers an empty data message to its OnMessage handler.
func EchoEmpty(t testing.TB, url string) {
	t.Helper()
	c := dial(t, url)
	write(t, c, websocket.TextMessage, nil)
	expectText(t, c, "")
	write(t, c, websocket.BinaryMessage, nil)
	if mt, p := read(t, c); mt != websocket.BinaryMessage || len(p) != 0 {
		t.Fatalf("empty binary echo: type %d, %d bytes", mt, len(p))
	}
	write(t, c, websocket.TextMessage, []byte("after"))
	expectText(t, c, "after")
}

// Echo checks an echo-mode server at url: text, binary, large
// (fragmented by the client) and pipelined messages come back unchanged and
// in order; ping gets its pong; close gets its close.
func Echo(t testing.TB, url string) {
	t.Helper()
	c := dial(t, url)

	write(t, c, websocket.TextMessage, []byte("hello"))
	expectText(t, c, "hello")

	rng := rand.New(rand.NewPCG(1, 2))
	bin := make([]byte, 64)
	for i := range bin {
		bin[i] = byte(rng.Uint32())
	}
	write(t, c, websocket.BinaryMessage, bin)
	if mt, p := read(t, c); mt != websocket.BinaryMessage || !bytes.Equal(p, bin) {
		t.Fatalf("binary echo: type %d, equal %v", mt, bytes.Equal(p, bin))
	}

	// gorilla's client writes this through a 4 KiB buffer: many frames,
	// continuation opcodes, 16-bit lengths; the echo must be one message.
	large := bytes.Repeat([]byte("0123456789abcdef"), 200_000/16)
	write(t, c, websocket.TextMessage, large)
	if mt, p := read(t, c); mt != websocket.TextMessage || !bytes.Equal(p, large) {
		t.Fatalf("large echo: type %d, len %d want %d", mt, len(p), len(large))
	}

	const pipelined = 200
	for i := range pipelined {
		write(t, c, websocket.TextMessage, fmt.Appendf(nil, "msg-%d", i))
	}
	for i := range pipelined {
		expectText(t, c, fmt.Sprintf("msg-%d", i))
	}

	checkPing(t, c, []byte("after-ping"), "after-ping")
	checkClose(t, c)

	// A second connection works independently of the first one closing.
	c2 := dial(t, url)
	write(t, c2, websocket.BinaryMessage, []byte{0, 1, 2})
	if mt, p := read(t, c2); mt != websocket.BinaryMessage || !bytes.Equal(p, []byte{0, 1, 2}) {
		t.Fatalf("second connection echo: type %d %v", mt, p)
	}
}

// PubSub checks a pubsub-mode server at url: subscribe replies carry the
// channel's last seq, publishes are acknowledged, fanned out to every
// subscriber with seq+1 and verbatim data, duplicates are refused, an
// unsubscribed client gets nothing, bad requests get wsgate's error codes,
// ping and close are answered. The server must be fresh (channels start at
// seq 0).
func PubSub(t testing.TB, url string) {
	t.Helper()
	const subscribers = 6
	subs := make([]*websocket.Conn, subscribers)
	for i := range subs {
		subs[i] = dial(t, url)
		write(t, subs[i], websocket.TextMessage, []byte(`{"op":"subscribe","channel":"news"}`))
		expectText(t, subs[i], `{"op":"subscribed","channel":"news","seq":0}`)
	}
	pub := dial(t, url)

	// Subscribing twice is idempotent: one reply, one delivery per publish.
	write(t, subs[0], websocket.TextMessage, []byte(`{"op":"subscribe","channel":"news"}`))
	expectText(t, subs[0], `{"op":"subscribed","channel":"news","seq":0}`)

	write(t, pub, websocket.TextMessage, []byte(`{"op":"publish","channel":"news","id":"m1","data":{"n": 1}}`))
	expectText(t, pub, `{"op":"published","channel":"news","seq":1,"id":"m1"}`)
	for _, s := range subs {
		expectText(t, s, `{"op":"message","channel":"news","seq":1,"id":"m1","data":{"n": 1}}`)
	}

	write(t, pub, websocket.TextMessage, []byte(`{"op":"publish","channel":"news","id":"m1","data":2}`))
	expectText(t, pub, `{"op":"duplicate","channel":"news","id":"m1"}`)

	write(t, pub, websocket.TextMessage, []byte(`{"op":"publish","channel":"news","data":[1,"two"]}`))
	expectText(t, pub, `{"op":"published","channel":"news","seq":2}`)
	for _, s := range subs {
		expectText(t, s, `{"op":"message","channel":"news","seq":2,"data":[1,"two"]}`)
	}

	// An unsubscribed client receives nothing: if the seq-3 message reached
	// it, it would be read before the reply to its new subscribe.
	a := subs[0]
	write(t, a, websocket.TextMessage, []byte(`{"op":"unsubscribe","channel":"news"}`))
	expectText(t, a, `{"op":"unsubscribed","channel":"news"}`)
	write(t, pub, websocket.TextMessage, []byte(`{"op":"publish","channel":"news","id":"m3","data":"three"}`))
	expectText(t, pub, `{"op":"published","channel":"news","seq":3,"id":"m3"}`)
	for _, s := range subs[1:] {
		expectText(t, s, `{"op":"message","channel":"news","seq":3,"id":"m3","data":"three"}`)
	}
	write(t, a, websocket.TextMessage, []byte(`{"op":"subscribe","channel":"news"}`))
	expectText(t, a, `{"op":"subscribed","channel":"news","seq":3}`)

	// A channel nobody listens to still counts and acknowledges; other
	// channels' subscribers see nothing of it (proven by the next message).
	write(t, pub, websocket.TextMessage, []byte(`{"op":"publish","channel":"empty.room","data":null}`))
	expectText(t, pub, `{"op":"published","channel":"empty.room","seq":1}`)

	write(t, pub, websocket.TextMessage, []byte(`{"op":"publish","channel":"news","id":"m4","data":true}`))
	expectText(t, pub, `{"op":"published","channel":"news","seq":4,"id":"m4"}`)
	for _, s := range subs {
		expectText(t, s, `{"op":"message","channel":"news","seq":4,"id":"m4","data":true}`)
	}

	// Refused requests get wsgate's error codes and change nothing.
	for _, bad := range []struct {
		mt   int
		req  string
		want string
	}{
		{websocket.TextMessage, `not json`, `{"op":"error","code":400,"reason":"invalid JSON"}`},
		{websocket.TextMessage, `{"op":"dance","channel":"news"}`, `{"op":"error","code":400,"reason":"unknown op"}`},
		{websocket.TextMessage, `{"op":"publish","channel":"news"}`, `{"op":"error","code":400,"reason":"\"data\" is required and must be JSON"}`},
		{websocket.TextMessage, `{"op":"subscribe","channel":"bad name"}`, `{"op":"error","code":422,"reason":"invalid channel name"}`},
		{websocket.TextMessage, `{"op":"unsubscribe","channel":"nowhere"}`, `{"op":"error","code":404,"reason":"not subscribed to nowhere"}`},
		{websocket.BinaryMessage, `{"op":"publish","channel":"news","data":0}`, `{"op":"error","code":400,"reason":"binary frames are not part of the protocol"}`},
	} {
		write(t, pub, bad.mt, []byte(bad.req))
		expectText(t, pub, bad.want)
	}

	checkPing(t, a, []byte(`{"op":"subscribe","channel":"ping.check"}`), `{"op":"subscribed","channel":"ping.check","seq":0}`)

	// A subscriber that closes is dropped from the channel: publishing
	// afterwards still reaches the others and is acknowledged with seq 5
	// (the refused binary publish did not count).
	checkClose(t, subs[1])
	write(t, pub, websocket.TextMessage, []byte(`{"op":"publish","channel":"news","data":5}`))
	expectText(t, pub, `{"op":"published","channel":"news","seq":5}`)
	for i, s := range subs {
		if i == 1 {
			continue
		}
		expectText(t, s, `{"op":"message","channel":"news","seq":5,"data":5}`)
	}
	checkClose(t, pub)
}
