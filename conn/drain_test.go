package conn

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/netpoll"
)

// closeCodeOf returns the close code in the first close frame p has received, or 0.
func closeCodeOf(t *testing.T, p *peer) ws.StatusCode {
	t.Helper()
	for _, f := range p.frames() {
		if f.Header.OpCode == ws.OpClose && len(f.Payload) >= 2 {
			return ws.StatusCode(binary.BigEndian.Uint16(f.Payload))
		}
	}
	return 0
}

// TestDrainPacedOverPeriod: a drain of 20 connections over 2 s closes them one after the other,
// connection k at (k-1) x 100 ms, never two in one 100 ms step, all with 1012 and the reason, and
// Done runs only once every client has answered its close. The clock is the harness's: every
// instant is exact.
func TestDrainPacedOverPeriod(t *testing.T) {
	h := newHarness(t, Config{PingInterval: 0})
	const n = 20
	const period = 2 * time.Second
	var peers []*peer
	for i := 0; i < n; i++ {
		peers = append(peers, h.open())
	}
	done := 0
	start := h.now
	h.e.Drain(Drain{Code: StatusServiceRestart, Reason: "service restart", Period: period, Done: func() { done++ }})
	h.pass()
	closedAt := make([]int64, n)
	step := period / n
	for at := time.Duration(0); at <= period+step; at += testTick {
		for i, p := range peers {
			if closedAt[i] != 0 {
				continue
			}
			if code := closeCodeOf(t, p); code != 0 {
				if code != StatusServiceRestart {
					t.Fatalf("connection %d closed with %d, want 1012", i, code)
				}
				closedAt[i] = h.now
			}
		}
		h.step(testTick)
	}
	for i, at := range closedAt {
		if at == 0 {
			t.Fatalf("connection %d never got its close frame", i)
		}
		// Connections are drained in descriptor order, which is the order they were opened in.
		want := start + int64(i)*int64(step)
		if at < want || at > want+int64(testTick) {
			t.Fatalf("connection %d closed at +%v, want +%v", i, time.Duration(at-start), time.Duration(want-start))
		}
	}
	if done != 0 {
		t.Fatal("Done ran before the clients answered their close frames")
	}
	for _, p := range peers {
		p.sendFrame(ws.OpClose, []byte{0x03, 0xf4}) // 1012 back
	}
	h.pass()
	if done != 1 {
		t.Fatalf("Done ran %d times once every connection was gone, want 1", done)
	}
	if got := h.e.Stats.CloseSent[closeIndex(1012)].Load(); got != n {
		t.Fatalf("1012 counted %d times, want %d", got, n)
	}
}

// TestDrainWithoutPeriodClosesAllAtOnce: Period 0 sends every close in the pass of the call.
func TestDrainWithoutPeriodClosesAllAtOnce(t *testing.T) {
	h := newHarness(t, Config{PingInterval: 0})
	a, b := h.open(), h.open()
	h.e.Drain(Drain{Code: StatusServiceRestart, Reason: "service restart"})
	h.pass()
	if closeCodeOf(t, a) != StatusServiceRestart || closeCodeOf(t, b) != StatusServiceRestart {
		t.Fatal("not every connection got 1012 at once")
	}
}

// TestDrainHandOverServesHandshakeUnderWay: during a hand-over's drain (no Refuse) a handshake
// that was under way succeeds; once the period is over the connection is closed with 1012 at
// once, and Done waits for it.
func TestDrainHandOverServesHandshakeUnderWay(t *testing.T) {
	h := newHarness(t, Config{PingInterval: 0})
	early := h.dial() // accepted before the listener was handed over; request not sent yet
	done := false
	h.e.Drain(Drain{Code: StatusServiceRestart, Reason: "service restart", Period: time.Second, Done: func() { done = true }})
	h.pass()
	h.step(time.Second)
	if !done {
		t.Fatal("Done did not run with no connection open after the period")
	}
	done = false
	h.e.drain.Done = func() { done = true }
	early.send([]byte(upgradeRequest))
	early.readHTTP(101)
	if code := closeCodeOf(t, early); code != StatusServiceRestart {
		t.Fatalf("a connection opened after the period got close %d, want 1012 at once", code)
	}
	early.sendFrame(ws.OpClose, []byte{0x03, 0xf4})
	h.pass()
	if !done {
		t.Fatal("Done did not run once the late connection closed")
	}
}

// TestShutdownRefusesUpgradesWith503: after Shutdown, a handshake gets HTTP 503 with Retry-After,
// counted under the "shutdown" reject reason, while open connections get 1001.
func TestShutdownRefusesUpgradesWith503(t *testing.T) {
	h := newHarness(t, Config{PingInterval: 0})
	open := h.open()
	late := h.dial()
	h.e.Shutdown("server shutting down")
	h.pass()
	if code := closeCodeOf(t, open); code != ws.StatusGoingAway {
		t.Fatalf("open connection got close %d, want 1001", code)
	}
	late.send([]byte(upgradeRequest))
	late.drain()
	resp := string(late.in)
	if !strings.HasPrefix(resp, "HTTP/1.1 503 ") || !strings.Contains(resp, "\r\nRetry-After: 5\r\n") {
		t.Fatalf("handshake during shutdown answered %q, want 503 with Retry-After", resp)
	}
	if got := h.e.Stats.Rejects[RejectShutdown].Load(); got != 1 {
		t.Fatalf("shutdown rejects %d, want 1", got)
	}
}

// TestDrainSecondCallEndsPeriod: a shutdown during a hand-over's drain (Drain again with no
// period) closes what is left at once with the new code.
func TestDrainSecondCallEndsPeriod(t *testing.T) {
	h := newHarness(t, Config{PingInterval: 0})
	var peers []*peer
	for i := 0; i < 4; i++ {
		peers = append(peers, h.open())
	}
	h.e.Drain(Drain{Code: StatusServiceRestart, Reason: "service restart", Period: time.Hour})
	h.pass()
	if closeCodeOf(t, peers[0]) != StatusServiceRestart {
		t.Fatal("the first connection was not closed at the start of the drain")
	}
	h.e.Shutdown("server shutting down")
	h.pass()
	for i, p := range peers[1:] {
		if code := closeCodeOf(t, p); code != ws.StatusGoingAway {
			t.Fatalf("connection %d got %d after the shutdown, want 1001", i+1, code)
		}
	}
}

// TestDrainEndsStreams: a drain ends an event stream's body (the last chunk) like it closes a
// WebSocket, counts it among the connections to pace, and Done waits for the stream's client to
// close its side.
func TestDrainEndsStreams(t *testing.T) {
	h, _ := newStreamHarness(t, Config{PingInterval: 0})
	ws1 := h.open()
	s := h.openStream("HTTP/1.1")
	done := false
	h.e.Drain(Drain{Code: StatusServiceRestart, Reason: "service restart", Period: time.Second, Done: func() { done = true }})
	h.pass()
	if closeCodeOf(t, ws1) != StatusServiceRestart {
		t.Fatal("the WebSocket, first in descriptor order, was not closed at the start")
	}
	if _, ended := s.body(); ended {
		t.Fatal("the stream ended at once: the drain did not pace it")
	}
	h.step(time.Second)
	if _, ended := s.body(); !ended {
		t.Fatal("the stream's body did not end by the end of the drain period")
	}
	ws1.sendFrame(ws.OpClose, []byte{0x03, 0xf4})
	s.close()
	s.h.e.OnEvent(s.srv, netpoll.EventRead|netpoll.EventHangup)
	h.pass()
	if !done {
		t.Fatal("Done did not run once the WebSocket and the stream were gone")
	}
}
