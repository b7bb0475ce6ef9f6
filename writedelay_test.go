package wsgate

import (
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/conn"
)

// TestWriteDelayCoalesces: with a write delay, messages echoed in separate loop passes within the
// delay leave in one writev once the delay has passed, and not before; without it each pass
// sends its own. The loop runs on a fake clock (hbClock), so "within the delay" and "after it"
// are exact whatever the machine's load.
func TestWriteDelayCoalesces(t *testing.T) {
	for _, delay := range []time.Duration{0, 2 * time.Second} {
		clock := newHBClock()
		s := startServer(t, Config{Handler: Echo{}, Loops: 1, Now: clock.Now, Conn: ConnConfig{WriteDelay: delay}})
		r := dialRaw(t, s)
		r.write([]byte(upgradeRequest("/")))
		if delay > 0 { // the 101 waits for the delay like any output
			waitFor(t, "handshake done", func() bool { return hbSum(s, func(st *conn.Stats) uint64 { return st.Handshakes.Load() }) == 1 })
			clock.advance(t, s, delay)
		}
		if st, _ := r.readHTTP(); st != 101 {
			t.Fatalf("handshake: %d", st)
		}
		writev := func() float64 { return metricValue(t, s, "wsgate_writev_calls_total") }
		// The counter moves just after the bytes leave: wait for the 101's writev to be counted.
		waitFor(t, "handshake writev counted", func() bool { return writev() == 1 })
		msgsIn := func() uint64 { return hbSum(s, func(st *conn.Stats) uint64 { return st.MessagesIn.Load() }) }
		for i := 0; i < 5; i++ {
			r.send(ws.OpText, true, []byte{'a' + byte(i)})
			if delay == 0 {
				r.readFrame() // one at a time: each echo is its own pass and its own writev
				want := float64(i + 2)
				waitFor(t, "echo writev counted", func() bool { return writev() >= want })
				continue
			}
			// Each message is read in a pass of its own, the clock still within the delay.
			want := uint64(i + 1)
			waitFor(t, "message read", func() bool { return msgsIn() == want })
			hbSync(t, s)
			clock.advance(t, s, delay/10)
		}
		if delay > 0 {
			if n := writev(); n != 1 {
				t.Fatalf("write delay %v: %v writev calls before the delay passed, want only the 101's", delay, n)
			}
			clock.advance(t, s, delay) // past the oldest output's deadline
			for i := 0; i < 5; i++ {
				if f := r.readFrame(); string(f.Payload) != string(rune('a'+i)) {
					t.Fatalf("echo %d: %q", i, f.Payload)
				}
			}
		}
		hbSync(t, s)
		want := func(n float64) bool { return n == 5 }
		if delay > 0 {
			want = func(n float64) bool { return n == 1 }
		}
		waitFor(t, "echo writevs counted", func() bool { return writev() > 1 })
		hbSync(t, s) // a stray extra writev would be counted by now: every pass has ended
		if n := writev() - 1; !want(n) {
			t.Fatalf("write delay %v: %v writev calls for 5 echoes", delay, n)
		}
	}
}
