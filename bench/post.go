package bench

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// post queues f to run on the loop and wakes it through the eventfd; wakes
// are coalesced while one is pending. It reports false, without queueing,
// when the loop has exited. Safe from any goroutine.
func (l *Loop) post(f func(*Loop)) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead {
		return false
	}
	l.tasks = append(l.tasks, f)
	if l.wakePending.CompareAndSwap(false, true) {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		// eventfd(2): a write only fails when the counter would overflow,
		// which a pending, coalesced wake makes impossible. The write is
		// under mu so evfd cannot be closed meanwhile (see closeFDs).
		unix.Write(l.evfd, one[:])
	}
	return true
}

// runTasks runs the tasks posted since the last pass, in order. Loop
// goroutine only.
func (l *Loop) runTasks() {
	l.mu.Lock()
	l.runq, l.tasks = l.tasks, l.runq[:0]
	l.mu.Unlock()
	for i, f := range l.runq {
		f(l)
		l.runq[i] = nil
	}
}
