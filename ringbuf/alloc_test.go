//go:build !race

package ringbuf

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestSteadyStateNoAllocs: once the pool is warm, queueing frames, building iovecs and draining
// allocates nothing.
func TestSteadyStateNoAllocs(t *testing.T) {
	var p Pool
	shared := make([]byte, 300)
	frame := make([]byte, 70)
	scratch := make([]unix.Iovec, 0, IOVMax)
	run := func() {
		q := p.Queue()
		for i := 0; i < 50; i++ {
			q.Write(frame)
			q.Ref(shared)
		}
		copy(q.Grow(10000), frame)
		scratch = q.Iovecs(scratch[:0], IOVMax)
		q.Advance(q.Len())
		q.Release()
	}
	run()
	if a := testing.AllocsPerRun(100, run); a != 0 {
		t.Fatalf("allocs per run = %v, want 0", a)
	}
}
