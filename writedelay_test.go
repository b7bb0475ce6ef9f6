package wsgate

import (
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// TestWriteDelayCoalesces: with a write delay, messages echoed in separate loop passes within the
// delay leave in one writev; without it each pass sends its own.
func TestWriteDelayCoalesces(t *testing.T) {
	for _, tc := range []struct {
		delay      time.Duration
		wantWritev func(n float64) bool
	}{
		{0, func(n float64) bool { return n == 5 }},
		{2 * time.Second, func(n float64) bool { return n == 1 }},
	} {
		s := startServer(t, Config{Mode: ModeEcho, Loops: 1, Conn: ConnConfig{WriteDelay: tc.delay}})
		r := dialRaw(t, s).handshake()
		// The counter moves just after the bytes leave: wait for the 101's writev to be counted.
		waitFor(t, "handshake writev counted", func() bool { return metricValue(t, s, "wsgate_writev_calls_total") == 1 })
		before := 1.0
		start := time.Now()
		for i := 0; i < 5; i++ {
			r.send(ws.OpText, true, []byte{'a' + byte(i)})
			if tc.delay == 0 {
				r.readFrame() // one at a time: each echo is its own pass and its own writev
				// and is counted before the next is sent
				want := before + float64(i+1)
				waitFor(t, "echo writev counted", func() bool { return metricValue(t, s, "wsgate_writev_calls_total") >= want })
			} else {
				time.Sleep(20 * time.Millisecond) // separate passes, well within the delay
			}
		}
		if tc.delay > 0 {
			for i := 0; i < 5; i++ {
				if f := r.readFrame(); string(f.Payload) != string(rune('a'+i)) {
					t.Fatalf("echo %d: %q", i, f.Payload)
				}
			}
			if waited := time.Since(start); waited < tc.delay/2 {
				t.Fatalf("echoes arrived after %v, before the write delay %v could have passed", waited, tc.delay)
			}
		}
		waitFor(t, "echo writevs counted", func() bool { return metricValue(t, s, "wsgate_writev_calls_total") > before })
		time.Sleep(50 * time.Millisecond) // a stray extra writev would be counted by now
		if n := metricValue(t, s, "wsgate_writev_calls_total") - before; !tc.wantWritev(n) {
			t.Fatalf("write delay %v: %v writev calls for 5 echoes", tc.delay, n)
		}
	}
}
