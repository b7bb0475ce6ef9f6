package conn

import (
	"bufio"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// TestDebugLogsSayWhy: with debug logging (-log-level debug), a failed connection and a refused
// handshake are logged with the close code or reason and the peer's address. Real TCP: a
// socketpair has no peer address to log.
func TestDebugLogsSayWhy(t *testing.T) {
	var out syncBuffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := startTCP(t, Config{}, nil, log)
	r := s.dial(t)
	r.write([]byte{0xc1, 0x81, 0, 0, 0, 0, 'x'}) // a text frame with RSV1 set, no extension: 1002
	if f := r.readFrame(); f.Header.OpCode != ws.OpClose {
		t.Fatalf("got %v, want a close frame", f.Header.OpCode)
	} else if code, _ := ws.ParseCloseFrameData(f.Payload); code != 1002 {
		t.Fatalf("close code %d, want 1002", code)
	}
	r.expectEOF() // the server shut down its side after the close frame
	peer := r.c.LocalAddr().String()
	bad, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if _, err := bad.Write([]byte(strings.Replace(upgradeRequest, "GET", "PUT", 1))); err != nil {
		t.Fatal(err)
	}
	bad.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(bad), nil)
	if err != nil || resp.StatusCode != 405 {
		t.Fatalf("PUT answered %v, %v; want 405", resp, err)
	}
	waitUntil(t, "debug lines", func() bool {
		l := out.String()
		return strings.Contains(l, "connection failed") && strings.Contains(l, "handshake refused")
	})
	l := out.String()
	if !strings.Contains(l, "close_code=1002") || !strings.Contains(l, "peer="+peer) {
		t.Fatalf("failure line lacks the code or the peer %s:\n%s", peer, l)
	}
	if !strings.Contains(l, "reason=method") {
		t.Fatalf("refusal line lacks the reason:\n%s", l)
	}
}
