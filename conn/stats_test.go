package conn

import (
	"testing"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/netpoll"
)

// TestReadAndWriteErrorsCountedApart: a writev that fails (the peer is gone: EPIPE) counts as a
// write error, a read that fails (the peer reset the connection: ECONNRESET) as a read error;
// either closes the connection with 1006.
func TestReadAndWriteErrorsCountedApart(t *testing.T) {
	h := newHarness(t, Config{})
	st := &h.e.Stats

	// Write side: the peer closes; the next flush gets EPIPE.
	w := h.open()
	w.close()
	h.e.conns[w.srv].WriteMessage(ws.OpText, []byte("anyone?"))
	h.pass()
	if w.open() || st.WriteErrors.Load() != 1 || st.ReadErrors.Load() != 0 {
		t.Fatalf("after a failed writev: open=%v, WriteErrors %d, ReadErrors %d; want closed, 1, 0",
			w.open(), st.WriteErrors.Load(), st.ReadErrors.Load())
	}

	// Read side: the peer closes with our bytes unread, which resets the connection (for a
	// socketpair as for TCP, see unix(7) and tcp(7)); the next read gets ECONNRESET.
	r := h.open()
	h.e.conns[r.srv].WriteMessage(ws.OpText, []byte("unread"))
	h.pass()
	r.close()
	h.e.OnEvent(r.srv, netpoll.EventRead|netpoll.EventHangup)
	h.pass()
	if r.open() || st.ReadErrors.Load() != 1 || st.WriteErrors.Load() != 1 {
		t.Fatalf("after a failed read: open=%v, ReadErrors %d, WriteErrors %d; want closed, 1, 1",
			r.open(), st.ReadErrors.Load(), st.WriteErrors.Load())
	}
	if len(h.rec.closed) != 2 || h.rec.closed[0].code != ws.StatusAbnormalClosure || h.rec.closed[1].code != ws.StatusAbnormalClosure {
		t.Fatalf("OnClose %v, want two with 1006", h.rec.closed)
	}
}
