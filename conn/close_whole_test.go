package conn

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/frame"
	"github.com/wsgate/wsgate/netpoll"
)

// Whatever closes a connection with output queued, the client sees whole frames and then the
// close frame: the frame the socket has partly taken is completed, the frames not started are
// dropped. These tests fill the socket of a peer that does not read until a frame is cut in the
// middle by the socket buffer, then make the server close, then read every byte the peer got.

// fanoutFrame is the frame the tests queue by reference, as a pub/sub fan-out does: its odd size
// makes a full socket buffer end inside a frame.
var fanoutFrame = frame.AppendFrame(nil, ws.OpBinary, bytes.Repeat([]byte("fan-out "), 1250)[:9973])

// fillMidFrame queues fanoutFrame on p's connection, a few per loop pass (as tasks posted by a
// fan-out would), until the socket is full with a frame partly written and n frames are pending
// behind it. (A unix socket takes a writev in pieces of about half its buffer, or not at all:
// several frames per writev make it stop inside one.) It returns the number of frames queued.
func fillMidFrame(t *testing.T, h *harness, p *peer, n int) int {
	t.Helper()
	if err := unix.SetsockoptInt(p.srv, unix.SOL_SOCKET, unix.SO_SNDBUF, 32<<10); err != nil {
		t.Fatal(err)
	}
	c := h.e.conns[p.srv]
	base := h.e.Stats.BytesOut.Load() // the 101 response is out (h.open read it)
	for queued := 1; queued < 10000; queued++ {
		if err := c.WriteFrame(fanoutFrame); err != nil {
			t.Fatalf("frame %d: %v", queued, err)
		}
		if queued%8 != 0 {
			continue
		}
		h.pass()
		sent := int(h.e.Stats.BytesOut.Load() - base)
		if c.flags&flagBlocked != 0 && sent%len(fanoutFrame) != 0 && c.Queued() >= n*len(fanoutFrame) {
			return queued
		}
	}
	t.Fatal("the socket never filled up in the middle of a frame")
	return 0
}

// readUntilClose has the peer read until it holds a whole close frame, letting the server write
// on as the peer reads (the EPOLLOUT edges of a real loop), and checks every byte it got: whole
// copies of want, then the close frame with code, then nothing.
func readUntilClose(t *testing.T, h *harness, p *peer, want []byte, code ws.StatusCode) {
	t.Helper()
	for i := 0; ; i++ {
		if i == 100000 {
			t.Fatalf("no close frame after %d bytes", len(p.in))
		}
		p.drain()
		if done := wholeFramesThenClose(t, p.in, want, code); done {
			return
		}
		if p.open() {
			h.e.OnEvent(p.srv, netpoll.EventWrite)
		}
		h.pass()
	}
}

// wholeFramesThenClose parses b: whole copies of want, then one close frame with code, then
// nothing. It reports whether the close frame is there; a prefix of that is fine (false).
func wholeFramesThenClose(t *testing.T, b, want []byte, code ws.StatusCode) bool {
	t.Helper()
	frames := 0
	for len(b) >= len(want) && bytes.HasPrefix(b, want) {
		b = b[len(want):]
		frames++
	}
	if bytes.HasPrefix(want, b) {
		return false // the next frame is still coming
	}
	h, hn, err := frame.ParseHeader(b)
	switch {
	case err == nil && hn == 0:
		return false
	case err != nil || h.OpCode != ws.OpClose || h.Length < 2 || len(b) > hn+int(h.Length):
		t.Fatalf("after %d whole frames, %d bytes that are neither a whole frame nor the last "+
			"frame, a close (% x...)", frames, len(b), b[:min(len(b), 16)])
	case len(b) < hn+int(h.Length):
		return false
	}
	if got := ws.StatusCode(binary.BigEndian.Uint16(b[hn:])); got != code {
		t.Fatalf("close code %d (%q), want %d", got, b[hn+2:], code)
	}
	return true
}

// TestSlowConsumerGetsWholeFramesThen1008: output the server originates for a peer that does not
// read (frames queued by reference from tasks, as the pub/sub fan-out does) ends in the
// slow-consumer close once it passes MaxQueue, and the peer, when it reads at last, gets the
// frame that was partly written completed, then the 1008: never a torn frame.
func TestSlowConsumerGetsWholeFramesThen1008(t *testing.T) {
	const maxQueue = 128 << 10
	h := newHarness(t, Config{MaxQueue: maxQueue})
	p := h.open()
	fillMidFrame(t, h, p, 1)
	c := h.e.conns[p.srv]
	var err error
	for i := 0; err == nil; i++ {
		if i > maxQueue/len(fanoutFrame)+1 {
			t.Fatalf("%d bytes queued and no slow-consumer close", c.Queued())
		}
		err = c.WriteFrame(fanoutFrame)
	}
	if err != ErrSlowConsumer {
		t.Fatalf("write over MaxQueue: %v, want ErrSlowConsumer", err)
	}
	// What is left to send is the rest of one frame and the close frame.
	if q := c.Queued(); q >= len(fanoutFrame)+2+2+len("slow consumer") {
		t.Fatalf("%d bytes left queued after the slow-consumer close, want under one frame and the close", q)
	}
	h.pass()
	readUntilClose(t, h, p, fanoutFrame, ws.StatusPolicyViolation)
	if h.e.Stats.SlowConsumers.Load() != 1 {
		t.Fatalf("SlowConsumers = %d, want 1", h.e.Stats.SlowConsumers.Load())
	}
}

// TestServerClosesGetWholeFrames: a shutdown (1001), a ping timeout (1001) and an idle timeout
// (1000) with output pending behind a partly written frame complete that frame, drop the rest
// and send the close frame.
func TestServerClosesGetWholeFrames(t *testing.T) {
	cases := []struct {
		name  string
		cfg   Config
		close func(h *harness, p *peer)
		code  ws.StatusCode
	}{
		{"shutdown", Config{}, func(h *harness, p *peer) { h.e.Shutdown("server shutting down") }, ws.StatusGoingAway},
		{"ping timeout", Config{PingInterval: time.Second, PongMisses: 2},
			func(h *harness, p *peer) { h.step(2 * time.Second) }, ws.StatusGoingAway},
		{"idle timeout", Config{IdleTimeout: time.Minute},
			func(h *harness, p *peer) { h.step(time.Minute) }, ws.StatusNormalClosure},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.MaxQueue = 64 << 20
			h := newHarness(t, tc.cfg)
			p := h.open()
			fillMidFrame(t, h, p, 3)
			tc.close(h, p)
			h.pass()
			readUntilClose(t, h, p, fanoutFrame, tc.code)
		})
	}
}

// TestCutKeepsTheHandshakeResponse: a server close before any byte of the 101 response has left
// keeps the response, so the client still sees the handshake, then the close frame.
func TestCutKeepsTheHandshakeResponse(t *testing.T) {
	h := newHarness(t, Config{})
	p := h.dial()
	p.write([]byte(upgradeRequest))
	h.e.OnEvent(p.srv, netpoll.EventRead) // read and answered, not flushed yet
	c := h.e.conns[p.srv]
	c.WriteMessage(ws.OpText, []byte("welcome"))
	h.e.Shutdown("server shutting down")
	h.pass()
	p.readHTTP(101)
	fs := p.frames()
	if len(fs) != 1 || fs[0].Header.OpCode != ws.OpClose {
		t.Fatalf("after the 101: %d frames (%v), want only the close", len(fs), fs)
	}
	if code, _ := ws.ParseCloseFrameData(fs[0].Payload); code != ws.StatusGoingAway {
		t.Fatalf("close code %d, want 1001", code)
	}
}
