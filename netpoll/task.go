package netpoll

import (
	"sync"
	"sync/atomic"
)

// taskQueue is the multi-producer, single-consumer queue through which other goroutines hand work
// to a loop. Producers append under a mutex (held for an append only); the loop swaps the slice
// out and runs the tasks without the lock. The eventfd write is coalesced by woken.
type taskQueue struct {
	efd   int         // the eventfd; immutable after NewLoop
	woken atomic.Bool // an eventfd write is pending and not yet consumed by the loop; any goroutine

	mu    sync.Mutex // guards tasks and spare; held for an append or a swap only
	tasks []func()   // posted, not yet run
	spare []func()   // the drained array, reused for the next swap
}

// Post hands fn to the loop; fn runs on the loop goroutine during one of its next passes, in
// posting order with other tasks from the same goroutine. Any goroutine may call Post. It returns
// false when the loop has stopped (fn will not run).
func (l *Loop) Post(fn func()) bool {
	q := &l.tq
	q.mu.Lock()
	if l.stopped.Load() {
		q.mu.Unlock()
		return false
	}
	q.tasks = append(q.tasks, fn)
	q.mu.Unlock()
	q.wake()
	return true
}

func (q *taskQueue) wake() {
	if q.woken.Load() || !q.woken.CompareAndSwap(false, true) {
		return
	}
	signalEventfd(q.efd)
}

// consumeWake reads the eventfd and re-arms wake-ups. Loop goroutine only.
func (q *taskQueue) consumeWake() {
	drainEventfd(q.efd)
	// Clear before taking the tasks: a producer that appends after the swap below sees false and
	// writes the eventfd again, so no task is left waiting for a wake-up that never comes.
	q.woken.Store(false)
}

// run takes every posted task and runs it. Loop goroutine only. Returns how many ran.
func (q *taskQueue) run() int {
	q.mu.Lock()
	tasks := q.tasks
	q.tasks = q.spare[:0]
	q.mu.Unlock()
	for i, fn := range tasks {
		fn()
		tasks[i] = nil
	}
	// Double buffering: q.tasks now uses the old spare array, and the one just drained becomes
	// the spare for the next swap.
	q.mu.Lock()
	q.spare = tasks[:0]
	q.mu.Unlock()
	return len(tasks)
}

// PendingTasks returns the tasks posted to the loop and not yet taken by it: a loop that falls
// behind its producers (publishes, sends) shows here first. Any goroutine; it takes the queue's
// lock for a read.
func (l *Loop) PendingTasks() int {
	l.tq.mu.Lock()
	defer l.tq.mu.Unlock()
	return len(l.tq.tasks)
}
