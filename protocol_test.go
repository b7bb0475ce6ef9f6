package wsgate

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"
)

// TestMalformedFramesCloseCodes sends each class of protocol violation from a raw TCP client and
// asserts the close code the server fails the connection with, and that it then closes TCP.
func TestMalformedFramesCloseCodes(t *testing.T) {
	s := startServer(t, Config{Handler: Echo{}, Conn: connCfg(func(c *ConnConfig) { c.MaxMessage = 1 << 16 })})
	closeFrame := func(code uint16, reason string) []byte {
		p := binary.BigEndian.AppendUint16(nil, code)
		return clientFrame(ws.OpClose, true, append(p, reason...))
	}
	cases := []struct {
		name  string
		bytes []byte
		want  ws.StatusCode
	}{
		{"rsv1 without extension", encodeFrame(ws.OpText, true, 4, true, []byte("x")), 1002},
		{"rsv2", encodeFrame(ws.OpText, true, 2, true, []byte("x")), 1002},
		{"rsv3 on ping", encodeFrame(ws.OpPing, true, 1, true, nil), 1002},
		{"reserved data opcode 3", clientFrame(3, true, nil), 1002},
		{"reserved data opcode 7", clientFrame(7, true, nil), 1002},
		{"reserved control opcode 11", clientFrame(11, true, nil), 1002},
		{"reserved control opcode 15", clientFrame(15, true, nil), 1002},
		{"unmasked client frame", encodeFrame(ws.OpText, true, 0, false, []byte("x")), 1002},
		{"control frame over 125 bytes", clientFrame(ws.OpPing, true, make([]byte, 126)), 1002},
		{"fragmented control frame", clientFrame(ws.OpPing, false, []byte("x")), 1002},
		{"continuation without start", clientFrame(ws.OpContinuation, true, []byte("x")), 1002},
		{"new data frame inside fragmented message", append(clientFrame(ws.OpText, false, []byte("a")), clientFrame(ws.OpBinary, true, []byte("b"))...), 1002},
		{"close payload of one byte", clientFrame(ws.OpClose, true, []byte{3}), 1002},
		{"close code 0", closeFrame(0, ""), 1002},
		{"close code 999", closeFrame(999, ""), 1002},
		{"close code 1004", closeFrame(1004, ""), 1002},
		{"close code 1005", closeFrame(1005, ""), 1002},
		{"close code 1006", closeFrame(1006, ""), 1002},
		{"close code 1015", closeFrame(1015, ""), 1002},
		{"close code 1016", closeFrame(1016, ""), 1002},
		{"close code 2999", closeFrame(2999, ""), 1002},
		{"close code 5000", closeFrame(5000, ""), 1002},
		{"close code 65535", closeFrame(65535, ""), 1002},
		{"close reason invalid utf-8", closeFrame(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"), 1007},
		{"invalid utf-8 text", clientFrame(ws.OpText, true, []byte{0xc0, 0xaf}), 1007},
		{"surrogate in text", clientFrame(ws.OpText, true, []byte("\xed\xa0\x80")), 1007},
		{"truncated code point at message end", clientFrame(ws.OpText, true, []byte("ok\xe2\x82")), 1007},
		{"message over the limit in one frame", clientFrame(ws.OpBinary, true, make([]byte, 1<<16+1)), 1009},
		{"message over the limit in fragments", append(clientFrame(ws.OpBinary, false, make([]byte, 1<<15)), clientFrame(ws.OpContinuation, true, make([]byte, 1<<15+1))...), 1009},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, s).handshake()
			r.write(tc.bytes)
			code, reason := r.expectClose()
			if code != tc.want {
				t.Fatalf("close code %d (%q), want %d", code, reason, tc.want)
			}
		})
	}
}

// TestInvalidUTF8FailsFast: an invalid sequence in the first fragment fails the connection at
// once, without waiting for the rest of the message.
func TestInvalidUTF8FailsFast(t *testing.T) {
	s := echoServer(t)
	r := dialRaw(t, s).handshake()
	r.send(ws.OpText, false, []byte("valid start \xf4\x90\x80\x80")) // > U+10FFFF
	code, _ := r.expectClose()                                       // no continuation was ever sent
	if code != 1007 {
		t.Fatalf("close code %d, want 1007", code)
	}
	// A code point split across fragments is fine.
	r = dialRaw(t, s).handshake()
	r.send(ws.OpText, false, []byte("\xce"))
	r.send(ws.OpContinuation, true, []byte("\xba"))
	if f := r.readFrame(); string(f.Payload) != "κ" {
		t.Fatalf("split code point echoed as %q", f.Payload)
	}
}

// TestCloseCodesEchoed: valid close codes (including registered 1012-1014 and 3000-4999) are
// echoed.
func TestCloseCodesEchoed(t *testing.T) {
	s := echoServer(t)
	for _, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} {
		r := dialRaw(t, s).handshake()
		r.send(ws.OpClose, true, binary.BigEndian.AppendUint16(nil, code))
		if got, _ := r.expectClose(); uint16(got) != code {
			t.Fatalf("sent close %d, server echoed %d", code, got)
		}
	}
}

// TestHandshakeRejections: every bad request gets a proper HTTP status and the socket closed.
func TestHandshakeRejections(t *testing.T) {
	s := startServer(t, Config{Handler: Echo{}})
	good := upgradeRequest("/")
	cases := []struct {
		name, req string
		status    int
		header    string
		reason    string
	}{
		{"POST", strings.Replace(good, "GET", "POST", 1), 405, "", "method"},
		{"no upgrade header", strings.Replace(good, "Upgrade: websocket\r\n", "", 1), 400, "", "upgrade"},
		{"wrong upgrade", strings.Replace(good, "Upgrade: websocket", "Upgrade: h2c", 1), 400, "", "upgrade"},
		{"no connection header", strings.Replace(good, "Connection: Upgrade\r\n", "", 1), 400, "", "connection"},
		{"no key", strings.Replace(good, "Sec-WebSocket-Key: "+testKey+"\r\n", "", 1), 400, "", "key"},
		{"short key", strings.Replace(good, testKey, "c2hvcnQ=", 1), 400, "", "key"},
		{"version 8", strings.Replace(good, "Version: 13", "Version: 8", 1), 426, "sec-websocket-version", "version"},
		{"HTTP/1.0", strings.Replace(good, "HTTP/1.1", "HTTP/1.0", 1), 505, "", "proto"},
		{"plain HTTP GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "", "upgrade"},
		{"not HTTP at all", "\x16\x03\x01 hello tls?\r\n\r\n", 400, "", "malformed"},
		{"header over 8 KiB", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 9000) + "\r\n\r\n", 431, "", "too_large"},
		{"unterminated header over 8 KiB", "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 9000), 431, "", "too_large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, s)
			r.write([]byte(tc.req))
			status, h := r.readHTTP()
			if status != tc.status {
				t.Fatalf("status %d, want %d", status, tc.status)
			}
			if tc.header != "" && h[tc.header] != "13" {
				t.Fatalf("header %s = %q, want 13", tc.header, h[tc.header])
			}
			r.c.(*net.TCPConn).CloseWrite()
			r.expectEOF()
			if v := metricValue(t, s, `wsgate_handshake_rejects_total{reason="`+tc.reason+`"}`); v < 1 {
				t.Fatalf("rejection not counted under reason %q", tc.reason)
			}
		})
	}
}

// TestPipelinedFramesAfterHandshake: frames sent in the same segment as the request are served.
func TestPipelinedFramesAfterHandshake(t *testing.T) {
	s := echoServer(t)
	r := dialRaw(t, s)
	b := []byte(upgradeRequest("/"))
	b = append(b, clientFrame(ws.OpText, true, []byte("early"))...)
	r.write(b)
	if st, _ := r.readHTTP(); st != 101 {
		t.Fatalf("status %d", st)
	}
	if f := r.readFrame(); string(f.Payload) != "early" {
		t.Fatalf("got %q", f.Payload)
	}
}

// TestShutdownSendsGoingAway: Shutdown sends 1001 to every client and returns once they answer.
func TestShutdownSendsGoingAway(t *testing.T) {
	s := echoServer(t)
	var rs []*rawClient
	for i := 0; i < 5; i++ {
		rs = append(rs, dialRaw(t, s).handshake())
	}
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctxT(t)) }()
	for _, r := range rs {
		code, reason := r.expectClose()
		if code != 1001 || reason == "" {
			t.Fatalf("close %d %q, want 1001 with a reason", code, reason)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
}

// TestShutdownTimeoutCutsSilentPeers: a peer that never answers the close is cut when the
// shutdown's deadline ends, and Shutdown says so. The deadline is the caller's context, ended by
// the test once the peer holds the close frame, so the verdict does not depend on timing.
func TestShutdownTimeoutCutsSilentPeers(t *testing.T) {
	s := startServer(t, Config{Handler: Echo{}, ShutdownTimeout: time.Hour,
		Conn: connCfg(func(c *ConnConfig) { c.CloseTimeout = time.Hour })})
	r := dialRaw(t, s).handshake()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()
	f := r.readFrame()
	if f.Header.OpCode != ws.OpClose {
		t.Fatalf("got %v", f.Header.OpCode)
	}
	cancel() // the peer stays silent; the deadline passes
	if err := <-done; err == nil {
		t.Fatal("Shutdown reported success although the peer never answered")
	}
	r.expectEOF()
}

// TestMaxConnsRefusedWith503: upgrades over -max-conns get HTTP 503 (counted), not EMFILE, and
// a slot freed by a close is usable again.
func TestMaxConnsRefusedWith503(t *testing.T) {
	s := startServer(t, Config{Handler: Echo{}, Conn: ConnConfig{MaxConns: 2}})
	var held []*websocket.Conn
	for i := 0; i < 2; i++ {
		c, _, err := websocket.DefaultDialer.Dial(wsURL(s, "/"), nil)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	_, resp, err := websocket.DefaultDialer.Dial(wsURL(s, "/"), nil)
	if err == nil || resp == nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third connection: %v %v, want 503 with Retry-After", err, resp)
	}
	if got := metricValue(t, s, `wsgate_handshake_rejects_total{reason="max_conns"}`); got != 1 {
		t.Fatalf("max_conns rejects %v", got)
	}
	held[0].Close()
	waitFor(t, "slot freed", func() bool { return s.Connections() == 1 })
	c, _, err := websocket.DefaultDialer.Dial(wsURL(s, "/"), nil)
	if err != nil {
		t.Fatalf("after a close, a new connection: %v", err)
	}
	c.Close()
	held[1].Close()
}

// TestHalfCloseStillAnswered: a client that sends its request (or a bad one) and shuts down its
// write side at once still gets the whole response before the server closes.
func TestHalfCloseStillAnswered(t *testing.T) {
	s := echoServer(t)
	// Repeated: the request and the FIN often arrive together, in one edge-triggered event,
	// which is the case that once left the server waiting for an edge that never came.
	var cases []struct {
		req    []byte
		status int
	}
	for i := 0; i < 25; i++ {
		cases = append(cases, struct {
			req    []byte
			status int
		}{[]byte(upgradeRequest("/")), 101}, struct {
			req    []byte
			status int
		}{[]byte("POST / HTTP/1.1\r\nHost: x\r\n\r\n"), 405})
	}
	for _, tc := range cases {
		r := dialRaw(t, s)
		r.write(tc.req)
		r.c.(*net.TCPConn).CloseWrite()
		if st, _ := r.readHTTP(); st != tc.status {
			t.Fatalf("status %d, want %d", st, tc.status)
		}
		r.expectEOF()
	}
	waitFor(t, "sockets released", func() bool { return s.Connections() == 0 })
}
