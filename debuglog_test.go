package wsgate

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/gobwas/ws"
)

// syncBuffer is a bytes.Buffer safe for the loops' logging and the test's reading.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDebugLogsSayWhy: with -log-level debug, a failed connection and a refused handshake are
// logged with the close code or reason and the peer's address.
func TestDebugLogsSayWhy(t *testing.T) {
	var out syncBuffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := startServer(t, Config{Handler: Echo{}, Logger: log})
	r := dialRaw(t, s).handshake()
	r.write(encodeFrame(ws.OpText, true, 4, true, []byte("x"))) // RSV1: 1002
	r.expectClose()
	peer := r.c.LocalAddr().String()
	bad := dialRaw(t, s)
	bad.write([]byte(strings.Replace(upgradeRequest("/"), "GET", "PUT", 1)))
	bad.readHTTP()
	waitFor(t, "debug lines", func() bool {
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
