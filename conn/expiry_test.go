package conn

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// expiring is a recorder whose connections close at a deadline kept in c.Data (an *int64).
type expiring struct{ *recorder }

func (x expiring) OnOpen(c *Conn) {
	x.recorder.OnOpen(c)
	c.Data = new(int64)
}

func (x expiring) Expiry(c *Conn) (int64, ws.StatusCode, string) {
	at, _ := c.Data.(*int64) // asked first before OnOpen, when Data is still nil
	if at == nil {
		return 0, 0, ""
	}
	return *at, 4001, "token expired"
}

// TestExpirerClosesAtDeadline: an Expirer's deadline joins the connection's single timer: the
// connection closes with the Expirer's code and reason in the tick of the deadline, not before;
// a deadline moved later (a refresh) is kept without a call, an earlier one takes effect with
// ExpiryChanged; no deadline (0) never closes.
func TestExpirerClosesAtDeadline(t *testing.T) {
	h := newHarness(t, Config{PingInterval: 25 * time.Second})
	h.e = NewEngine(h.loop, Config{PingInterval: 25 * time.Second}.WithDefaults(), expiring{h.rec}, nil)
	a, b, never := h.open(), h.open(), h.open()
	conn := func(p *peer) *Conn { return h.e.Lookup(p.id) }
	start := h.now
	*conn(a).Data.(*int64) = start + int64(3*time.Second)
	conn(a).ExpiryChanged()
	*conn(b).Data.(*int64) = start + int64(2*time.Second)
	conn(b).ExpiryChanged()
	// a is refreshed before its deadline: moved later, no call needed.
	h.step(time.Second)
	*conn(a).Data.(*int64) = start + int64(10*time.Second)
	for h.now < start+int64(2*time.Second)-int64(testTick) {
		h.step(testTick)
	}
	if !b.open() {
		t.Fatal("b closed before its deadline")
	}
	h.step(testTick)
	expectClose(t, b, 4001, "token expired")
	for h.now < start+int64(10*time.Second)-int64(testTick) {
		h.step(testTick)
	}
	if !a.open() {
		t.Fatal("a closed at its old deadline after a refresh")
	}
	h.step(testTick)
	expectClose(t, a, 4001, "token expired")
	if !never.open() {
		t.Fatal("a connection without a deadline was closed")
	}
	if n := h.e.Stats.Expired.Load(); n != 2 {
		t.Fatalf("Expired = %d, want 2", n)
	}
}

func expectClose(t *testing.T, p *peer, code uint16, reason string) {
	t.Helper()
	for _, f := range p.frames() {
		if f.Header.OpCode == ws.OpClose {
			if got := binary.BigEndian.Uint16(f.Payload); got != code || string(f.Payload[2:]) != reason {
				t.Fatalf("close %d %q, want %d %q", got, f.Payload[2:], code, reason)
			}
			return
		}
	}
	t.Fatalf("no close frame (want %d %q)", code, reason)
}
