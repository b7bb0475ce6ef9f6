package netpoll

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// checkWheel verifies the invariants I1-I4 documented at the top of wheel.go,
// the list links and the timer count.
func checkWheel(tb testing.TB, w *Wheel) {
	tb.Helper()
	n := 0
	walk := func(name string, head **Timer, ok func(t *Timer) bool) {
		pp := head
		for t := *head; t != nil; t = t.next {
			if t.pprev != pp {
				tb.Fatalf("%s: broken pprev link", name)
			}
			if !ok(t) {
				tb.Fatalf("%s: timer tick %d misplaced (cur %d)", name, t.tick, w.cur)
			}
			pp = &t.next
			n++
			if n > 1<<22 {
				tb.Fatalf("%s: list cycle", name)
			}
		}
	}
	for l := 0; l < wheelLevels; l++ {
		for s := 0; s < wheelSlots; s++ {
			walk("slot", &w.slots[l][s], func(t *Timer) bool {
				return t.tick > w.cur && w.level(t.tick) == l &&
					int(t.tick>>(uint(l)*wheelBits)&wheelMask) == s
			})
			if got, want := w.occupied[l]&(1<<s) != 0, w.slots[l][s] != nil; got != want {
				tb.Fatalf("occupied[%d] bit %d = %v, slot non-empty = %v", l, s, got, want)
			}
		}
	}
	walk("overflow", &w.overflow, func(t *Timer) bool {
		return t.tick > w.cur && w.level(t.tick) >= wheelLevels && t.tick >= w.overflowMin
	})
	if w.overflow != nil && w.overflowMin>>wheelSpan<<wheelSpan <= w.cur {
		tb.Fatalf("overflow event %d not after cur %d", w.overflowMin, w.cur)
	}
	past := func(t *Timer) bool { return t.tick <= w.cur }
	walk("due", &w.due, past)
	walk("firing", &w.firing, past)
	if n != w.n {
		tb.Fatalf("wheel holds %d timers, Len says %d", n, w.n)
	}
}

// where reports the list a timer is filed in: its level, wheelLevels for
// overflow, -1 for the due or firing list, -2 when not filed.
func wheelWhere(w *Wheel, t *Timer) int {
	for l := 0; l < wheelLevels; l++ {
		for s := 0; s < wheelSlots; s++ {
			for x := w.slots[l][s]; x != nil; x = x.next {
				if x == t {
					return l
				}
			}
		}
	}
	for x := w.overflow; x != nil; x = x.next {
		if x == t {
			return wheelLevels
		}
	}
	for _, h := range []*Timer{w.due, w.firing} {
		for x := h; x != nil; x = x.next {
			if x == t {
				return -1
			}
		}
	}
	return -2
}

// wheelFireLog records the calls of the timers it creates.
type wheelFireLog struct {
	ids  []int
	nows []int64
}

func (f *wheelFireLog) timer(id int) *Timer {
	t := new(Timer)
	t.Init(func(_ *Timer, now int64) {
		f.ids = append(f.ids, id)
		f.nows = append(f.nows, now)
	})
	return t
}

func TestWheelDefaultsAndSizes(t *testing.T) {
	w := NewWheel(0, 5)
	if w.Tick() != DefaultWheelTick {
		t.Fatalf("Tick() = %v, want %v", w.Tick(), DefaultWheelTick)
	}
	if w.Tick() != NewWheel(-time.Second, 0).Tick() {
		t.Fatal("negative tick not defaulted")
	}
	if sz := unsafe.Sizeof(Timer{}); sz > 40 {
		t.Fatalf("Timer is %d bytes, documented as 40", sz)
	}
	if sz := unsafe.Sizeof(Wheel{}); sz > 4096 {
		t.Fatalf("Wheel is %d bytes, documented as about 3.3 KiB", sz)
	}
	// Coverage at the default tick: at least 24 h, documented as 21.8 years.
	if span := time.Duration(uint64(1)<<wheelSpan) * DefaultWheelTick; span < 21*365*24*time.Hour {
		t.Fatalf("levels span %v", span)
	}
	if d, ok := w.Next(5); ok || d != 0 {
		t.Fatalf("Next on empty wheel = %v, %v", d, ok)
	}
	if w.Advance(1e12) != 0 || w.Len() != 0 {
		t.Fatal("empty wheel fired")
	}
}

func TestWheelFiringOrder(t *testing.T) {
	const tick = 10 * time.Millisecond
	origin := int64(1_000_000_007)
	rng := rand.New(rand.NewPCG(1, 2))
	var log wheelFireLog
	var timers []*Timer
	var ats []int64
	for i := range 500 {
		// From 1 ns to 2 h ahead: every level up to 3, many sharing ticks.
		at := origin + 1 + rng.Int64N(int64(2*time.Hour))
		if i%5 == 0 {
			at = origin + rng.Int64N(int64(time.Second))
		}
		timers = append(timers, log.timer(i))
		ats = append(ats, at)
	}
	for _, single := range []bool{false, true} {
		log = wheelFireLog{}
		w := NewWheel(tick, origin)
		for i, tm := range timers {
			w.Schedule(tm, ats[i])
		}
		checkWheel(t, w)
		end := origin + int64(2*time.Hour+tick)
		if single {
			if n := w.Advance(end); n != len(timers) {
				t.Fatalf("one Advance fired %d of %d", n, len(timers))
			}
		} else {
			for i, now := 0, origin; now <= end; i, now = i+1, now+int64(tick) {
				w.Advance(now)
				if i%4096 == 0 {
					checkWheel(t, w)
				}
			}
			checkWheel(t, w)
		}
		if len(log.ids) != len(timers) {
			t.Fatalf("single=%v: fired %d of %d", single, len(log.ids), len(timers))
		}
		ceil := func(at int64) int64 { return (at - origin + int64(tick) - 1) / int64(tick) }
		for i := 1; i < len(log.ids); i++ {
			if ceil(ats[log.ids[i-1]]) > ceil(ats[log.ids[i]]) {
				t.Fatalf("single=%v: fired tick %d after tick %d", single, ceil(ats[log.ids[i]]), ceil(ats[log.ids[i-1]]))
			}
		}
		for i, id := range log.ids {
			at, now := ats[id], log.nows[i]
			if now < at {
				t.Fatalf("timer %d fired at %d, before %d", id, now, at)
			}
			if !single && now-at >= int64(tick) {
				t.Fatalf("timer %d fired %v late with on-time Advance", id, time.Duration(now-at))
			}
		}
		if w.Len() != 0 {
			t.Fatalf("Len = %d after all fired", w.Len())
		}
	}
}

func TestWheelNeverEarlyWithinTick(t *testing.T) {
	// at falls inside a tick: the timer belongs to the next tick instant.
	w := NewWheel(100, 0)
	var log wheelFireLog
	tm := log.timer(1)
	w.Schedule(tm, 250)
	if tm.When() != 250 || !tm.Active() || w.Len() != 1 {
		t.Fatal("When/Active/Len after Schedule")
	}
	if d, ok := w.Next(0); !ok || d != 300 {
		t.Fatalf("Next = %v, %v; want 300ns", d, ok)
	}
	for _, now := range []int64{200, 249, 250, 299} {
		if w.Advance(now) != 0 {
			t.Fatalf("fired at %d, tick instant is 300", now)
		}
	}
	if d, _ := w.Next(299); d != 1 {
		t.Fatalf("Next(299) = %v", d)
	}
	if w.Advance(300) != 1 || tm.Active() || tm.When() != 250 {
		t.Fatal("did not fire at the tick instant")
	}
	// Exactly on a tick instant.
	w.Schedule(tm, 400)
	if w.Advance(399) != 0 || w.Advance(400) != 1 {
		t.Fatal("timer on a tick instant")
	}
}

func TestWheelStop(t *testing.T) {
	w := NewWheel(time.Millisecond, 0)
	var log wheelFireLog
	a, b, c := log.timer(1), log.timer(2), log.timer(3)
	if w.Stop(a) {
		t.Fatal("Stop of a never-scheduled timer returned true")
	}
	w.Schedule(a, int64(5*time.Millisecond))
	w.Schedule(b, int64(5*time.Millisecond))
	w.Schedule(c, int64(50*time.Hour)) // level 4
	if !w.Stop(a) || w.Stop(a) || a.Active() {
		t.Fatal("Stop is not idempotent")
	}
	if !w.Stop(c) || w.Len() != 1 {
		t.Fatal("Stop of a high-level timer")
	}
	checkWheel(t, w)
	if d, ok := w.Next(0); !ok || d != 5*time.Millisecond {
		t.Fatalf("Next after Stop = %v, %v", d, ok)
	}
	if w.Advance(int64(100*time.Hour)) != 1 || !slices.Equal(log.ids, []int{2}) {
		t.Fatalf("fired %v, want [2]", log.ids)
	}
	if w.Stop(b) {
		t.Fatal("Stop of a fired timer returned true")
	}
	// Stop of a past-due timer in the due list.
	w.Schedule(a, 0)
	if !w.Stop(a) || w.Advance(int64(101*time.Hour)) != 0 {
		t.Fatal("stopped past-due timer fired")
	}
	// Stop of an overflow timer empties overflow and resets overflowMin.
	w.Schedule(c, math.MaxInt64)
	if wheelWhere(w, c) != wheelLevels {
		t.Fatal("MaxInt64 timer not in overflow")
	}
	if !w.Stop(c) || w.overflowMin != noTick {
		t.Fatal("overflow Stop")
	}
	if _, ok := w.Next(0); ok || w.Len() != 0 {
		t.Fatal("wheel not empty")
	}
	checkWheel(t, w)
}

func TestWheelReschedule(t *testing.T) {
	w := NewWheel(time.Millisecond, 0)
	var log wheelFireLog
	a := log.timer(1)
	ms := int64(time.Millisecond)
	w.Schedule(a, 10*ms)
	w.Schedule(a, 3000*ms) // later, other level
	if w.Len() != 1 || a.When() != 3000*ms {
		t.Fatal("reschedule later")
	}
	checkWheel(t, w)
	if w.Advance(2999*ms) != 0 {
		t.Fatal("fired at the old time")
	}
	w.Schedule(a, 2500*ms) // now in the past: fires on the next Advance
	if d, ok := w.Next(2999 * ms); !ok || d != 0 {
		t.Fatalf("Next with past-due timer = %v, %v", d, ok)
	}
	if w.Advance(2999*ms) != 1 {
		t.Fatal("past-due timer did not fire on the next Advance")
	}
	w.Schedule(a, 4000*ms)
	w.Schedule(a, 3001*ms) // earlier
	if w.Advance(3001*ms) != 1 || w.Advance(5000*ms) != 0 || len(log.ids) != 2 {
		t.Fatalf("reschedule earlier: fired %v", log.ids)
	}
	checkWheel(t, w)
}

// TestWheelCascadeEveryLevelPair files a timer on each level (and in overflow)
// and checks that its first cascade lands on each lower level, that it never
// fires early and fires exactly at its tick, with step-by-step and single-jump
// Advance calls.
func TestWheelCascadeEveryLevelPair(t *testing.T) {
	pow := func(l int) int64 { return int64(1) << (uint(l) * wheelBits) }
	for from := 1; from <= wheelLevels; from++ {
		for to := 0; to < from; to++ {
			start := pow(from)     // tick at which the `from` list is cascaded
			k := start + 3*pow(to) // after that cascade: digit `to` = 3
			if to > 0 {
				k += 5 // and one more cascade, to level 0
			}
			for _, jump := range []bool{false, true} {
				w := NewWheel(1, 0) // 1 ns ticks: tick k is instant k
				var log wheelFireLog
				tm := log.timer(0)
				w.Schedule(tm, k)
				if got := wheelWhere(w, tm); got != from {
					t.Fatalf("from %d to %d: filed on %d", from, to, got)
				}
				if d, _ := w.Next(0); d > time.Duration(start) {
					t.Fatalf("from %d: Next %v later than the cascade at %d", from, d, start)
				}
				if !jump {
					w.Advance(start - 1)
					if got := wheelWhere(w, tm); got != from {
						t.Fatalf("from %d to %d: moved to %d before its cascade", from, to, got)
					}
					w.Advance(start)
					if got := wheelWhere(w, tm); got != to {
						t.Fatalf("from %d to %d: cascaded to %d", from, to, got)
					}
					checkWheel(t, w)
				}
				if w.Advance(k-1) != 0 {
					t.Fatalf("from %d to %d: fired early", from, to)
				}
				checkWheel(t, w)
				if got := wheelWhere(w, tm); got != 0 {
					t.Fatalf("from %d to %d: one tick before expiry on level %d", from, to, got)
				}
				if d, ok := w.Next(k - 1); !ok || d != 1 {
					t.Fatalf("from %d to %d: Next one tick before = %v", from, to, d)
				}
				if w.Advance(k) != 1 || !slices.Equal(log.nows, []int64{k}) {
					t.Fatalf("from %d to %d: fired %v, want at %d", from, to, log.nows, k)
				}
				if _, ok := w.Next(k); ok || w.Len() != 0 {
					t.Fatal("wheel not empty")
				}
			}
		}
	}
}

// TestWheelFarFuture uses the default tick and timers from a day to centuries
// away, beyond the levels' 21.8 years, following Next as an event loop does.
func TestWheelFarFuture(t *testing.T) {
	origin := int64(123_456_789_012)
	w := NewWheel(0, origin)
	day := int64(24 * time.Hour)
	year := 365 * day
	cases := []struct {
		after int64
		level int
	}{
		{25 * int64(time.Second), 1},
		{day + 3_333_333, 3},
		{25*int64(time.Hour) + 1, 3},
		{30 * day, 4},
		{year, 5},
		{21 * year, 5},
		{25 * year, wheelLevels},
		{200*year + 7, wheelLevels},
		{290 * year, wheelLevels},
	}
	var log wheelFireLog
	var ats []int64
	for i, c := range cases {
		tm := log.timer(i)
		ats = append(ats, origin+c.after)
		w.Schedule(tm, origin+c.after)
		if got := wheelWhere(w, tm); got != c.level {
			t.Fatalf("timer %v ahead filed on %d, want %d", time.Duration(c.after), got, c.level)
		}
	}
	never := log.timer(-1)
	w.Schedule(never, math.MaxInt64)
	checkWheel(t, w)

	now, wakeups := origin, 0
	for w.Len() > 1 {
		d, ok := w.Next(now)
		if !ok || d <= 0 {
			t.Fatalf("Next = %v, %v with %d timers", d, ok, w.Len())
		}
		now += int64(d)
		w.Advance(now)
		checkWheel(t, w)
		if wakeups++; wakeups > len(cases)*(wheelLevels+2) {
			t.Fatalf("%d wake-ups for %d timers", wakeups, len(cases))
		}
	}
	if len(log.ids) != len(cases) {
		t.Fatalf("fired %d of %d", len(log.ids), len(cases))
	}
	for i, id := range log.ids {
		if id != i {
			t.Fatalf("order %v", log.ids)
		}
		if late := log.nows[i] - ats[id]; late < 0 || late >= int64(DefaultWheelTick) {
			t.Fatalf("timer %d fired %v after its time", id, time.Duration(late))
		}
	}
	// The MaxInt64 timer's tick instant is beyond the clock: it never fires.
	if w.Advance(math.MaxInt64) != 0 || !never.Active() {
		t.Fatal("MaxInt64 timer fired")
	}
	if d, ok := w.Next(math.MaxInt64); !ok || d != 0 {
		t.Fatalf("Next = %v, %v", d, ok)
	}
	if !w.Stop(never) || w.Len() != 0 {
		t.Fatal("Stop")
	}
}

func TestWheelNegativeClock(t *testing.T) {
	// Monotonic clocks are positive, but the wheel must not care.
	w := NewWheel(1000, math.MinInt64+10)
	var log wheelFireLog
	a, b := log.timer(1), log.timer(2)
	w.Schedule(a, math.MinInt64) // before the origin: past
	w.Schedule(b, -1)            // far after the origin
	if w.Advance(math.MinInt64+10) != 1 || a.Active() {
		t.Fatal("past timer")
	}
	if d, ok := w.Next(math.MinInt64 + 10); !ok || d <= 0 {
		t.Fatalf("Next = %v, %v", d, ok)
	}
	// at-origin = 2^63-11; its tick is ceil((2^63-11)/1000) and that tick's
	// instant is origin + 9223372036854776000 = 202.
	if w.Advance(-1001) != 0 || w.Advance(-1) != 0 || w.Advance(201) != 0 || w.Advance(202) != 1 {
		t.Fatal("timer at -1 must fire at the tick instant 202")
	}
	if log.nows[1] < -1 {
		t.Fatal("fired early")
	}
	checkWheel(t, w)
}

func TestWheelRescheduleFromFn(t *testing.T) {
	const period = 25 * time.Second
	w := NewWheel(0, 0)
	var tm Timer
	var nows []int64
	tm.Init(func(_ *Timer, now int64) {
		if tm.Active() {
			t.Error("timer active inside its own fn")
		}
		nows = append(nows, now)
		w.Schedule(&tm, tm.When()+int64(period)) // a fixed-rate period
		if !tm.Active() {
			t.Error("re-armed timer not active")
		}
	})
	w.Schedule(&tm, int64(period))
	// One Advance far ahead: the re-armed timer is honoured in the same
	// Advance, every period, in order.
	if n := w.Advance(int64(10*period) + 1); n != 10 {
		t.Fatalf("fired %d times in one Advance, want 10", n)
	}
	for i, now := range nows {
		if now != int64(10*period)+1 {
			t.Fatalf("fn %d got now=%d, want the Advance argument", i, now)
		}
	}
	if tm.When() != int64(11*period) {
		t.Fatalf("When = %d", tm.When())
	}
	checkWheel(t, w)
	w.Stop(&tm)

	// Re-armed from fn for its own, already due, time: fires once per
	// Advance, never loops inside one.
	var spin Timer
	count := 0
	spin.Init(func(*Timer, int64) {
		count++
		w.Schedule(&spin, spin.When())
	})
	w.Schedule(&spin, int64(11*period))
	base := int64(11 * period)
	for i := range 5 {
		if n := w.Advance(base + int64(i)); n != 1 {
			t.Fatalf("Advance %d fired %d", i, n)
		}
		if d, ok := w.Next(base + int64(i)); !ok || d != 0 {
			t.Fatalf("Next with a past-due re-armed timer = %v, %v", d, ok)
		}
	}
	if count != 5 {
		t.Fatalf("fired %d times", count)
	}
	w.Stop(&spin)
	checkWheel(t, w)
}

func TestWheelFnStopsAndSchedulesOthers(t *testing.T) {
	w := NewWheel(10, 0)
	var log wheelFireLog
	a, b, later, past := log.timer(1), log.timer(2), log.timer(3), log.timer(4)
	first := new(Timer)
	var order []string
	first.Init(func(_ *Timer, now int64) {
		order = append(order, "first")
		// Same tick, not fired yet: stopping it prevents the fire.
		if !w.Stop(a) || !w.Stop(b) {
			t.Error("Stop of same-tick timers")
		}
		w.Schedule(later, 95) // tick 10, <= tick of now (100): same Advance
		w.Schedule(past, 0)   // already due: next Advance
		w.Schedule(b, 500)    // beyond now: stays filed
	})
	w.Schedule(a, 50)
	w.Schedule(first, 50)
	w.Schedule(b, 50)
	// Whichever of a, first, b fires first; make first fire first by giving
	// it an earlier tick.
	w.Schedule(first, 40)
	if n := w.Advance(100); n != 2 {
		t.Fatalf("fired %d, want first and later", n)
	}
	if !slices.Equal(log.ids, []int{3}) || len(order) != 1 {
		t.Fatalf("fired %v %v", order, log.ids)
	}
	if !past.Active() || !b.Active() || a.Active() {
		t.Fatal("states after fn")
	}
	if w.Advance(100) != 1 || !slices.Equal(log.ids, []int{3, 4}) {
		t.Fatalf("past-due from fn: %v", log.ids)
	}
	if w.Advance(500) != 1 || w.Len() != 0 {
		t.Fatal("b")
	}
	checkWheel(t, w)
}

func TestWheelSameTickStopEachOther(t *testing.T) {
	w := NewWheel(10, 0)
	var x, y Timer
	fired := 0
	x.Init(func(*Timer, int64) { fired++; w.Stop(&y) })
	y.Init(func(*Timer, int64) { fired++; w.Stop(&x) })
	w.Schedule(&x, 31)
	w.Schedule(&y, 39)
	if n := w.Advance(40); n != 1 || fired != 1 || x.Active() || y.Active() || w.Len() != 0 {
		t.Fatalf("n=%d fired=%d", n, fired)
	}
}

func TestWheelMisuse(t *testing.T) {
	w := NewWheel(10, 0)
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Fatalf("%s did not panic", name)
			}
		}()
		f()
	}
	var bare Timer
	mustPanic("Schedule without Init", func() { w.Schedule(&bare, 5) })
	var tm Timer
	tm.Init(func(*Timer, int64) {})
	w.Schedule(&tm, 5)
	mustPanic("Init on active", func() { tm.Init(func(*Timer, int64) {}) })
	var re Timer
	re.Init(func(_ *Timer, now int64) { w.Advance(now) })
	w.Schedule(&re, 5)
	mustPanic("Advance from fn", func() { w.Advance(10) })
	// The wheel stays usable after a panicking fn.
	if w.advancing {
		t.Fatal("advancing left set")
	}
	checkWheel(t, w)
	w.Stop(&tm)
	w.Advance(20)
	checkWheel(t, w)
}

func TestWheelPanickingFnLeavesRestForNextAdvance(t *testing.T) {
	w := NewWheel(10, 0)
	var log wheelFireLog
	var boom Timer
	boom.Init(func(*Timer, int64) { panic("boom") })
	others := []*Timer{log.timer(1), log.timer(2), log.timer(3)}
	for _, o := range others {
		w.Schedule(o, 10)
	}
	w.Schedule(&boom, 10) // pushed last: first in the level-0 list
	func() {
		defer func() { _ = recover() }()
		w.Advance(10)
	}()
	checkWheel(t, w)
	w.Advance(10)
	if len(log.ids) != 3 || w.Len() != 0 {
		t.Fatalf("after panic: fired %v, Len %d", log.ids, w.Len())
	}
}

func TestWheelStats(t *testing.T) {
	ms := int64(time.Millisecond)
	w := NewWheel(10*time.Millisecond, 0)
	var log wheelFireLog
	a, b, c := log.timer(1), log.timer(2), log.timer(3)
	w.Schedule(a, 15*ms) // tick 2, instant 20 ms
	w.Schedule(c, 2*ms)
	w.Schedule(c, 90*ms)
	if s := w.Stats(); s != (WheelStats{}) {
		t.Fatalf("published before any Advance: %+v", s)
	}
	w.Advance(27 * ms)
	s := w.Stats()
	want := WheelStats{Scheduled: 3, Fired: 1, Pending: 1, LastLag: 7 * time.Millisecond, MaxLag: 7 * time.Millisecond}
	if s != want {
		t.Fatalf("Stats = %+v, want %+v", s, want)
	}
	w.Schedule(b, 10_000*ms) // tick 1000, level 1: cascaded at tick 960
	w.Advance(90 * ms)
	if s := w.Stats(); s.LastLag != 0 || s.Fired != 2 {
		t.Fatalf("Stats = %+v", s)
	}
	// The loop follows Next: it wakes at the cascade, then at the tick.
	if d, _ := w.Next(90 * ms); d != 9510*time.Millisecond {
		t.Fatalf("Next = %v, want the level-1 slot at 9.6 s", d)
	}
	w.Advance(9600 * ms)
	w.Advance(10_003 * ms)
	s = w.Stats()
	if s.Fired != 3 || s.Pending != 0 || s.LastLag != 3*time.Millisecond || s.MaxLag != 7*time.Millisecond || s.Cascaded != 1 {
		t.Fatalf("Stats = %+v", s)
	}
	// A loop that oversleeps a cascade is late by the cascade's instant.
	w.Schedule(b, 20_000*ms) // tick 2000, cascaded at tick 1984
	w.Advance(20_000 * ms)
	if s := w.Stats(); s.LastLag != 160*time.Millisecond || s.MaxLag != 160*time.Millisecond {
		t.Fatalf("Stats = %+v", s)
	}
}

// TestWheelStatsConcurrentRead reads Stats from another goroutine while the
// loop goroutine works; -race proves the publication is race-free.
func TestWheelStatsConcurrentRead(t *testing.T) {
	w := NewWheel(1, 0)
	var tm Timer
	tm.Init(func(_ *Timer, now int64) { w.Schedule(&tm, now+3) })
	w.Schedule(&tm, 3)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	var last uint64
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				s := w.Stats()
				if s.Fired < last {
					t.Error("Fired went backwards")
				}
				last = s.Fired
			}
		}
	}()
	for now := int64(1); now <= 30_000; now++ {
		w.Advance(now)
	}
	close(stop)
	wg.Wait()
	if got := w.Stats().Fired; got != 10_000 {
		t.Fatalf("Fired = %d", got)
	}
}

// TestWheelNextDriven runs the wheel as the event loop does, sleeping exactly
// the duration Next returns: every timer must fire on its tick instant (so
// less than one tick after its time), and wake-ups that fire nothing are
// bounded by the levels a timer cascades through.
func TestWheelNextDriven(t *testing.T) {
	const tick = 1000
	rng := rand.New(rand.NewPCG(7, 8))
	origin := int64(1) << 40
	w := NewWheel(tick, origin)
	type tt struct {
		Timer
		at    int64
		fired int64
	}
	timers := make([]tt, 3000)
	for i := range timers {
		x := &timers[i]
		x.Init(func(_ *Timer, now int64) {
			if x.fired != 0 {
				t.Errorf("timer %d fired twice", i)
			}
			x.fired = now
		})
		// Spread over all levels and a little beyond (2^36 ticks).
		span := int64(1) << (rng.IntN(wheelSpan+3) + 1)
		x.at = origin + 1 + rng.Int64N(span*tick)
		w.Schedule(&x.Timer, x.at)
	}
	now, idle, wakeups := origin, 0, 0
	for {
		d, ok := w.Next(now)
		if !ok {
			break
		}
		if d <= 0 {
			t.Fatalf("Next = %v with nothing past due", d)
		}
		now += int64(d)
		wakeups++
		if w.Advance(now) == 0 {
			if idle++; idle > wheelLevels+1 {
				t.Fatalf("%d consecutive wake-ups fired nothing", idle)
			}
		} else {
			idle = 0
		}
	}
	checkWheel(t, w)
	for i := range timers {
		x := &timers[i]
		if x.fired == 0 {
			t.Fatalf("timer %d never fired", i)
		}
		if late := x.fired - x.at; late < 0 || late >= tick {
			t.Fatalf("timer %d fired %d ns after its time", i, late)
		}
	}
	if wakeups > len(timers)*(wheelLevels+1) {
		t.Fatalf("%d wake-ups for %d timers", wakeups, len(timers))
	}
}

// ---- model-based test: the wheel against a brute-force reference ----

// wheelByteSrc turns a byte string into choices; exhausted, it yields zeros.
type wheelByteSrc struct {
	b []byte
	i int
}

func (s *wheelByteSrc) done() bool { return s.i >= len(s.b) }

func (s *wheelByteSrc) u8() byte {
	if s.i >= len(s.b) {
		return 0
	}
	s.i++
	return s.b[s.i-1]
}

func (s *wheelByteSrc) u64() uint64 {
	var buf [8]byte
	for i := range buf {
		buf[i] = s.u8()
	}
	return binary.LittleEndian.Uint64(buf[:])
}

// upTo returns a value in [0, n).
func (s *wheelByteSrc) upTo(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return int64(s.u64() % uint64(n))
}

const (
	wheelModelTick   = 1000
	wheelModelTimers = 40
)

type wheelModelTimer struct {
	Timer
	id      int
	active  bool   // the model's view of Active
	at      int64  // time passed to Schedule
	k       uint64 // tick of at, computed by the model
	past    bool   // scheduled at or before the processed tick
	pastSeq int    // the Advance call in which a past timer must fire
}

// wheelHarness drives a Wheel and a brute-force model with the same operations
// and checks, after every operation, that they agree.
type wheelHarness struct {
	tb      testing.TB
	w       *Wheel
	src     *wheelByteSrc
	origin  int64
	now     int64
	cur     uint64 // last processed tick
	seq     int    // Advance calls started
	inAdv   bool
	proc    uint64 // tick being fired, during Advance
	curPrev uint64 // cur when the running Advance started
	target  uint64 // tick of the running Advance's now
	lastEff uint64 // ordering key of the last fire in this Advance
	fires   int
	active  int
	timers  []*wheelModelTimer
}

func newWheelHarness(tb testing.TB, data []byte) *wheelHarness {
	h := &wheelHarness{tb: tb, src: &wheelByteSrc{b: data}}
	h.origin = int64(h.src.u64()%(1<<40)) - 1<<39
	h.now = h.origin
	h.w = NewWheel(wheelModelTick, h.origin)
	for i := range wheelModelTimers {
		m := &wheelModelTimer{id: i}
		m.Init(func(_ *Timer, now int64) { h.onFire(m, now) })
		h.timers = append(h.timers, m)
	}
	return h
}

func (h *wheelHarness) ceil(at int64) uint64 {
	if at <= h.origin {
		return 0
	}
	d := at - h.origin
	return uint64((d + wheelModelTick - 1) / wheelModelTick)
}

func (h *wheelHarness) floor(now int64) uint64 {
	if now <= h.origin {
		return 0
	}
	return uint64((now - h.origin) / wheelModelTick)
}

func (h *wheelHarness) instant(k uint64) int64 { return h.origin + int64(k)*wheelModelTick }

// delta draws a schedule offset from now covering the past, every level, the
// level boundaries and beyond the top level.
func (h *wheelHarness) delta() int64 {
	s := h.src
	switch s.u8() % 10 {
	case 0:
		return -s.upTo(5 * wheelModelTick)
	case 1:
		return s.upTo(3 * wheelModelTick)
	case 2:
		return s.upTo(70 * wheelModelTick)
	case 3:
		return s.upTo(64 * 64 * 2 * wheelModelTick)
	case 4:
		return s.upTo(64 * 64 * 64 * wheelModelTick)
	case 5:
		return s.upTo(int64(1) << 30 * wheelModelTick)
	case 6:
		return int64(1)<<wheelSpan*wheelModelTick + s.upTo(int64(1)<<38*wheelModelTick)
	case 7, 8:
		// Around the next multiple of 64^l ticks.
		l := uint(s.u8()%(wheelLevels+1)) * wheelBits
		b := (h.cur>>l + 1) << l
		return h.instant(b) - h.now + (int64(s.u8()%5)-2)*wheelModelTick + s.upTo(wheelModelTick)
	default:
		return 0
	}
}

// step draws how far an Advance moves the clock.
func (h *wheelHarness) step() int64 {
	s := h.src
	switch s.u8() % 8 {
	case 0:
		return 0
	case 1:
		return s.upTo(wheelModelTick)
	case 2:
		return wheelModelTick
	case 3:
		return s.upTo(70 * wheelModelTick)
	case 4:
		return s.upTo(64 * 64 * 3 * wheelModelTick)
	case 5:
		return s.upTo(64 * 64 * 64 * 64 * wheelModelTick)
	default:
		// To just before, at or after the next multiple of 64^l ticks,
		// including the top block boundary where overflow is re-filed.
		l := uint(s.u8()%(wheelLevels+1)) * wheelBits
		b := (h.cur>>l + 1) << l
		d := h.instant(b) - h.now + (int64(s.u8()%3)-1)*wheelModelTick
		return max(d, 0)
	}
}

func (h *wheelHarness) schedule(m *wheelModelTimer, at int64) {
	k := h.ceil(at)
	processed := h.cur
	if h.inAdv {
		processed = h.proc
	}
	if !m.active {
		h.active++
	}
	m.active, m.at, m.k = true, at, k
	m.past = k <= processed
	m.pastSeq = h.seq + 1
	h.w.Schedule(&m.Timer, at)
	if !m.Active() || m.When() != at {
		h.tb.Fatalf("timer %d: Active/When after Schedule", m.id)
	}
}

func (h *wheelHarness) stop(m *wheelModelTimer) {
	if got := h.w.Stop(&m.Timer); got != m.active {
		h.tb.Fatalf("Stop(timer %d) = %v, model says active=%v", m.id, got, m.active)
	}
	if m.active {
		m.active = false
		h.active--
	}
}

func (h *wheelHarness) onFire(m *wheelModelTimer, now int64) {
	tb := h.tb
	if !h.inAdv || now != h.now {
		tb.Fatalf("timer %d fired outside Advance or with now %d != %d", m.id, now, h.now)
	}
	if !m.active {
		tb.Fatalf("timer %d fired while stopped or twice", m.id)
	}
	if m.Active() {
		tb.Fatalf("timer %d active inside its fn", m.id)
	}
	if now < m.at {
		tb.Fatalf("timer %d fired early: now %d < at %d", m.id, now, m.at)
	}
	eff := uint64(0) // past-due timers fire first, in any order
	if m.past {
		if h.seq != m.pastSeq {
			tb.Fatalf("past-due timer %d fired in Advance %d, want %d", m.id, h.seq, m.pastSeq)
		}
		h.proc = h.curPrev
	} else {
		if m.k > h.target || m.k <= h.curPrev {
			tb.Fatalf("timer %d (tick %d) fired in Advance over ticks (%d, %d]", m.id, m.k, h.curPrev, h.target)
		}
		eff = m.k
		h.proc = m.k
	}
	if eff < h.lastEff {
		tb.Fatalf("timer %d (tick %d) fired after tick %d", m.id, eff, h.lastEff)
	}
	h.lastEff = eff
	m.active = false
	h.active--
	h.fires++
	// What the fn does next.
	s := h.src
	switch s.u8() % 8 {
	case 1, 2:
		h.schedule(m, now+h.delta())
	case 3:
		h.stop(h.timers[int(s.u8())%len(h.timers)])
	case 4:
		h.schedule(h.timers[int(s.u8())%len(h.timers)], now+h.delta())
	case 5:
		h.schedule(m, now-s.upTo(3*wheelModelTick)) // already due
	}
}

func (h *wheelHarness) advance(now int64) {
	h.seq++
	h.inAdv = true
	h.curPrev, h.proc, h.lastEff, h.fires = h.cur, h.cur, 0, 0
	h.target = max(h.floor(now), h.cur)
	h.now = max(now, h.now)
	n := h.w.Advance(now)
	h.inAdv = false
	h.cur = h.target
	if n != h.fires {
		h.tb.Fatalf("Advance returned %d, %d fns ran", n, h.fires)
	}
	for _, m := range h.timers {
		if !m.active {
			continue
		}
		if m.past && m.pastSeq <= h.seq {
			h.tb.Fatalf("past-due timer %d missed Advance %d", m.id, m.pastSeq)
		}
		if !m.past && m.k <= h.target {
			h.tb.Fatalf("timer %d (tick %d) not fired by tick %d", m.id, m.k, h.target)
		}
	}
}

// checkNext compares Next with the brute-force minimum over active timers.
func (h *wheelHarness) checkNext() {
	d, ok := h.w.Next(h.now)
	if h.active == 0 {
		if ok {
			h.tb.Fatalf("Next = %v, true on an empty wheel", d)
		}
		return
	}
	if !ok || d < 0 {
		h.tb.Fatalf("Next = %v, %v with %d timers", d, ok, h.active)
	}
	minK := uint64(math.MaxUint64)
	for _, m := range h.timers {
		if m.active {
			if m.past {
				if d != 0 {
					h.tb.Fatalf("Next = %v with a past-due timer", d)
				}
				return
			}
			minK = min(minK, m.k)
		}
	}
	upper := max(h.instant(minK)-h.now, 0)
	lower := max(h.instant(h.cur+1)-h.now, 0)
	if int64(d) > upper || int64(d) < lower {
		h.tb.Fatalf("Next = %d, want in [%d, %d] (cur %d, min tick %d)", d, lower, upper, h.cur, minK)
	}
	// Within the current level-0 span the answer is exact.
	if minK>>wheelBits == h.cur>>wheelBits && int64(d) != upper {
		h.tb.Fatalf("Next = %d, want exactly %d", d, upper)
	}
}

func (h *wheelHarness) check() {
	checkWheel(h.tb, h.w)
	if h.w.Len() != h.active {
		h.tb.Fatalf("Len = %d, model has %d", h.w.Len(), h.active)
	}
	for _, m := range h.timers {
		if m.Active() != m.active {
			h.tb.Fatalf("timer %d Active = %v, model %v", m.id, m.Active(), m.active)
		}
	}
}

func (h *wheelHarness) run() {
	s := h.src
	for !s.done() {
		switch op := s.u8() % 8; op {
		case 0, 1, 2:
			h.schedule(h.timers[int(s.u8())%len(h.timers)], h.now+h.delta())
		case 3:
			h.stop(h.timers[int(s.u8())%len(h.timers)])
		case 4, 5, 6:
			// Keep the clock far from the int64 edge.
			if h.now < 1<<58 {
				h.advance(h.now + h.step())
			}
		case 7:
			h.checkNext()
		}
		h.check()
		h.checkNext()
	}
	// Drain: the source is exhausted, so fns do nothing more.
	for i := 0; h.active > 0; i++ {
		if i > 3 {
			h.tb.Fatalf("%d timers left after draining", h.active)
		}
		h.advance(h.now + int64(1)<<40*wheelModelTick)
		h.check()
	}
}

// TestWheelModelRandomized runs the model wheelHarness over 64 pseudo-random operation streams. The
// wheel is single-goroutine code, so the race detector has nothing to find here and only makes
// it about ten times slower: with -race (or -short) the first 8 streams run, with the same
// checks; the plain test run still covers all 64.
func TestWheelModelRandomized(t *testing.T) {
	seeds := 64
	if testing.Short() || raceEnabled {
		seeds = 8
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
		data := make([]byte, 30_000)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		newWheelHarness(t, data).run()
		if t.Failed() {
			t.Fatalf("seed %d", seed)
		}
	}
}

func FuzzWheel(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x02\x04\x04\x02\x07"))
	f.Add([]byte("schedule stop advance next \x06\x06\x06\x07\x00\x08\x09\x0a"))
	seed := make([]byte, 512)
	for i := range seed {
		seed[i] = byte(i*37 + i>>3)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 8192 {
			data = data[:8192]
		}
		newWheelHarness(t, data).run()
	})
}
