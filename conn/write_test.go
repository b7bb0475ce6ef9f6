package conn

import (
	"bytes"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/frame"
	"github.com/wsgate/wsgate/netpoll"
)

// TestFlushPartialWrites: output larger than the socket takes leaves in several writevs: a
// partial write consumes exactly what the socket took, EAGAIN parks the connection until the
// next EPOLLOUT edge, and the peer receives every queued byte once, in order, copied frames and
// frames queued by reference alike.
func TestFlushPartialWrites(t *testing.T) {
	h := newHarness(t, Config{MaxQueue: 64 << 20})
	p := h.open()
	if err := unix.SetsockoptInt(p.srv, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
	c := h.e.conns[p.srv]
	var want []byte
	for i := range 3000 {
		payload := bytes.Repeat([]byte{byte(i)}, 1+i%300)
		if i%7 == 0 {
			f := frame.AppendFrame(nil, ws.OpBinary, payload)
			if err := c.WriteFrame(f); err != nil {
				t.Fatal(err)
			}
			want = append(want, f...)
		} else {
			if err := c.WriteMessage(ws.OpBinary, payload); err != nil {
				t.Fatal(err)
			}
			want = append(want, frame.AppendFrame(nil, ws.OpBinary, payload)...)
		}
	}
	bytesOut := h.e.Stats.BytesOut.Load()
	writevs := h.e.Stats.Writev.Load()
	blocked := 0
	for c.out != nil {
		h.pass()
		if c.out == nil {
			break
		}
		if c.flags&flagBlocked == 0 {
			t.Fatal("output left queued without waiting for EPOLLOUT")
		}
		blocked++
		p.drain()
		h.e.OnEvent(p.srv, netpoll.EventWrite)
	}
	p.drain()
	if !bytes.Equal(p.in, want) {
		t.Fatalf("peer got %d bytes, want %d (or the content differs)", len(p.in), len(want))
	}
	if blocked == 0 {
		t.Fatal("the socket never filled up: the EAGAIN path was not exercised")
	}
	if got := h.e.Stats.BytesOut.Load() - bytesOut; got != uint64(len(want)) {
		t.Fatalf("BytesOut grew by %d, want %d", got, len(want))
	}
	if got := h.e.Stats.Writev.Load() - writevs; got <= uint64(blocked) {
		t.Fatalf("%d writev calls for %d waits on EPOLLOUT", got, blocked)
	}
}

// TestWriteDelayCoalesces: with a write delay, messages echoed in separate loop passes within the
// delay leave in one writev once the delay has passed, and not before (the 101 response waits for
// it like any output); without it each pass sends its own.
func TestWriteDelayCoalesces(t *testing.T) {
	for _, delay := range []time.Duration{0, 2 * time.Second} {
		h := newHarness(t, Config{WriteDelay: delay})
		writev := func() uint64 { return h.e.Stats.Writev.Load() }
		p := h.dial()
		p.send([]byte(upgradeRequest))
		if delay > 0 {
			if p.drain(); len(p.in) != 0 || writev() != 0 {
				t.Fatalf("write delay %v: %d bytes, %d writev calls before the delay passed", delay, len(p.in), writev())
			}
			h.step(delay)
		}
		p.readHTTP(101)
		if n := writev(); n != 1 {
			t.Fatalf("write delay %v: %d writev calls for the 101, want 1", delay, n)
		}
		for i := 0; i < 5; i++ {
			p.sendFrame(ws.OpText, []byte{'a' + byte(i)}) // read in a pass of its own
			if got := h.e.Stats.MessagesIn.Load(); got != uint64(i+1) {
				t.Fatalf("%d messages read, want %d", got, i+1)
			}
			if delay == 0 {
				// Each echo is its own pass and its own writev.
				if fs := p.frames(); len(fs) != 1 || string(fs[0].Payload) != string(rune('a'+i)) {
					t.Fatalf("echo %d: %v", i, fs)
				}
				if n := writev(); n != uint64(i+2) {
					t.Fatalf("no write delay: %d writev calls after %d echoes, want %d", n, i+1, i+2)
				}
				continue
			}
			h.step(delay / 10) // the clock still within the delay
		}
		if delay > 0 {
			if fs := p.frames(); len(fs) != 0 || writev() != 1 {
				t.Fatalf("write delay %v: %d frames, %d writev calls before the delay passed, want only the 101's", delay, len(fs), writev())
			}
			h.step(delay) // past the oldest output's deadline
			fs := p.frames()
			if len(fs) != 5 {
				t.Fatalf("write delay %v: %d echoes after the delay, want 5", delay, len(fs))
			}
			for i, f := range fs {
				if string(f.Payload) != string(rune('a'+i)) {
					t.Fatalf("echo %d: %q", i, f.Payload)
				}
			}
		}
		want := uint64(5)
		if delay > 0 {
			want = 1
		}
		h.step(delay + testTick) // a stray extra writev would be counted by now
		if n := writev() - 1; n != want {
			t.Fatalf("write delay %v: %d writev calls for 5 echoes, want %d", delay, n, want)
		}
	}
}
