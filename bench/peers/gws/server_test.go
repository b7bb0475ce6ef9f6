package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/bench/peers/peerproto/peertest"
)

// start serves mode on a free loopback port for the life of the test and
// returns its ws:// URL.
func start(t *testing.T, mode string) string {
	return startWith(t, mode, false)
}

func startWith(t *testing.T, mode string, compression bool) string {
	t.Helper()
	srv, err := newServer(mode, compression)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "ws://" + ln.Addr().String() + "/"
}

func TestEcho(t *testing.T)      { peertest.Echo(t, start(t, "echo")) }
func TestEchoEmpty(t *testing.T) { peertest.EchoEmpty(t, start(t, "echo")) }
func TestPubSub(t *testing.T)    { peertest.PubSub(t, start(t, "pubsub")) }

func TestUnknownMode(t *testing.T) {
	if _, err := newServer("relay", false); err == nil {
		t.Fatal("newServer accepted an unknown mode")
	}
}

// TestPubSubCompression: with -compression the protocol works unchanged, a gorilla client that
// offers permessage-deflate gets it without context takeover, and a large publish reaches a
// compressing and a plain subscriber alike.
func TestPubSubCompression(t *testing.T) {
	url := startWith(t, "pubsub", true)
	peertest.PubSub(t, url)
	dial := func(compress bool) *websocket.Conn {
		d := websocket.Dialer{EnableCompression: compress}
		c, resp, err := d.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		ext := resp.Header.Get("Sec-WebSocket-Extensions")
		if compress != strings.Contains(ext, "server_no_context_takeover") {
			t.Fatalf("compression %v: Sec-WebSocket-Extensions %q", compress, ext)
		}
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		return c
	}
	z, plain := dial(true), dial(false)
	for _, c := range []*websocket.Conn{z, plain} {
		c.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","channel":"big"}`))
		if _, b, err := c.ReadMessage(); err != nil || !strings.Contains(string(b), "subscribed") {
			t.Fatalf("subscribe: %s %v", b, err)
		}
	}
	data := `"` + strings.Repeat("compressible ", 200) + `"`
	z.WriteMessage(websocket.TextMessage, []byte(`{"op":"publish","channel":"big","data":`+data+`}`))
	for _, c := range []*websocket.Conn{z, plain} {
		for {
			_, b, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), `"op":"message"`) {
				if !strings.Contains(string(b), data) {
					t.Fatalf("message %.100s", b)
				}
				break
			}
		}
	}
}
