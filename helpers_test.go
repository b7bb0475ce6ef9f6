package wsgate

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/conn"
)

// startServer runs a server on a free loopback port for the duration of the test.
func startServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Loops == 0 {
		cfg.Loops = 2
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func wsURL(s *Server, path string) string { return "ws://" + s.Addr().String() + path }

// rawClient is a WebSocket client written on plain TCP, so that tests can send exactly the bytes
// they want, malformed or not. Frames from the server are read with gobwas/ws's reader, an
// implementation independent of ours.
type rawClient struct {
	t         testing.TB
	c         net.Conn
	br        *bufio.Reader
	closeSent bool
}

func dialRaw(t testing.TB, s *Server) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, c: c, br: bufio.NewReader(c)}
}

const testKey = "dGhlIHNhbXBsZSBub25jZQ=="

func upgradeRequest(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
}

// handshake upgrades and checks the 101 and its accept key (RFC 6455 4.2.2 example).
func (r *rawClient) handshake() *rawClient {
	r.t.Helper()
	r.write([]byte(upgradeRequest("/")))
	status, headers := r.readHTTP()
	if status != 101 {
		r.t.Fatalf("handshake status %d, want 101", status)
	}
	if got := headers["sec-websocket-accept"]; got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		r.t.Fatalf("Sec-WebSocket-Accept %q", got)
	}
	return r
}

func (r *rawClient) write(b []byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// readHTTP reads a response head and returns the status and lower-cased headers.
func (r *rawClient) readHTTP() (int, map[string]string) {
	r.t.Helper()
	return readResponseHead(r.t, r.c, r.br)
}

// readResponseHead reads an HTTP/1.1 response head from br (reading c) and returns the status
// and the headers with lower-cased names; it fails the test after 20 s without one.
func readResponseHead(t testing.TB, c net.Conn, br *bufio.Reader) (int, map[string]string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("read status line: %v", err)
	}
	var status int
	if _, err := fmt.Sscanf(line, "HTTP/1.1 %d", &status); err != nil {
		t.Fatalf("status line %q", line)
	}
	h := map[string]string{}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read header: %v", err)
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			return status, h
		}
		k, v, _ := strings.Cut(l, ":")
		h[strings.ToLower(k)] = strings.TrimSpace(v)
	}
}

// clientFrame encodes a frame as a client would: masked unless unmasked is set.
func clientFrame(op ws.OpCode, fin bool, payload []byte) []byte {
	return encodeFrame(op, fin, 0, true, payload)
}

func encodeFrame(op ws.OpCode, fin bool, rsv byte, masked bool, payload []byte) []byte {
	b0 := byte(op) | rsv<<4
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	var m byte
	if masked {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		out = append(out, m|byte(n))
	case n < 1<<16:
		out = append(out, m|126, byte(n>>8), byte(n))
	default:
		out = append(out, m|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	p := append([]byte(nil), payload...)
	if masked {
		mask := [4]byte{0x11, 0x22, 0x33, 0x44}
		out = append(out, mask[:]...)
		ws.Cipher(p, mask, 0)
	}
	return append(out, p...)
}

func (r *rawClient) send(op ws.OpCode, fin bool, payload []byte) {
	r.t.Helper()
	if op == ws.OpClose {
		r.closeSent = true
	}
	r.write(clientFrame(op, fin, payload))
}

// readFrame reads one server frame (which must be unmasked).
func (r *rawClient) readFrame() ws.Frame {
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

// expectClose reads frames until a close frame and returns its code; then it expects the server
// to close TCP.
func (r *rawClient) expectClose() (ws.StatusCode, string) {
	r.t.Helper()
	for {
		f := r.readFrame()
		if f.Header.OpCode != ws.OpClose {
			continue
		}
		code, reason := ws.ParseCloseFrameData(f.Payload)
		// Answer the server's close like a well-behaved client (unless the close was ours), then
		// the server must close TCP.
		if !r.closeSent {
			r.c.Write(clientFrame(ws.OpClose, true, f.Payload[:min(2, len(f.Payload))]))
		}
		r.expectEOF()
		return code, reason
	}
}

func (r *rawClient) expectEOF() {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, r.br); err != nil {
		r.t.Fatalf("waiting for the server to close TCP: %v", err)
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ConnConfig is conn.Config, named here for the tests' option helpers.
type ConnConfig = conn.Config

func connCfg(f func(c *ConnConfig)) ConnConfig {
	var c ConnConfig
	f(&c)
	return c
}

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
