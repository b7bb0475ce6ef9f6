package conn

import (
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// TestPingEveryIntervalSpreadByJitter: an open connection is pinged once per interval, at a
// phase of its own chosen in its first interval (so that connections accepted together do not
// ping in the same tick) and kept from then on; a peer that answers stays open.
func TestPingEveryIntervalSpreadByJitter(t *testing.T) {
	const (
		interval = time.Second
		peers    = 200
		rounds   = 10
	)
	h := newHarness(t, Config{PingInterval: interval})
	ps := make([]*peer, peers)
	for i := range ps {
		ps[i] = h.open()
	}
	opened := h.now
	pings := make([][]int64, peers)
	sent := h.e.Stats.PingsSent.Load()
	var owed []*peer // pongs go out one tick after the ping, as a real round trip takes time
	for h.now < opened+rounds*int64(interval) {
		h.step(testTick)
		for _, p := range owed {
			p.sendFrame(ws.OpPong, nil)
		}
		owed = owed[:0]
		if n := h.e.Stats.PingsSent.Load(); n == sent {
			continue
		} else {
			sent = n
		}
		for i, p := range ps {
			for _, f := range p.frames() {
				if f.Header.OpCode != ws.OpPing || len(f.Payload) != 0 {
					t.Fatalf("peer %d: got %v with %d payload bytes, want an empty ping", i, f.Header.OpCode, len(f.Payload))
				}
				pings[i] = append(pings[i], h.now)
				owed = append(owed, p)
			}
		}
	}
	firstTicks := map[int64]int{}
	for i, ts := range pings {
		if len(ts) != rounds {
			t.Fatalf("peer %d got %d pings in %d intervals, want one per interval", i, len(ts), rounds)
		}
		if first := ts[0] - opened; first <= 0 || first > int64(interval) {
			t.Fatalf("peer %d: first ping %v after open, want within the first interval", i, time.Duration(first))
		}
		for k := 1; k < len(ts); k++ {
			if d := time.Duration(ts[k] - ts[k-1]); d != interval {
				t.Fatalf("peer %d: ping %d came %v after the previous one, want %v", i, k, d, interval)
			}
		}
		firstTicks[ts[0]]++
		if !ps[i].open() {
			t.Fatalf("peer %d answered every ping but was closed", i)
		}
	}
	// 200 phases drawn over the 100 ticks of an interval: uniform jitter puts two in a tick on
	// average and leaves about 14 ticks empty. Connections opened in the same instant that
	// pinged in lockstep would give one busy tick.
	busiest := 0
	for _, n := range firstTicks {
		busiest = max(busiest, n)
	}
	if len(firstTicks) < 70 || busiest > 8 {
		t.Fatalf("first pings fall in %d distinct ticks, up to %d in one: phases are not spread", len(firstTicks), busiest)
	}
	if got := h.e.Stats.PingsSent.Load(); got != peers*rounds {
		t.Fatalf("PingsSent = %d, want %d", got, peers*rounds)
	}
	if got := h.e.Stats.PingTimeouts.Load(); got != 0 {
		t.Fatalf("PingTimeouts = %d for peers that answered", got)
	}
}

// TestDeadPeerClosedAfterPongMisses: a peer from which nothing arrives for PongMisses intervals
// is sent close 1001 "ping timeout" and its socket is closed in the same pass, at the first tick
// at or after lastReceived + misses*interval: never earlier, never a tick later.
func TestDeadPeerClosedAfterPongMisses(t *testing.T) {
	const interval = 100 * time.Millisecond
	for _, misses := range []int{2, 3, 5} {
		t.Run(string(rune('0'+misses)), func(t *testing.T) {
			h := newHarness(t, Config{PingInterval: interval, PongMisses: misses})
			dead := h.open()   // never answers
			lively := h.open() // answers every ping for four intervals, then falls silent
			opened := h.now
			silentFrom := opened + 4*int64(interval)
			window := int64(misses) * int64(interval)
			lastPong := opened // the handshake counts as the last thing received
			closes := map[*peer]ws.Frame{}
			pingsTo := map[*peer]int{}
			for dead.open() || lively.open() {
				if h.now > silentFrom+2*window {
					t.Fatal("connections still open long after their deadline")
				}
				h.step(testTick)
				for _, p := range []*peer{dead, lively} {
					for _, f := range p.frames() {
						switch f.Header.OpCode {
						case ws.OpPing:
							pingsTo[p]++
							if p == lively && h.now < silentFrom && p.open() {
								p.sendFrame(ws.OpPong, f.Payload)
								lastPong = h.now
							}
						case ws.OpClose:
							closes[p] = f
						default:
							t.Fatalf("unexpected %v", f.Header.OpCode)
						}
					}
				}
				if want := h.now < opened+window; dead.open() != want {
					t.Fatalf("%v after open: silent peer open=%v, want %v", time.Duration(h.now-opened), dead.open(), want)
				}
				if want := h.now < lastPong+window; lively.open() != want {
					t.Fatalf("%v after its last pong: peer open=%v, want %v", time.Duration(h.now-lastPong), lively.open(), want)
				}
			}
			for _, p := range []*peer{dead, lively} {
				f, ok := closes[p]
				if !ok {
					t.Fatal("no close frame before the socket was closed")
				}
				code, reason := ws.ParseCloseFrameData(f.Payload)
				if code != ws.StatusGoingAway || reason != "ping timeout" {
					t.Fatalf("close frame %d %q, want 1001 \"ping timeout\"", code, reason)
				}
				if !p.closedByServer() {
					t.Fatal("server did not close the socket after the close frame")
				}
			}
			if pingsTo[dead] < misses-1 {
				t.Fatalf("the silent peer got %d pings before being closed after %d intervals", pingsTo[dead], misses)
			}
			if got := h.e.Stats.PingTimeouts.Load(); got != 2 {
				t.Fatalf("PingTimeouts = %d, want 2", got)
			}
			if len(h.rec.closed) != 2 || h.rec.closed[0].code != ws.StatusGoingAway || h.rec.closed[1].code != ws.StatusGoingAway {
				t.Fatalf("OnClose calls %v, want two with 1001", h.rec.closed)
			}
		})
	}
}

// TestAnyFrameIsLiveness: data frames, pings and unsolicited pongs from the peer all count as
// signs of life, pongs or no pongs; receiving them does not touch the timing wheel. A peer that
// only sends data, never answering a ping, is still pinged once per interval.
func TestAnyFrameIsLiveness(t *testing.T) {
	const (
		interval = 100 * time.Millisecond
		rounds   = 30
	)
	h := newHarness(t, Config{PingInterval: interval, PongMisses: 3})
	data, pinger, ponger := h.open(), h.open(), h.open()
	opened := h.now
	var dataPings []int64
	for k := int64(1); h.now < opened+rounds*int64(interval); k++ {
		h.step(testTick)
		if k%20 == 0 { // every 2 intervals: within the 3 allowed
			data.sendFrame(ws.OpText, []byte("still here"))
			pinger.sendFrame(ws.OpPing, []byte("you?"))
			ponger.sendFrame(ws.OpPong, nil)
		}
		for _, p := range []*peer{data, pinger, ponger} {
			for _, f := range p.frames() { // server pings, the echo, the pong
				if p == data && f.Header.OpCode == ws.OpPing {
					dataPings = append(dataPings, h.now)
				}
			}
			if !p.open() {
				t.Fatalf("peer closed %v after open although it sent a frame every 2 intervals", time.Duration(h.now-opened))
			}
		}
	}
	if got := h.e.Stats.PingTimeouts.Load(); got != 0 {
		t.Fatalf("PingTimeouts = %d", got)
	}
	if len(dataPings) != rounds {
		t.Fatalf("the data-only peer got %d pings in %d intervals, want one per interval", len(dataPings), rounds)
	}
	for k := 1; k < len(dataPings); k++ {
		if d := time.Duration(dataPings[k] - dataPings[k-1]); d != interval {
			t.Fatalf("data-only peer: ping %d came %v after the previous one, want %v", k, d, interval)
		}
	}
	// Frames arriving between two deadlines leave the wheel alone: the deadline is recomputed
	// from timestamps when the timer fires.
	before := h.loop.Wheel().Stats().Scheduled
	for range 100 {
		data.sendFrame(ws.OpText, []byte("x"))
		pinger.sendFrame(ws.OpPing, nil)
	}
	if after := h.loop.Wheel().Stats().Scheduled; after != before {
		t.Fatalf("200 received frames scheduled %d timers", after-before)
	}
}

// TestPingsDisabled: a negative interval means no pings, no pong-miss deadline and no timer at
// all for an open connection without an idle timeout.
func TestPingsDisabled(t *testing.T) {
	h := newHarness(t, Config{})
	p := h.open()
	if n := h.loop.Wheel().Len(); n != 0 {
		t.Fatalf("%d timers filed for an open connection with pings and idle timeout off", n)
	}
	for range 10 {
		h.step(time.Hour)
	}
	if fs := p.frames(); len(fs) != 0 || !p.open() {
		t.Fatalf("after 10 hours: %d frames received, open=%v", len(fs), p.open())
	}
	if got := h.e.Stats.PingsSent.Load(); got != 0 {
		t.Fatalf("PingsSent = %d", got)
	}

	h = newHarness(t, Config{IdleTimeout: time.Minute})
	h.open()
	if n := h.loop.Wheel().Len(); n != 1 {
		t.Fatalf("%d timers filed with only the idle timeout on, want 1", n)
	}
}

// TestHandshakeDeadline: a connection that has not completed the handshake HandshakeTimeout
// after accept is closed without a response, however it trickles bytes (slowloris); one that
// completes it in time stays open and drops the handshake deadline.
func TestHandshakeDeadline(t *testing.T) {
	const timeout = 5 * time.Second
	h := newHarness(t, Config{HandshakeTimeout: timeout, PingInterval: time.Minute})
	accepted := h.now
	silent := h.dial()
	drip := h.dial()
	late := h.dial()
	req := []byte(upgradeRequest)
	drip.send(req[:20])
	dripped := 20
	for h.now < accepted+int64(timeout) {
		h.step(testTick)
		if (h.now-accepted)%int64(time.Second) == 0 && h.now < accepted+int64(timeout) {
			drip.send(req[dripped : dripped+1]) // a byte a second: never the whole head
			dripped++
		}
		if h.now == accepted+int64(timeout-testTick) {
			late.send(req)
			late.readHTTP(101)
		}
		if want := h.now < accepted+int64(timeout); silent.open() != want || drip.open() != want {
			t.Fatalf("%v after accept: silent open=%v, trickling open=%v, want %v",
				time.Duration(h.now-accepted), silent.open(), drip.open(), want)
		}
	}
	for _, p := range []*peer{silent, drip} {
		if !p.closedByServer() || len(p.in) != 0 {
			t.Fatalf("timed-out handshake: closed=%v, %d bytes of response", p.closedByServer(), len(p.in))
		}
	}
	for range 50 {
		h.step(100 * time.Millisecond)
	}
	if late.state() != stateOpen {
		t.Fatal("a connection that completed its handshake before the deadline was closed")
	}
	if got := h.e.Stats.Rejects[RejectTimeout].Load(); got != 2 {
		t.Fatalf("Rejects[timeout] = %d, want 2", got)
	}
	if h.rec.opened != 1 || len(h.rec.closed) != 0 {
		t.Fatalf("OnOpen %d times, OnClose %v: want 1 and none (timed-out handshakes never opened)", h.rec.opened, h.rec.closed)
	}
	if got := h.e.Connections(); got != 1 {
		t.Fatalf("Connections() = %d, want 1", got)
	}
}

// TestIdleTimeoutThenCloseTimeout: a connection that sent no data frame for IdleTimeout gets
// close 1000 "idle timeout" (pongs do not count as data); a peer that never answers that close
// loses its socket CloseTimeout later, one that answers loses it at once.
func TestIdleTimeoutThenCloseTimeout(t *testing.T) {
	const (
		idle     = time.Second
		closeTO  = 3 * time.Second
		interval = 100 * time.Millisecond
	)
	h := newHarness(t, Config{IdleTimeout: idle, CloseTimeout: closeTO, PingInterval: interval})
	mute := h.open()   // sends one message, answers pings, ignores the close
	polite := h.open() // answers pings and the close, never sends data
	opened := h.now
	var muteClose, politeClose int64
	for mute.open() || polite.open() {
		if h.now > opened+int64(10*time.Second) {
			t.Fatal("still open long after every deadline")
		}
		h.step(testTick)
		if h.now == opened+int64(500*time.Millisecond) {
			mute.sendFrame(ws.OpText, []byte("data"))
		}
		for _, p := range []*peer{mute, polite} {
			for _, f := range p.frames() {
				switch f.Header.OpCode {
				case ws.OpPing:
					if p.open() {
						p.sendFrame(ws.OpPong, nil)
					}
				case ws.OpClose:
					code, reason := ws.ParseCloseFrameData(f.Payload)
					if code != ws.StatusNormalClosure || reason != "idle timeout" {
						t.Fatalf("close %d %q, want 1000 \"idle timeout\"", code, reason)
					}
					if p == mute {
						muteClose = h.now
					} else {
						politeClose = h.now
						p.sendFrame(ws.OpClose, f.Payload)
						if !p.closedByServer() {
							t.Fatal("the server kept the socket after the close handshake completed")
						}
					}
				}
			}
		}
		if want := h.now < opened+int64(500*time.Millisecond+idle+closeTO); mute.open() != want {
			t.Fatalf("%v after open: mute peer open=%v, want %v", time.Duration(h.now-opened), mute.open(), want)
		}
	}
	if want := opened + int64(idle); politeClose != want {
		t.Fatalf("idle close sent %v after open to a peer that only answered pings, want %v",
			time.Duration(politeClose-opened), idle)
	}
	if want := opened + int64(500*time.Millisecond+idle); muteClose != want {
		t.Fatalf("idle close sent %v after open, want %v (the last data frame + idle)",
			time.Duration(muteClose-opened), 500*time.Millisecond+idle)
	}
	if !mute.closedByServer() {
		t.Fatal("socket not closed at the close timeout")
	}
	st := &h.e.Stats
	if st.IdleTimeouts.Load() != 2 || st.CloseTimeouts.Load() != 1 {
		t.Fatalf("IdleTimeouts %d, CloseTimeouts %d, want 2 and 1", st.IdleTimeouts.Load(), st.CloseTimeouts.Load())
	}
	// Two close frames sent with 1000, one answered with 1000.
	if sent, recv := st.CloseSent[closeIndex(1000)].Load(), st.CloseRecv[closeIndex(1000)].Load(); sent != 2 || recv != 1 {
		t.Fatalf("CloseSent[1000] %d, CloseRecv[1000] %d, want 2 and 1", sent, recv)
	}
}

// TestCloseTimeout: after the server's close frame (an application Close, or a protocol
// failure), the peer has CloseTimeout to answer; then the socket is closed, to the tick.
func TestCloseTimeout(t *testing.T) {
	const closeTO = 2 * time.Second
	h := newHarness(t, Config{CloseTimeout: closeTO, PingInterval: time.Hour})
	byApp := h.open()
	failed := h.open()
	byApp.sendFrame(ws.OpBinary, []byte("close:\x0f\xa0")) // the handler closes with 4000
	failed.send([]byte{0x81, 0x01, 'x'})                   // unmasked client frame: 1002 (RFC 6455 5.1)
	sent := h.now
	for _, tc := range []struct {
		p    *peer
		code ws.StatusCode
	}{{byApp, 4000}, {failed, ws.StatusProtocolError}} {
		fs := tc.p.frames()
		if len(fs) != 1 || fs[0].Header.OpCode != ws.OpClose {
			t.Fatalf("got %d frames (%v), want one close", len(fs), fs)
		}
		if code, _ := ws.ParseCloseFrameData(fs[0].Payload); code != tc.code {
			t.Fatalf("close code %d, want %d", code, tc.code)
		}
	}
	for h.now < sent+int64(closeTO) {
		if !byApp.open() || !failed.open() {
			t.Fatalf("closed %v after the close frame, before the close timeout", time.Duration(h.now-sent))
		}
		h.step(testTick)
	}
	if byApp.open() || failed.open() || !byApp.closedByServer() || !failed.closedByServer() {
		t.Fatal("sockets still open at the close timeout")
	}
	if got := h.e.Stats.CloseTimeouts.Load(); got != 2 {
		t.Fatalf("CloseTimeouts = %d, want 2", got)
	}
	if len(h.rec.closed) != 2 || h.rec.closed[0].code != 4000 || h.rec.closed[1].code != ws.StatusProtocolError {
		t.Fatalf("OnClose %v", h.rec.closed)
	}
}
