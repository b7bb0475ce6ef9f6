//go:build !race

package netpoll

import "testing"

// TestWritevNoAllocs: a writev of many buffers builds its iovecs in the loop's own array.
func TestWritevNoAllocs(t *testing.T) {
	l := newTestLoop(t)
	a, b := socketpair(t)
	bufs := make([][]byte, 64)
	for i := range bufs {
		bufs[i] = make([]byte, 16)
	}
	sink := make([]byte, 64<<10)
	run := func() {
		if n, err := l.Writev(a, bufs); n != 64*16 || err != nil {
			t.Fatalf("Writev: %d, %v", n, err)
		}
		if n, err := Read(b, sink); n != 64*16 || err != nil {
			t.Fatalf("Read: %d, %v", n, err)
		}
	}
	if a := testing.AllocsPerRun(100, run); a != 0 {
		t.Fatalf("%v allocations per Writev and Read, want 0", a)
	}
}
