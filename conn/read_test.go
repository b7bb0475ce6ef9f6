package conn

import (
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

// TestInboundRateLimit: a client over MaxMsgRate (-max-msg-rate) is closed with 1008 once its
// burst is spent. The clock stands still, so the bucket gets no refill however the frames are
// read.
func TestInboundRateLimit(t *testing.T) {
	h := newHarness(t, Config{MaxMsgRate: 1, MsgBurst: 5})
	p := h.open()
	var b []byte
	for i := 0; i < 20; i++ {
		b = append(b, clientFrame(ws.OpText, []byte("x"))...)
	}
	p.send(b)
	echoes := 0
	closed := false
	for _, f := range p.frames() {
		if closed {
			t.Fatalf("%v after the close frame", f.Header.OpCode)
		}
		switch f.Header.OpCode {
		case ws.OpPing, ws.OpPong:
			continue // a heartbeat may land anywhere in the stream; only echoes count
		case ws.OpClose:
			code, reason := ws.ParseCloseFrameData(f.Payload)
			if code != 1008 || !strings.Contains(reason, "rate") {
				t.Fatalf("close %d %q", code, reason)
			}
			closed = true
		default:
			echoes++
		}
	}
	if !closed {
		t.Fatal("no close frame")
	}
	if echoes != 5 {
		t.Fatalf("%d messages echoed before the limit, want the burst of 5", echoes)
	}
	if got := h.e.Stats.RateLimited.Load(); got != 1 {
		t.Fatalf("RateLimited = %d, want 1", got)
	}
}
