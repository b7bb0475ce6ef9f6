package netpoll

import (
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPinnedThreadDiesWithLoop: a loop pinned with LoopConfig.CPU changes its thread's affinity
// (sched_setaffinity(2) acts on the calling thread). When Run returns, that thread must not go
// back to the Go scheduler, where it would run arbitrary goroutines on one CPU for the rest of
// the process's life: the loop goroutine exits still locked, so the runtime terminates the
// thread (see runtime.LockOSThread). A loop stopped before its first pass is not pinned at all,
// since Run may then run on a goroutine that goes on (Server's clean-up of loops never started).
func TestPinnedThreadDiesWithLoop(t *testing.T) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	cpu := 0
	for !all.IsSet(cpu) {
		cpu++
	}
	// The runtime never terminates the main thread: a goroutine that exits locked to it wedges
	// it instead (it runs nothing else, which is as good). A loop that happened to run there
	// says nothing about termination, so it is not counted; after it, the main thread is wedged
	// and the next loops run elsewhere.
	observed := 0
	for attempt := 0; observed < 3; attempt++ {
		if attempt == 20 {
			// With the fix the main thread runs at most one loop, then stays wedged.
			t.Fatalf("%d of %d loops ran on the main thread: it went back to the scheduler after a pinned loop",
				attempt-observed, attempt)
		}
		l, err := NewLoop(LoopConfig{Pin: true, CPU: cpu, ListenFD: -1})
		if err != nil {
			t.Fatal(err)
		}
		tids := make(chan int, 1)
		go l.Run(&recorder{l: l})
		l.Post(func() {
			var set unix.CPUSet
			unix.SchedGetaffinity(0, &set)
			if set.Count() != 1 || !set.IsSet(cpu) {
				t.Errorf("loop thread affinity %v, want only CPU %d", set, cpu)
			}
			tids <- unix.Gettid()
		})
		tid := <-tids
		l.Stop()
		<-l.Done()
		if tid == unix.Getpid() {
			continue
		}
		observed++
		// Done is closed inside Run, a moment before the goroutine exits and the runtime
		// reaps its thread: poll for that event. A thread that went back to the scheduler is
		// never reaped; waitLimit only turns that into a failure rather than a hang, so it is
		// generous (a loaded machine takes milliseconds to reap a thread, not seconds).
		task := "/proc/self/task/" + strconv.Itoa(tid)
		for deadline := time.Now().Add(waitLimit); ; {
			if _, err := os.Stat(task); os.IsNotExist(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the pinned loop thread %d still exists %v after Run returned: it went back to the scheduler",
					tid, waitLimit)
			}
			runtime.Gosched()
			unix.Nanosleep(&unix.Timespec{Nsec: 100_000}, nil)
		}
	}

	// A loop stopped before Run does not pin the goroutine that runs it.
	l, err := NewLoop(LoopConfig{Pin: true, CPU: cpu, ListenFD: -1})
	if err != nil {
		t.Fatal(err)
	}
	l.Stop()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := l.Run(nil); err != nil {
		t.Fatal(err)
	}
	var mine unix.CPUSet
	if err := unix.SchedGetaffinity(0, &mine); err != nil {
		t.Fatal(err)
	}
	if mine != all {
		t.Fatalf("Run of a stopped loop changed the caller's affinity from %v to %v", all, mine)
	}
}
