package conn

import (
	"bytes"
	"testing"

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
