package netpoll

import (
	"net"
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

func TestPostRunsTasksInOrderAndCoalescesWakeups(t *testing.T) {
	l, _ := startLoop(t, LoopConfig{ListenFD: -1}, nil)
	var got []int
	done := make(chan struct{})
	const n = 1000
	// Post from one goroutine: tasks run in posting order on the loop goroutine.
	for i := 0; i < n; i++ {
		i := i
		if !l.Post(func() {
			got = append(got, i)
			if i == n-1 {
				close(done)
			}
		}) {
			t.Fatal("Post refused on a running loop")
		}
	}
	<-done
	for i, v := range got {
		if v != i {
			t.Fatalf("task %d ran at position %d", v, i)
		}
	}
	if w := l.Stats.Wakeups.Load(); w >= n {
		t.Fatalf("%d wake-ups for %d posts: not coalesced", w, n)
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

// TestAcceptPausesOnEMFILE: when the process runs out of descriptors the listener pauses (no
// busy loop), the error is counted, and accepting resumes once descriptors are free.
func TestAcceptPausesOnEMFILE(t *testing.T) {
	fds, addr, err := Listen("127.0.0.1:0", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Connect clients first: they wait in the listener's backlog.
	const clients = 5
	var conns []net.Conn
	for i := 0; i < clients; i++ {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var lim unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	l, err := NewLoop(LoopConfig{ListenFD: fds[0], AcceptBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{l: l}
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
	for l.Stats.AcceptPauses.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	passes := r.passes.Load()
	time.Sleep(50 * time.Millisecond)
	// Paused: a handful of passes (backoff timers), not a spin of thousands.
	if spun := r.passes.Load() - passes; spun > 20 {
		t.Fatalf("%d loop passes in 50 ms while out of descriptors: the loop spins", spun)
	}
	unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
	for {
		r.mu.Lock()
		n := len(r.accepted)
		r.mu.Unlock()
		if n == clients {
			break
		}
		time.Sleep(time.Millisecond)
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
