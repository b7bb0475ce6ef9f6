package bench

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Loop is one event loop: an epoll instance, its goroutine and the slots it
// owns. The first two groups of fields are shared with other goroutines as
// their comments say; every field below the task queue is touched only by
// the loop's goroutine.
type Loop struct {
	// Immutable after newLoop. epfd and evfd change once more, in
	// closeFDs, under mu, once the goroutine exited or if it never ran.
	e    *Engine
	idx  int
	epfd int
	evfd int

	mu          sync.Mutex    // guards tasks and dead; held while writing evfd
	tasks       []func(*Loop) // posted by any goroutine, taken by the loop (runTasks)
	dead        bool          // the loop goroutine has exited: tasks are refused
	wakePending atomic.Bool   // a wake-up is in the eventfd: post sets, the loop clears
	stats       loopStats     // atomic: the loop adds, anyone loads

	conns    []Conn             // length immutable (NumConns, any goroutine); slots loop only
	dst      unix.SockaddrInet4 // per loop: Connect writes into it
	now      int64              // engine clock at the start of this pass
	rbuf     []byte             // shared read buffer
	wbuf     []byte             // frame scratch for writes
	rng      *rand.Rand
	timers   timerHeap
	closed   []closeNote // closes waiting for OnClose
	free     [][]byte    // loop-local buffer pool
	runq     []func(*Loop)
	stopping bool
	infl     *inflater // -compression: the loop's decompressor, made on first use
	zbuf     []byte    // -compression: a compressed message with its tail, for infl

	dialing   bool
	dialNext  int
	dialStart int64
	dialRate  float64
	nextTick  int64
}

// closeNote is an OnClose call waiting for the end of the current event.
type closeNote struct {
	c  *Conn
	ev CloseEvent
}

const (
	readBufSize = 64 << 10 // the loop's read buffer, shared by its slots
	wakeMarker  = -1       // epoll data of the eventfd
)

// newLoop makes loop idx of e with its share of the slots, its epoll
// instance and its eventfd; s1 and s2 seed its random source.
func newLoop(e *Engine, idx int, s1, s2 uint64) (*Loop, error) {
	n := 0
	if e.cfg.Slots > idx {
		n = (e.cfg.Slots - idx + e.cfg.Loops - 1) / e.cfg.Loops
	}
	l := &Loop{
		e:     e,
		idx:   idx,
		epfd:  -1,
		evfd:  -1,
		conns: make([]Conn, n),
		dst:   unix.SockaddrInet4{Addr: e.cfg.Addr, Port: e.cfg.Port},
		rbuf:  make([]byte, readBufSize),
		wbuf:  make([]byte, 0, minBufSize),
		rng:   rand.New(rand.NewPCG(s1, s2)),
	}
	for k := range l.conns {
		c := &l.conns[k]
		c.loop = l
		c.local = int32(k)
		c.slot = int32(k*e.cfg.Loops + idx)
		c.fd = -1
	}
	var err error
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if l.evfd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		l.closeFDs()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeMarker}
	if err = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.evfd, &ev); err != nil {
		l.closeFDs()
		return nil, fmt.Errorf("epoll_ctl eventfd: %w", err)
	}
	return l, nil
}

// closeFDs releases the epoll and eventfd descriptors. It runs after the
// loop goroutine exited (or never started) and marks the loop dead first, so
// no post can write to a descriptor number that may already be reused.
func (l *Loop) closeFDs() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dead = true
	if l.evfd >= 0 {
		unix.Close(l.evfd)
		l.evfd = -1
	}
	if l.epfd >= 0 {
		unix.Close(l.epfd)
		l.epfd = -1
	}
}

// Index returns the loop's position in Engine.Loops.
func (l *Loop) Index() int { return l.idx }

// NumConns returns the number of slots the loop owns.
func (l *Loop) NumConns() int { return len(l.conns) }

// Conn returns the loop's k-th slot (0 <= k < NumConns). Loop goroutine only.
func (l *Loop) Conn(k int) *Conn { return &l.conns[k] }

// Now reads the engine clock afresh (use for latency stamps).
func (l *Loop) Now() int64 { return l.e.Now() }

// Rand returns the loop's random source. Loop goroutine only.
func (l *Loop) Rand() *rand.Rand { return l.rng }

// run is the loop goroutine: wait for events, handle them, run posted
// tasks, paced dials, due timers and the tick, until a task sets
// stopping; then close every socket and run the tasks still queued.
func (l *Loop) run() {
	defer l.e.wg.Done()
	events := make([]unix.EpollEvent, 256)
	for !l.stopping {
		n, err := unix.EpollWait(l.epfd, events, l.waitMillis())
		if err != nil && !errors.Is(err, unix.EINTR) {
			panic("BUG: epoll_wait: " + err.Error())
		}
		l.now = l.e.Now()
		for i := range n {
			ev := &events[i]
			if ev.Fd == wakeMarker {
				var b [8]byte
				unix.Read(l.evfd, b[:])
				l.wakePending.Store(false)
				continue
			}
			l.onEvent(ev)
			l.notifyClosed()
		}
		l.runTasks()
		l.now = l.e.Now()
		l.dialDue()
		l.fireTimers()
		if l.e.cfg.Tick > 0 && l.now >= l.nextTick {
			l.nextTick = l.now + int64(l.e.cfg.Tick)
			l.e.h.OnTick(l)
		}
		l.notifyClosed()
	}
	for k := range l.conns {
		c := &l.conns[k]
		if c.fd >= 0 {
			unix.Close(int(c.fd))
			c.fd = -1
		}
		c.state = stIdle
	}
	// Refuse further tasks, then run those that arrived meanwhile so
	// nobody waits forever for them (Sync).
	l.mu.Lock()
	l.dead = true
	rest := l.tasks
	l.tasks = nil
	l.mu.Unlock()
	for _, f := range rest {
		f(l)
	}
}

// waitMillis returns the epoll_wait timeout: until the earliest of the next
// timer, the next paced dial and the next tick; -1 when nothing is due.
func (l *Loop) waitMillis() int {
	if len(l.closed) > 0 {
		return 0
	}
	next := int64(-1)
	earliest := func(t int64) {
		if next < 0 || t < next {
			next = t
		}
	}
	if len(l.timers) > 0 {
		earliest(l.timers[0].at)
	}
	if l.dialing {
		if l.dialRate <= 0 {
			return 0
		}
		s := l.dialNext*len(l.e.loops) + l.idx
		earliest(l.dialStart + int64(float64(s)*1e9/l.dialRate))
	}
	if l.e.cfg.Tick > 0 {
		earliest(l.nextTick)
	}
	if next < 0 {
		return -1
	}
	d := next - l.e.Now()
	if d <= 0 {
		return 0
	}
	return int((d + int64(time.Millisecond) - 1) / int64(time.Millisecond))
}

// notifyClosed delivers the queued OnClose calls. Loop goroutine only.
func (l *Loop) notifyClosed() {
	for i := 0; i < len(l.closed); i++ {
		n := l.closed[i]
		l.closed[i] = closeNote{}
		l.e.h.OnClose(n.c, n.ev)
	}
	l.closed = l.closed[:0]
}

// onEvent handles one epoll event of a slot: it drops an event of an
// earlier socket (generation mismatch), completes a connect, flushes queued
// output and reads. Loop goroutine only.
func (l *Loop) onEvent(ev *unix.EpollEvent) {
	k := int(ev.Fd)
	if k < 0 || k >= len(l.conns) {
		panic("BUG: epoll event for unknown slot")
	}
	c := &l.conns[k]
	if c.gen != uint32(ev.Pad) || c.state == stIdle {
		return // event of an earlier socket of this slot
	}
	gen := c.gen
	evs := ev.Events
	if c.state == stConnecting {
		if evs&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		if err := connectResult(int(c.fd)); err != nil {
			c.shut(errnoReason(err), 0, err)
			return
		}
		c.connected()
		if c.gen != gen || c.state == stIdle {
			return
		}
	}
	if evs&unix.EPOLLOUT != 0 && c.wq != nil {
		c.flush()
		if c.gen != gen || c.state == stIdle {
			return
		}
	}
	if evs&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.readAll(evs&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0)
	}
}
