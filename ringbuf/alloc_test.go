//go:build !race

package ringbuf

import "testing"

// TestSteadyStateNoAllocs: once the pool is warm, queueing frames, taking their views and draining
// allocates nothing.
func TestSteadyStateNoAllocs(t *testing.T) {
	var p Pool
	shared := make([]byte, 300)
	frame := make([]byte, 70)
	scratch := make([][]byte, 0, maxViews)
	run := func() {
		q := p.Queue()
		for i := 0; i < 50; i++ {
			q.Write(frame)
			q.Ref(shared)
		}
		copy(q.Grow(10000), frame)
		scratch = q.Views(scratch[:0], maxViews)
		q.Advance(q.Len())
		q.Release()
	}
	run()
	if a := testing.AllocsPerRun(100, run); a != 0 {
		t.Fatalf("allocs per run = %v, want 0", a)
	}
}
