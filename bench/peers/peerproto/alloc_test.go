//go:build !race

package peerproto

import "testing"

// The encoders run once per publish and once per reply; with a buffer of
// sufficient capacity they must not allocate.
func TestEncodersDoNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 512)
	data := []byte(`{"price":101.5,"sym":"ABC"}`)
	allocs := testing.AllocsPerRun(1000, func() {
		b := AppendMessage(buf[:0], "ticker\"s", 123456, "id-7", data)
		b = AppendSubscribed(b, "ticker", 9)
		b = AppendUnsubscribed(b, "ticker")
		b = AppendPublished(b, "ticker", 9, "id-7")
		b = AppendDuplicate(b, "ticker", "id-7")
		b = AppendRequestError(b, ErrBadID)
		_ = AppendFrame(b, OpcodeText, data)
	})
	if allocs != 0 {
		t.Fatalf("encoders allocated %.1f times per run, want 0", allocs)
	}
}

func TestChannelNextWithoutIDDoesNotAllocate(t *testing.T) {
	ch := newTestRegistry().Channel("c")
	allocs := testing.AllocsPerRun(1000, func() {
		ch.Lock()
		ch.Next("")
		ch.Unlock()
	})
	if allocs != 0 {
		t.Fatalf("Next(\"\") allocated %.1f times per run, want 0", allocs)
	}
}
