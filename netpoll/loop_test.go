package netpoll

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// recorder is a Handler that registers every accepted socket and records events.
type recorder struct {
	l        *Loop
	mu       sync.Mutex
	accepted []int
	events   map[int]int
	onEvent  func(fd int, ev uint32)
	passes   atomic.Int64
}

func (r *recorder) OnAccept(fd int) {
	if err := r.l.Register(fd); err != nil {
		panic(err)
	}
	r.mu.Lock()
	r.accepted = append(r.accepted, fd)
	r.mu.Unlock()
}

func (r *recorder) OnEvent(fd int, ev uint32) {
	r.mu.Lock()
	if r.events == nil {
		r.events = map[int]int{}
	}
	r.events[fd]++
	r.mu.Unlock()
	if r.onEvent != nil {
		r.onEvent(fd, ev)
	}
}

func (r *recorder) OnPass(int64) { r.passes.Add(1) }

func startLoop(t *testing.T, cfg LoopConfig, onEvent func(l *Loop, fd int, ev uint32)) (*Loop, *recorder) {
	t.Helper()
	l, err := NewLoop(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{l: l}
	if onEvent != nil {
		r.onEvent = func(fd int, ev uint32) { onEvent(l, fd, ev) }
	}
	go l.Run(r)
	t.Cleanup(func() {
		l.Stop()
		<-l.Done()
	})
	return l, r
}

// waitLimit bounds how long a test waits for an event it caused, only so that a broken build
// fails with a message instead of hanging until go test's -timeout. It is no time budget: on a
// loaded CI machine the events take milliseconds, so a generous bound costs nothing.
const waitLimit = 30 * time.Second

// waitFor polls cond until it holds, failing the test if it still does not after waitLimit.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %v for %s", waitLimit, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// syncLoop posts a task and waits until it has run: the loop has gone through every pass
// before the one running it, and is in that pass.
func syncLoop(t *testing.T, l *Loop) {
	t.Helper()
	ran := make(chan struct{})
	if !l.Post(func() { close(ran) }) {
		t.Fatal("Post refused on a running loop")
	}
	select {
	case <-ran:
	case <-time.After(waitLimit):
		t.Fatalf("a posted task did not run within %v", waitLimit)
	}
}

func TestListenReusePortSharesPort(t *testing.T) {
	fds, addr, err := Listen("127.0.0.1:0", 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	if len(fds) != 3 || addr.Port == 0 {
		t.Fatalf("fds %v addr %v", fds, addr)
	}
	for _, fd := range fds {
		sa, _ := unix.Getsockname(fd)
		if sa.(*unix.SockaddrInet4).Port != addr.Port {
			t.Fatalf("listener on port %d, want %d", sa.(*unix.SockaddrInet4).Port, addr.Port)
		}
	}
	if _, _, err := Listen("127.0.0.1:bad", 1, 0); err == nil {
		t.Fatal("bad port accepted")
	}
}

// TestPostRunsTasksInOrderAndCoalescesWakeups: tasks posted from one goroutine run in posting
// order, and posts made while the loop is busy share one eventfd wake-up. The loop is held
// inside a task while the posts are made, so the count does not depend on how the scheduler
// interleaves the poster and the loop thread (left alone, a loop thread that preempts the poster
// after each eventfd write could consume every wake-up on its own).
func TestPostRunsTasksInOrderAndCoalescesWakeups(t *testing.T) {
	l, _ := startLoop(t, LoopConfig{ListenFD: -1}, nil)
	busy, release := make(chan struct{}), make(chan struct{})
	l.Post(func() {
		close(busy)
		<-release
	})
	<-busy // the loop has consumed the wake-up of that post and runs it
	wakeups := l.Stats.Wakeups.Load()
	var got []int
	done := make(chan struct{})
	const n = 1000
	for i := 0; i < n; i++ {
		if !l.Post(func() {
			got = append(got, i)
			if i == n-1 {
				close(done)
			}
		}) {
			t.Fatal("Post refused on a running loop")
		}
	}
	close(release)
	<-done
	for i, v := range got {
		if v != i {
			t.Fatalf("task %d ran at position %d", v, i)
		}
	}
	if w := l.Stats.Wakeups.Load() - wakeups; w != 1 {
		t.Fatalf("%d wake-ups for %d posts made while the loop was busy, want 1: not coalesced", w, n)
	}
	l.Stop()
	<-l.Done()
	if l.Post(func() {}) {
		t.Fatal("Post accepted after Stop")
	}
}

func TestPostFromManyGoroutines(t *testing.T) {
	l, _ := startLoop(t, LoopConfig{ListenFD: -1}, nil)
	var count int // loop goroutine only
	var wg sync.WaitGroup
	finished := make(chan int)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				l.Post(func() { count++ })
			}
		}()
	}
	wg.Wait()
	l.Post(func() { finished <- count })
	if c := <-finished; c != 8*500 {
		t.Fatalf("ran %d tasks, want %d", c, 8*500)
	}
}

// TestStaleGenerationDropped: an event for an fd closed earlier in the same pass (and reused by
// a new registration) is not delivered to the new owner.
func TestStaleGenerationDropped(t *testing.T) {
	l, err := NewLoop(LoopConfig{ListenFD: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.Stop(); l.Run(nil) }()
	p, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	defer unix.Close(p[1])
	if err := l.Register(p[0]); err != nil {
		t.Fatal(err)
	}
	old := pack(p[0], l.gens[p[0]])
	if !l.valid(&old) {
		t.Fatal("current registration judged stale")
	}
	l.Close(p[0])
	if l.valid(&old) {
		t.Fatal("event of a closed fd judged valid")
	}
	// The fd number is reused by a new socket: the old event must still be stale.
	q, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	defer unix.Close(q[1])
	fd := q[0]
	if fd != p[0] {
		t.Logf("fd not reused (%d vs %d); checking generations anyway", fd, p[0])
	}
	if err := l.Register(fd); err != nil {
		t.Fatal(err)
	}
	if fd == p[0] && l.valid(&old) {
		t.Fatal("stale event for a reused fd judged valid")
	}
	cur := pack(fd, l.gens[fd])
	if !l.valid(&cur) {
		t.Fatal("new registration judged stale")
	}
	l.Close(fd)
}

func TestAcceptAndReadEvents(t *testing.T) {
	fds, addr, err := Listen("127.0.0.1:0", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 10)
	l, _ := startLoop(t, LoopConfig{ListenFD: fds[0]}, func(_ *Loop, fd int, ev uint32) {
		if ev&EventRead != 0 {
			buf := make([]byte, 100)
			n, _ := unix.Read(fd, buf)
			if n > 0 {
				got <- buf[:n]
			}
		}
	})
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	if b := <-got; string(b) != "ping" {
		t.Fatalf("read %q", b)
	}
	if l.Stats.Accepted.Load() != 1 {
		t.Fatalf("accepted %d", l.Stats.Accepted.Load())
	}
}

// TestAcceptPausesOnEMFILE: when the process runs out of descriptors the listener pauses for
// AcceptBackoff (no busy loop: the pending connection would make the listener ready on every
// pass), the error is counted, and accepting resumes once the backoff is over and descriptors
// are free. The loop runs on a fake clock that only the test moves, with a backoff of an hour:
// while the clock stands still the loop has nothing to wake up for, so every pass in the pause is
// one the test caused, and whether the listener was polled is counted, not timed.
func TestAcceptPausesOnEMFILE(t *testing.T) {
	const backoff = time.Hour
	fds, addr, err := Listen("127.0.0.1:0", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Connect clients first: they wait in the listener's backlog.
	const clients = 5
	dialQueued(t, addr, clients)
	var clock atomic.Int64
	clock.Store(int64(time.Hour)) // any origin
	l, err := NewLoop(LoopConfig{ListenFD: fds[0], AcceptBackoff: backoff, Now: clock.Load})
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{l: l}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	restore := func() {
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
	}
	defer restore() // also when the test fails early: later tests need their descriptors
	// Lower the soft limit to the next free descriptor: the first accept fails with EMFILE.
	probe, _ := unix.Dup(0)
	unix.Close(probe)
	low := lim
	low.Cur = uint64(probe)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	go l.Run(r)
	defer func() { l.Stop(); <-l.Done() }()
	waitFor(t, "the first accept to fail with EMFILE", func() bool { return l.Stats.AcceptPauses.Load() >= 1 })
	pausedAt := clock.Load() // the clock has not moved: the backoff timer is filed for pausedAt+backoff

	// Paused: however many passes the loop makes, it does not try the listener again. A listener
	// left in the epoll set would fail once more on every pass.
	const forced = 50
	passes := l.Stats.Passes.Load()
	for range forced {
		syncLoop(t, l)
	}
	if e, p := l.Stats.AcceptErrors.Load(), l.Stats.AcceptPauses.Load(); e != 1 || p != 1 {
		t.Fatalf("%d passes while paused tried the listener: %d accept errors, %d pauses, want 1 and 1",
			forced, e, p)
	}
	// And it makes no passes of its own: only the test's tasks wake it (a handful of extra
	// wake-ups, such as an interrupted epoll_wait, are no spin).
	if spun := l.Stats.Passes.Load() - passes; spun > 2*forced {
		t.Fatalf("%d loop passes for %d posted tasks while out of descriptors: the loop spins", spun, forced)
	}

	// Not a tick before the backoff is over...
	clock.Store(pausedAt + int64(backoff) - int64(time.Millisecond))
	syncLoop(t, l) // the pass running this task advances the wheel after it
	syncLoop(t, l) // so this one runs after that advance
	if p := l.Stats.AcceptPauses.Load(); p != 1 {
		t.Fatalf("the listener was tried again %v before the backoff was over", time.Millisecond)
	}
	// ...but once it is, the listener is tried again: still out of descriptors, it pauses again.
	clock.Store(pausedAt + int64(backoff) + int64(DefaultWheelTick))
	syncLoop(t, l)
	waitFor(t, "the listener to be tried again after the backoff", func() bool { return l.Stats.AcceptPauses.Load() == 2 })
	// The counter moves before the listener is paused and its timer filed at the loop's "now":
	// let that pass finish before moving the clock again.
	syncLoop(t, l)

	// Descriptors free again: after the next backoff every waiting client is accepted.
	restore()
	clock.Add(int64(backoff + DefaultWheelTick))
	syncLoop(t, l)
	waitFor(t, "the waiting clients to be accepted", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.accepted) == clients
	})
	if e, p := l.Stats.AcceptErrors.Load(), l.Stats.AcceptPauses.Load(); e != 2 || p != 2 {
		t.Fatalf("%d accept errors and %d pauses, want 2 and 2", e, p)
	}
}

// TestRequeue: a requeued fd gets another read event on the next pass without new data.
func TestRequeue(t *testing.T) {
	p, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	defer unix.Close(p[1])
	calls := make(chan int, 10)
	n := 0
	l, _ := startLoop(t, LoopConfig{ListenFD: -1}, func(l *Loop, fd int, ev uint32) {
		if ev&EventRead == 0 {
			return
		}
		n++
		calls <- n
		if n < 3 {
			l.Requeue(fd) // pretend the read budget ran out
		}
	})
	reg := make(chan error)
	l.Post(func() { reg <- l.Register(p[0]) })
	if err := <-reg; err != nil {
		t.Fatal(err)
	}
	unix.Write(p[1], []byte("x"))
	for want := 1; want <= 3; want++ {
		if got := <-calls; got != want {
			t.Fatalf("call %d, want %d", got, want)
		}
	}
	l.Post(func() { l.Close(p[0]) })
}

// handLoop is a loop without a listener on a clock the test moves (starting at an hour, any
// origin), driven by hand with pass(); it is stopped and its descriptors freed at the end of the
// test.
func handLoop(t *testing.T) (*Loop, *atomic.Int64) {
	t.Helper()
	clock := new(atomic.Int64)
	clock.Store(int64(time.Hour))
	l, err := NewLoop(LoopConfig{ListenFD: -1, Now: clock.Load})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Stop()
		l.Run(&recorder{l: l})
	})
	return l, clock
}

// dialQueued connects n clients to addr while nobody accepts: they wait in the listener's queue.
// They are closed at the end of the test.
func dialQueued(t *testing.T, addr net.Addr, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	return conns
}

// TestLoopYieldsBeforeBlocking: a loop passes through the Go scheduler before a blocking
// epoll_wait at least every yieldEvery of its clock (so that sysmon does not treat it as a
// goroutine running too long and take its P at every epoll_wait), and never before a pass that
// does not block.
func TestLoopYieldsBeforeBlocking(t *testing.T) {
	l, clock := handLoop(t)
	yields := 0
	l.yield = func() { yields++ }
	l.h = &recorder{l: l}
	// A timer 1 ms ahead makes every pass block for about 1 ms (epoll_wait's timeout).
	var tm Timer
	fired := 0
	tm.Init(func(*Timer, int64) { fired++ })
	for i := range 20 {
		clock.Add(int64(time.Millisecond))
		l.wheel.Schedule(&tm, clock.Load()+int64(time.Millisecond))
		if err := l.pass(); err != nil {
			t.Fatal(err)
		}
		if want := i/int(yieldEvery/time.Millisecond) + 1; yields != want {
			t.Fatalf("after %d passes (%d ms of loop clock) %d yields, want %d", i+1, i+1, yields, want)
		}
	}
	// A pass that does not block (reads requeued: timeout 0) does not yield.
	before := yields
	clock.Add(int64(10 * yieldEvery))
	l.again = append(l.again, unix.EpollEvent{Fd: -1})
	if err := l.pass(); err != nil {
		t.Fatal(err)
	}
	if yields != before {
		t.Fatalf("a non-blocking pass yielded")
	}
}

// TestTableSizeFollowsTheFileLimit: descriptor tables are sized by the open-files limit once, so
// they never grow by doubling (no copy, no garbage, no spare half per connection); a descriptor
// beyond (the limit raised later) still registers.
func TestTableSizeFollowsTheFileLimit(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
	low := lim
	low.Cur = 3000
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	if n := TableSize(); n != 3000 {
		t.Fatalf("TableSize = %d with a limit of 3000", n)
	}
	low.Cur = 100
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	if n := TableSize(); n != 1024 {
		t.Fatalf("TableSize = %d with a limit of 100, want the floor 1024", n)
	}
	l, err := NewLoop(LoopConfig{ListenFD: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		l.Stop()
		l.Run(&recorder{l: l})
	}()
	if len(l.gens) != 1024 {
		t.Fatalf("loop table %d long, want TableSize", len(l.gens))
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// A descriptor past the table (the lowest free one from 1500 on) still registers.
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	high, err := unix.FcntlInt(uintptr(fds[0]), unix.F_DUPFD_CLOEXEC, 1500)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fds[0])
	if err := l.Register(high); err != nil {
		t.Fatal(err)
	}
	if len(l.gens) <= high || l.gens[high] == 0 {
		t.Fatalf("descriptor %d past the table not registered (table %d long)", high, len(l.gens))
	}
	l.Close(high)
}

// passOrder records the order of a pass's steps for TestLoopYieldsAfterAskingTasks.
type passOrder struct {
	recorder
	steps *[]string
}

func (p *passOrder) OnPass(int64) { *p.steps = append(*p.steps, "flush") }

// TestLoopYieldsAfterAskingTasks: tasks that release a waiting goroutine ask the loop to pass
// through the Go scheduler; it does so once, after the tasks and before the handler's flush
// (the waiter answers before the fan-out's writes), and a pass whose tasks did not ask does not.
func TestLoopYieldsAfterAskingTasks(t *testing.T) {
	l, clock := handLoop(t)
	var steps []string
	l.lastYield = clock.Load() // no yield before blocking in this test's passes
	l.yield = func() { steps = append(steps, "yield") }
	l.h = &passOrder{recorder: recorder{l: l}, steps: &steps}
	task := func(ask bool) func() {
		return func() {
			steps = append(steps, "task")
			if ask {
				l.YieldAfterTasks()
			}
		}
	}
	l.Post(task(true))
	l.Post(task(false))
	l.Post(task(true))
	if err := l.pass(); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(steps, " "), "task task task yield flush"; got != want {
		t.Fatalf("pass steps %q, want %q", got, want)
	}
	if n := l.Stats.TaskYields.Load(); n != 1 {
		t.Fatalf("TaskYields = %d, want 1", n)
	}
	steps = steps[:0]
	l.Post(task(false))
	if err := l.pass(); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(steps, " "), "task flush"; got != want {
		t.Fatalf("pass steps %q, want %q", got, want)
	}
	if n := l.Stats.TaskYields.Load(); n != 1 {
		t.Fatalf("TaskYields = %d after a pass that did not ask, want 1", n)
	}
}
