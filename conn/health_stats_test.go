package conn

import (
	"testing"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/netpoll"
)

// TestOpenQueuedAndMessagesOut: Stats.Open follows handshakes and closes, PongsSent the answers
// to pings, MessagesOut the data frames only, and QueuedBytes the output the sockets have not
// taken as of the end of each pass.
func TestOpenQueuedAndMessagesOut(t *testing.T) {
	h := newHarness(t, Config{MaxQueue: 64 << 20})
	st := &h.e.Stats
	open := func() int64 { return st.Open[TransportWebSocket].Load() }

	a, b := h.open(), h.open()
	if open() != 2 {
		t.Fatalf("Open %d after two handshakes", open())
	}
	hs := h.dial() // handshaking: not open yet
	if open() != 2 {
		t.Fatalf("Open %d with a connection still handshaking", open())
	}
	hs.close()
	h.e.OnEvent(hs.srv, netpoll.EventRead|netpoll.EventHangup)
	h.pass()

	a.sendFrame(ws.OpPing, []byte("p"))
	if st.PongsSent.Load() != 1 {
		t.Fatalf("PongsSent %d after one ping", st.PongsSent.Load())
	}
	// b does not read: the socket fills and the rest waits in the queue.
	c := h.e.conns[b.srv]
	msg := make([]byte, 64<<10)
	sent := uint64(0)
	for i := 0; i < 200 && c.Queued() == 0; i++ {
		if err := c.WriteMessage(ws.OpBinary, msg); err != nil {
			t.Fatal(err)
		}
		sent++
		h.pass()
	}
	if c.Queued() == 0 {
		t.Fatal("the socket took 12 MiB without filling")
	}
	if got := st.QueuedBytes.Load(); got != int64(c.Queued()) {
		t.Fatalf("QueuedBytes %d, want the blocked connection's %d", got, c.Queued())
	}
	if got := st.MessagesOut(); got != sent {
		t.Fatalf("MessagesOut %d, want %d (the pong is not a message)", got, sent)
	}
	// The client reads; the writable edge lets the queue drain.
	for c.Queued() > 0 {
		b.in = b.in[:0]
		b.drain()
		h.e.OnEvent(b.srv, netpoll.EventWrite)
		h.pass()
	}
	if st.QueuedBytes.Load() != 0 {
		t.Fatalf("QueuedBytes %d after the queue drained", st.QueuedBytes.Load())
	}
	// A close with output still queued takes it out of the backlog too.
	for i := 0; i < 200 && c.Queued() == 0; i++ {
		c.WriteMessage(ws.OpBinary, msg)
		h.pass()
	}
	b.close()
	h.e.OnEvent(b.srv, netpoll.EventRead|netpoll.EventHangup)
	h.pass()
	if open() != 1 || st.QueuedBytes.Load() != 0 {
		t.Fatalf("after b closed: Open %d, QueuedBytes %d; want 1, 0", open(), st.QueuedBytes.Load())
	}
	a.sendFrame(ws.OpClose, []byte{0x03, 0xe8})
	h.pass()
	if open() != 0 {
		t.Fatalf("Open %d after both closed", open())
	}
}
