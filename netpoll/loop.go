package netpoll

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Handler receives a loop's events. Every method runs on the loop goroutine.
type Handler interface {
	// OnAccept takes ownership of a newly accepted, non-blocking socket: it registers the fd with
	// Loop.Register or closes it with Loop.Close.
	OnAccept(fd int)
	// OnEvent reports readiness (Event* bits) of a registered fd. It is called only while the
	// registration that produced the event is current (see the generation invariant).
	OnEvent(fd int, events uint32)
	// OnPass runs at the end of every loop pass, after events, tasks and timers: the place to
	// flush output gathered during the pass with one writev per connection.
	OnPass(now int64)
}

const (
	// maxEvents is the epoll_wait(2) batch: the most ready descriptors one pass handles.
	maxEvents = 1024
	// acceptBatch bounds the connections a pass accepts, so that a connect storm cannot starve
	// the loop's open connections.
	acceptBatch = 256
)

// LoopConfig configures one loop. The zero value of each field is a sane default.
type LoopConfig struct {
	Index int // loop number, for logs
	// Pin pins the loop's thread to CPU with sched_setaffinity(2); the zero value leaves the
	// thread unpinned.
	Pin bool
	CPU int
	// ListenFD is the loop's own SO_REUSEPORT listening socket, or -1 for none.
	ListenFD int
	// Tick is the timing wheel's resolution (default DefaultWheelTick).
	Tick time.Duration
	// Now returns monotonic nanoseconds; nil uses the process's monotonic clock. Tests inject a
	// fake clock here. It must be safe for concurrent use: Loop.Now may be called from any
	// goroutine.
	Now func() int64
	// AcceptBackoff is how long the listener pauses after EMFILE/ENFILE/ENOBUFS/ENOMEM
	// (default 100 ms).
	AcceptBackoff time.Duration
	Logger        *slog.Logger
}

// LoopStats are a loop's counters: atomics written by the loop goroutine, read by any goroutine.
//
// Busy time is measured with the loop's own clock (LoopConfig.Now): a pass is busy from the
// return of epoll_wait to the end of Handler.OnPass, and idle while it waits in epoll_wait.
// Measuring costs two clock reads per pass, one of which also serves the next pass's epoll_wait
// timeout, and a few uncontended atomic adds: no allocation, no lock.
type LoopStats struct {
	Accepted     atomic.Uint64
	AcceptErrors atomic.Uint64 // errors other than EAGAIN
	AcceptPauses atomic.Uint64 // listener paused for lack of descriptors or memory
	Passes       atomic.Uint64
	Wakeups      atomic.Uint64 // eventfd wake-ups consumed
	Tasks        atomic.Uint64
	TaskYields   atomic.Uint64 // passes through the Go scheduler asked for by tasks (YieldAfterTasks)
	StaleEvents  atomic.Uint64 // events dropped because their generation was outdated
	Events       atomic.Uint64 // readiness events handled: epoll's batch plus requeued reads
	BusyNanos    atomic.Uint64 // time spent in passes, not waiting in epoll_wait (loop clock, ns)
	// PassBuckets count the passes that did work (an event, a task or a timer) by duration:
	// PassBuckets[i] counts those that took at most PassBounds[i] (not cumulative), the last one
	// those slower than every bound. PassNanos is their total duration.
	PassBuckets [len(PassBounds) + 1]atomic.Uint64
	PassNanos   atomic.Uint64

	// The busy fraction of the last completed window (see BusyRatio): windowEnd is its end
	// (loop clock), windowBusy the BusyNanos at that end, ratio its fraction in millionths.
	windowEnd  atomic.Int64
	windowBusy atomic.Uint64
	ratio      atomic.Uint64
}

// PassBounds are the upper bounds of the pass duration buckets (LoopStats.PassBuckets), the
// le labels of wsgate_loop_pass_seconds: 10 µs to 1 s.
var PassBounds = [...]time.Duration{
	10 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond,
	500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, time.Second,
}

// busyWindow is the span over which a loop computes its busy fraction.
const busyWindow = int64(time.Second)

// passBucket returns the index in PassBuckets for a pass of d ns.
func passBucket(d int64) int {
	for i, b := range PassBounds {
		if d <= int64(b) {
			return i
		}
	}
	return len(PassBounds)
}

// BusyRatio returns the fraction of time (0 to 1) the loop spent in passes rather than waiting
// for events: over the last full second the loop completed, or, when the loop has been asleep in
// epoll_wait longer than that, since the end of that second up to now. Any goroutine.
func (l *Loop) BusyRatio() float64 {
	st := &l.Stats
	end := st.windowEnd.Load()
	now := l.now()
	if now-end > 2*busyWindow {
		// The loop has not closed a window for a while: it sleeps in epoll_wait. What it did
		// since the last window is all the busy time there is.
		busy := st.BusyNanos.Load() - st.windowBusy.Load()
		return min(1, float64(busy)/float64(now-end))
	}
	return float64(st.ratio.Load()) / 1e6
}

// Loop is one event loop. Create it with NewLoop and run it with Run on a goroutine of its own.
//
// Ownership. Each field says who may touch it. "Loop goroutine only" means the goroutine in Run,
// or before Run starts (or after it returned) the one goroutine that owns the Loop, as in tests
// that drive a Loop by hand: those fields take no lock.
type Loop struct {
	// Immutable after NewLoop: any goroutine may read them.
	cfg   LoopConfig
	epfd  int          // closed when Run returns
	now   func() int64 // safe for concurrent use (LoopConfig.Now)
	wheel *Wheel       // the pointer only: the Wheel is loop goroutine only, except Wheel.Stats
	log   *slog.Logger
	done  chan struct{} // closed when Run returns

	// Any goroutine: Post's queue (mutex and atomic inside, see taskQueue), the stop flag, and
	// the counters (atomics written by the loop goroutine).
	tq      taskQueue
	stopped atomic.Bool
	Stats   LoopStats

	// Loop goroutine only.
	h            Handler           // set by Run
	lfd          int               // the listening socket; -1: none or closed (CloseListener)
	events       []unix.EpollEvent // epoll_wait's array, maxEvents long
	iov          []unix.Iovec      // Writev's iovec array, cap IOVMax
	again        []unix.EpollEvent // requeued reads for the next pass
	againSpare   []unix.EpollEvent // again's other buffer
	gens         []uint32          // current generation per fd; 0 = not registered
	genSeq       uint32            // last generation handed out
	listenPaused bool              // the listener is out of the epoll set (accept backoff)
	listenOff    bool              // StopAccepting: the listener is out of the epoll set for good
	listenTimer  Timer             // ends the accept backoff
	lastLog      int64             // when the last accept error was logged
	suppressed   int               // accept errors not logged since
	wakeAt       int64             // a handler asked to run a pass by then (WakeAt); 0: no request
	lastEnd      int64             // loop clock at the end of the previous pass (0: none yet)
	busy         int64             // BusyNanos, loop goroutine's copy
	winStart     int64             // start of the busy-ratio window being measured
	winBusy      int64             // busy at winStart
	lastYield    int64             // loop clock when the loop last went through the Go scheduler
	yieldAsked   bool              // a task called YieldAfterTasks during this pass
	yield        func()            // runtime.Gosched; tests count the calls
}

// yieldEvery bounds how long a loop goes without passing through the Go scheduler. A goroutine
// that the scheduler has not seen for 10 ms (the runtime's forcePreemptNS) is treated by sysmon
// as running too long: sysmon then takes its P whenever it finds it in a system call (the
// blocking epoll_wait), hands the P to another thread, and keeps polling every 20 µs, so every
// pass ends with thread hand-offs, futex wake-ups and preemption signals. A loop that yields
// before blocking at least this often keeps its P across epoll_wait while other Ps are idle.
const yieldEvery = 5 * time.Millisecond

// YieldAfterTasks asks the loop to pass through the Go scheduler once the tasks of this pass
// have run, before its timers and the handler's flush. A task calls it when it has just released
// a goroutine that waits for it (an HTTP publish waiting for its fan-out to be queued): that
// goroutine was readied on this loop's P, and with every other CPU busy (or the process pinned to
// one) it would otherwise wait for the whole flush, milliseconds for a fan-out to a thousand
// sockets, before it can answer. The pass through the scheduler costs a P hand-off and back (tens
// of µs), once per pass however many tasks ask. Loop goroutine only (from a task or a handler
// callback).
func (l *Loop) YieldAfterTasks() { l.yieldAsked = true }

// NewLoop creates the epoll instance and eventfd. The caller must Run the loop (which frees
// them when it returns) or call Stop and Run.
func NewLoop(cfg LoopConfig) (*Loop, error) {
	if cfg.Tick <= 0 {
		cfg.Tick = DefaultWheelTick
	}
	if cfg.AcceptBackoff <= 0 {
		cfg.AcceptBackoff = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	l := &Loop{cfg: cfg, lfd: cfg.ListenFD, log: cfg.Logger.With("loop", cfg.Index), done: make(chan struct{}),
		yield: runtime.Gosched, gens: make([]uint32, TableSize())}
	if cfg.Now != nil {
		l.now = cfg.Now
	} else {
		base := time.Now()
		l.now = func() int64 { return int64(time.Since(base)) }
	}
	var err error
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if l.tq.efd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		unix.Close(l.epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	// The eventfd and the listener use the generation-less data word Fd=fd, Pad=0; connection
	// generations start at 1, so they can never be mistaken for each other.
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(l.tq.efd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.tq.efd, &ev); err != nil {
		l.closeFDs()
		return nil, fmt.Errorf("epoll_ctl eventfd: %w", err)
	}
	if l.lfd >= 0 {
		if err := l.addListener(); err != nil {
			l.closeFDs()
			return nil, fmt.Errorf("epoll_ctl listener: %w", err)
		}
	}
	l.events = make([]unix.EpollEvent, maxEvents)
	l.iov = make([]unix.Iovec, 0, IOVMax)
	l.wheel = NewWheel(cfg.Tick, l.now())
	l.listenTimer.Init(func(_ *Timer, now int64) { l.resumeListener(now) }) // one closure per loop
	return l, nil
}

func (l *Loop) addListener() error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(l.lfd)}
	return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.lfd, &ev)
}

func (l *Loop) closeFDs() {
	unix.Close(l.tq.efd)
	unix.Close(l.epfd)
}

// Index returns the loop's number. Any goroutine.
func (l *Loop) Index() int { return l.cfg.Index }

// Now returns the loop's clock in nanoseconds. Any goroutine (the clock is read-only).
func (l *Loop) Now() int64 { return l.now() }

// Wheel returns the loop's timing wheel. Loop goroutine only: the wheel's timers are the loop's
// (other goroutines read its counters with WheelStats).
func (l *Loop) Wheel() *Wheel { return l.wheel }

// WheelStats returns the timing wheel's counters as of the end of its last Advance: atomics the
// loop goroutine publishes, so any goroutine may call it (a metrics scrape does).
func (l *Loop) WheelStats() WheelStats { return l.wheel.Stats() }

// Logger returns the loop's logger. Any goroutine.
func (l *Loop) Logger() *slog.Logger { return l.log }

// WakeAt asks for a pass to run no later than t (loop clock, ns) even if no event arrives; a
// handler that still needs the wake-up after that pass asks again. Loop goroutine only.
func (l *Loop) WakeAt(t int64) {
	if l.wakeAt == 0 || t < l.wakeAt {
		l.wakeAt = t
	}
}

// Stop asks the loop to return from Run after its current pass, running the tasks posted before
// Stop. Any goroutine; idempotent.
func (l *Loop) Stop() {
	l.tq.mu.Lock()
	l.stopped.Store(true)
	l.tq.mu.Unlock()
	l.tq.wake()
}

// Done is closed when Run has returned. Any goroutine.
func (l *Loop) Done() <-chan struct{} { return l.done }

// CloseListener stops accepting on this loop and closes its descriptor of the listening socket;
// connections already accepted are untouched. The socket itself is closed only if no other
// descriptor refers to it: a process that inherited it (DupListener) goes on accepting from the
// same queue. Loop goroutine only (post it from elsewhere).
func (l *Loop) CloseListener() {
	if l.lfd < 0 {
		return
	}
	l.StopAccepting()
	unix.Close(l.lfd)
	l.lfd = -1
}

// StopAccepting takes the listener out of the loop's epoll set without closing it: the loop no
// longer accepts, and connections waiting in the socket's queue stay there for whoever else
// holds the socket (a new process that inherited it, see DupListener). The removal is explicit
// because close(2) would not do it while another descriptor of the same socket exists (epoll(7),
// "Will closing a file descriptor cause it to be removed from all epoll interest lists?"), and
// the level-triggered listener would then wake this loop for connections it cannot take.
// Idempotent; CloseListener releases the descriptor later. Loop goroutine only (post it).
func (l *Loop) StopAccepting() {
	if l.lfd < 0 || l.listenOff {
		return
	}
	l.wheel.Stop(&l.listenTimer)
	if !l.listenPaused {
		ev := unix.EpollEvent{}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, l.lfd, &ev); err != nil {
			l.log.Error("stop accepting", "err", err)
		}
	}
	l.listenPaused = false
	l.listenOff = true
}

// DupListener returns a new descriptor of the loop's listening socket (dup(2) with close-on-exec
// set), for handing the socket to another process; the caller owns and closes it. It fails when
// the loop has no listener. Loop goroutine only (post it), since the listener is closed there.
func (l *Loop) DupListener() (int, error) {
	if l.lfd < 0 {
		return -1, errors.New("the loop has no listener")
	}
	fd, err := unix.FcntlInt(uintptr(l.lfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("dup listener: %w", err)
	}
	return fd, nil
}

// Run runs the loop on the calling goroutine until Stop. It locks the goroutine to its thread
// and, when LoopConfig.Pin is set and the loop was not stopped before, pins that thread. A pinned
// thread is never handed back to the Go scheduler (it would run other goroutines on that one CPU
// for the rest of the process): Run returns with the goroutine still locked, so the caller must
// run a pinned loop on a goroutine of its own, which the runtime ends together with the thread
// when it exits (runtime.LockOSThread).
func (l *Loop) Run(h Handler) error {
	runtime.LockOSThread()
	pinned := false
	defer func() {
		if !pinned {
			runtime.UnlockOSThread()
		}
	}()
	defer close(l.done)
	defer l.closeFDs()
	defer l.CloseListener()
	l.h = h
	if l.cfg.Pin && !l.stopped.Load() {
		var set unix.CPUSet
		set.Set(l.cfg.CPU)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("loop %d: pin to CPU %d: %w", l.cfg.Index, l.cfg.CPU, err)
		}
		pinned = true
	}
	for !l.stopped.Load() {
		if err := l.pass(); err != nil {
			return err
		}
	}
	l.tq.run()
	return nil
}

// pass is one iteration: wait, dispatch events, run tasks (then yield if one asked to,
// YieldAfterTasks), fire timers, let the handler flush.
func (l *Loop) pass() error {
	timeout := -1
	if len(l.again) > 0 {
		timeout = 0
	} else {
		// The end of the previous pass is now: nothing ran since.
		now := l.lastEnd
		if now == 0 {
			now = l.now()
		}
		d, ok := l.wheel.Next(now)
		if l.wakeAt != 0 && (!ok || time.Duration(l.wakeAt-now) < d) {
			d, ok = max(0, time.Duration(l.wakeAt-now)), true
		}
		if ok {
			// Round up so that a deadline is never woken for early and then waited for again.
			timeout = int((d + time.Millisecond - 1) / time.Millisecond)
		}
	}
	l.wakeAt = 0
	if timeout != 0 {
		// About to block: the moment to let the scheduler see this goroutine (yieldEvery).
		if now := l.now(); now-l.lastYield >= int64(yieldEvery) {
			l.lastYield = now
			l.yield()
		}
	}
	n, err := unix.EpollWait(l.epfd, l.events, timeout)
	if err != nil && !errors.Is(err, unix.EINTR) {
		return fmt.Errorf("loop %d: epoll_wait: %w", l.cfg.Index, err)
	}
	start := l.now()
	l.Stats.Passes.Add(1)
	work := n > 0
	events := n
	// Requeued reads first: they were waiting since the previous pass.
	if len(l.again) > 0 {
		work = true
		// Swap buffers: reads requeued while handling these wait for the next pass.
		again := l.again
		l.again = l.againSpare[:0]
		events += len(again)
		for i := range again {
			if l.valid(&again[i]) {
				l.h.OnEvent(int(again[i].Fd), EventRead)
			}
		}
		l.againSpare = again[:0]
	}
	for i := 0; i < n; i++ {
		ev := &l.events[i]
		fd := int(ev.Fd)
		switch {
		case ev.Pad == 0 && fd == l.tq.efd:
			l.Stats.Wakeups.Add(1)
			l.tq.consumeWake()
		case ev.Pad == 0 && fd == l.lfd:
			if !l.listenOff { // a readiness reported before StopAccepting, earlier in this batch
				l.accept()
			}
		case l.valid(ev):
			l.h.OnEvent(fd, ev.Events)
		default:
			l.Stats.StaleEvents.Add(1)
		}
	}
	if k := l.tq.run(); k > 0 {
		work = true
		l.Stats.Tasks.Add(uint64(k))
	}
	if l.yieldAsked {
		l.yieldAsked = false
		l.lastYield = l.now()
		l.Stats.TaskYields.Add(1)
		l.yield()
	}
	now := l.now()
	if l.wheel.Advance(now) > 0 {
		work = true
	}
	l.h.OnPass(now)
	end := l.now()
	l.account(start, end, events, work)
	return nil
}

// account records a pass that ran from start to end (loop clock) and handled events readiness
// events; work says whether it did anything (an event, a task or a timer). Loop goroutine only.
func (l *Loop) account(start, end int64, events int, work bool) {
	st := &l.Stats
	d := max(0, end-start)
	l.lastEnd = end
	l.busy += d
	st.BusyNanos.Store(uint64(l.busy))
	if events > 0 {
		st.Events.Add(uint64(events))
	}
	if work {
		st.PassBuckets[passBucket(d)].Add(1)
		st.PassNanos.Add(uint64(d))
	}
	if l.winStart == 0 {
		l.winStart, l.winBusy = start, l.busy-d
	}
	if span := end - l.winStart; span >= busyWindow {
		st.ratio.Store(uint64(min(1e6, (l.busy-l.winBusy)*1e6/span)))
		st.windowBusy.Store(uint64(l.busy))
		st.windowEnd.Store(end)
		l.winStart, l.winBusy = end, l.busy
	}
}

// accept takes up to acceptBatch pending connections from the loop's listener.
func (l *Loop) accept() {
	for i := 0; i < acceptBatch && l.lfd >= 0; i++ {
		fd, err := accept4(l.lfd)
		if err == nil {
			l.Stats.Accepted.Add(1)
			l.h.OnAccept(fd)
			continue
		}
		switch err {
		case unix.EAGAIN:
			return
		case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
			// The pending connection stays in the backlog; waiting for the readiness again would
			// spin at 100% CPU, so stop listening for a moment.
			l.Stats.AcceptErrors.Add(1)
			l.Stats.AcceptPauses.Add(1)
			l.logAcceptError(err, true)
			l.pauseListener()
			return
		default:
			// ECONNABORTED, EPERM (firewall), EPROTO...: that one connection is gone; go on.
			l.Stats.AcceptErrors.Add(1)
			l.logAcceptError(err, false)
		}
	}
}

func (l *Loop) pauseListener() {
	if l.listenPaused || l.lfd < 0 || l.listenOff {
		return
	}
	ev := unix.EpollEvent{}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, l.lfd, &ev); err != nil {
		l.log.Error("pause listener", "err", err)
		return
	}
	l.listenPaused = true
	l.wheel.Schedule(&l.listenTimer, l.now()+int64(l.cfg.AcceptBackoff))
}

func (l *Loop) resumeListener(int64) {
	if !l.listenPaused || l.lfd < 0 || l.listenOff {
		return
	}
	l.listenPaused = false
	if err := l.addListener(); err != nil {
		l.log.Error("resume listener", "err", err)
	}
}

// logAcceptError logs at most one line per second; the count of the lines it held back goes with
// the next one.
func (l *Loop) logAcceptError(err error, paused bool) {
	now := l.now()
	if l.lastLog != 0 && now-l.lastLog < int64(time.Second) {
		l.suppressed++
		return
	}
	l.lastLog = now
	if paused {
		l.log.Warn("accept failed: out of descriptors or memory; pausing the listener",
			"err", err, "backoff", l.cfg.AcceptBackoff, "suppressed", l.suppressed)
	} else {
		l.log.Warn("accept failed", "err", err, "suppressed", l.suppressed)
	}
	l.suppressed = 0
}
