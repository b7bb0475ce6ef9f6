package netpoll

import (
	"math"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// clockHandler is a Handler whose events and passes move a fake clock forward by set amounts:
// the test knows exactly how long each pass "took".
type clockHandler struct {
	l       *Loop
	clk     *atomic.Int64
	onEvent time.Duration // each OnEvent takes this long
	buf     [64]byte
}

func (h *clockHandler) OnAccept(fd int) { h.l.Close(fd) }
func (h *clockHandler) OnEvent(fd int, _ uint32) {
	for {
		if n, err := Read(fd, h.buf[:]); n <= 0 || err != nil {
			break
		}
	}
	h.clk.Add(int64(h.onEvent))
}
func (h *clockHandler) OnPass(int64) {}

// healthLoop is a loop driven by hand (the test goroutine is its goroutine) on a fake clock,
// with one socket registered whose peer the test writes to.
func healthLoop(t testing.TB) (l *Loop, h *clockHandler, peer int) {
	t.Helper()
	clk := new(atomic.Int64)
	clk.Store(int64(time.Second))
	l, err := NewLoop(LoopConfig{ListenFD: -1, Now: clk.Load})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Stop(); l.Run(nil) })
	a, b := socketpair(t)
	if err := l.Register(a); err != nil {
		t.Fatal(err)
	}
	h = &clockHandler{l: l, clk: clk}
	l.h = h
	return l, h, b
}

// TestLoopHealthStats: events, busy time, the pass duration buckets and the busy fraction follow
// what the passes did, measured on the loop's clock.
func TestLoopHealthStats(t *testing.T) {
	l, h, peer := healthLoop(t)
	clk := h.clk
	st := &l.Stats

	// Pass 1: one readiness event that takes 3 ms.
	h.onEvent = 3 * time.Millisecond
	unix.Write(peer, []byte("x"))
	if err := l.pass(); err != nil {
		t.Fatal(err)
	}
	if st.Passes.Load() != 1 || st.Events.Load() != 1 || st.BusyNanos.Load() != uint64(3*time.Millisecond) {
		t.Fatalf("after one 3 ms pass: passes %d events %d busy %d", st.Passes.Load(), st.Events.Load(), st.BusyNanos.Load())
	}
	// 997 ms idle, then a pass running two tasks that take 500 ms together.
	clk.Add(int64(997 * time.Millisecond))
	l.Post(func() { clk.Add(int64(200 * time.Millisecond)) })
	l.Post(func() { clk.Add(int64(300 * time.Millisecond)) })
	if err := l.pass(); err != nil {
		t.Fatal(err)
	}
	if st.Tasks.Load() != 2 || st.BusyNanos.Load() != uint64(503*time.Millisecond) || st.PassNanos.Load() != uint64(503*time.Millisecond) {
		t.Fatalf("after the task pass: tasks %d busy %d pass ns %d", st.Tasks.Load(), st.BusyNanos.Load(), st.PassNanos.Load())
	}
	// 3 ms lands in the 5 ms bucket, 500 ms in the 1 s one; the wake-up event is an event too.
	want := map[time.Duration]uint64{5 * time.Millisecond: 1, time.Second: 1}
	for i, b := range PassBounds {
		if got := st.PassBuckets[i].Load(); got != want[b] {
			t.Errorf("bucket le=%v: %d passes, want %d", b, got, want[b])
		}
	}
	if got := st.PassBuckets[len(PassBounds)].Load(); got != 0 {
		t.Errorf("+Inf bucket: %d", got)
	}
	if st.Events.Load() != 2 {
		t.Errorf("events %d, want 2 (the socket, then the eventfd)", st.Events.Load())
	}
	// The window from 1 s to 2.5 s is closed: 503 ms busy of 1500.
	if r := l.BusyRatio(); math.Abs(r-503.0/1500) > 1e-6 {
		t.Errorf("busy ratio %v, want %v", r, 503.0/1500)
	}
	// A loop asleep in epoll_wait for long: nothing busy since the window, so 0.
	clk.Add(int64(10 * time.Second))
	if r := l.BusyRatio(); r != 0 {
		t.Errorf("busy ratio after 10 s asleep: %v, want 0", r)
	}
	if n := l.PendingTasks(); n != 0 {
		t.Errorf("pending tasks %d", n)
	}
	l.Post(func() {})
	if n := l.PendingTasks(); n != 1 {
		t.Errorf("pending tasks %d after a Post, want 1", n)
	}
}

// TestPassBucket: a duration goes to the first bucket whose bound it does not exceed.
func TestPassBucket(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want int
	}{{0, 0}, {10 * time.Microsecond, 0}, {10*time.Microsecond + 1, 1}, {time.Second, len(PassBounds) - 1}, {time.Hour, len(PassBounds)}} {
		if got := passBucket(int64(c.d)); got != c.want {
			t.Errorf("passBucket(%v) = %d, want %d", c.d, got, c.want)
		}
	}
}
