//go:build !race

package netpoll

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestPassMeasureNoAllocs: a loop pass, with its health measurement (busy time, events, the
// duration bucket, the busy window), allocates nothing.
func TestPassMeasureNoAllocs(t *testing.T) {
	l, _, peer := healthLoop(t)
	task := func() {}
	one := []byte("x")
	run := func() {
		unix.Write(peer, one)
		l.Post(task)
		if err := l.pass(); err != nil {
			t.Fatal(err)
		}
	}
	run() // warm the task queue's two buffers
	run()
	if a := testing.AllocsPerRun(200, run); a != 0 {
		t.Fatalf("%v allocations per pass, want 0", a)
	}
	if l.Stats.Events.Load() == 0 || l.Stats.Tasks.Load() == 0 {
		t.Fatal("the passes handled nothing")
	}
}
