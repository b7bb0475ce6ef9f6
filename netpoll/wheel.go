package netpoll

// Hierarchical timing wheel (one per event loop).
//
// Job. The wheel drives every per-connection deadline of one event loop:
// handshake deadline, jittered pings, pong misses, idle timeout and the
// close-handshake deadline. The loop calls epoll_wait(2) with the timeout that
// Next returns, then Advance with its own monotonic clock. The wheel never reads
// a clock itself; all times are int64 nanoseconds on the caller's clock.
//
// Ownership. A Wheel and every Timer filed in it belong to one goroutine (the
// loop goroutine). There are no locks. The only method that may be called from
// any goroutine is Stats.
//
// Time model. The wheel cuts time into ticks of Tick() nanoseconds counted from
// the origin passed to NewWheel: tick k is the instant origin + k*tick. A timer
// scheduled at `at` belongs to tick ceil((at-origin)/tick), the first tick
// instant at or after `at`. Advance(now) processes every tick k with
// origin + k*tick <= now. Hence a timer never fires before `at`, and when
// Advance is called at the tick instant (as it is when the loop sleeps for the
// duration Next returned) it fires before at+tick.
//
// Geometry. wheelLevels (6) levels of wheelSlots (64) slots; level l slot s holds
// timers whose tick has the same bits above bit 6(l+1) as the current tick
// `cur`, and whose 6-bit digit l is s (digit l of tick k is (k>>6l)&63). A timer
// with tick k > cur lives on the level of the highest 6-bit digit in which k and
// cur differ, level(k) = (bitlen(k^cur)-1)/6, so its digit there is larger than
// cur's. This gives four invariants that the code relies on:
//
//	I1 every timer on level l has digit_l(tick) > digit_l(cur), and the same
//	   digits as cur above l; so all timers on level l expire before all timers
//	   on level l+1, and the earliest piece of work is on the lowest non-empty
//	   level, in its lowest occupied slot;
//	I2 occupied[l] bit s is set if and only if slots[l][s] is non-empty;
//	I3 every timer in the due and firing lists has tick <= cur; every timer on
//	   a level or in overflow has tick > cur;
//	I4 every timer in overflow differs from cur above bit 36 (level(k) >= 6),
//	   and overflowMin <= the smallest tick in overflow.
//
// The event of level l slot s is the tick at which cur's digit l becomes s
// (lower digits zero). At that tick Advance empties the slot: timers whose tick
// equals the event fire, the others are re-filed relative to the new cur, which
// always puts them on a lower level (a cascade). Level 0 events are exact; a
// timer cascades at most wheelLevels times before it fires, so firing is
// amortised O(1) per timer. Because I1 holds for every value of cur between two
// events, Advance jumps straight from one event to the next (found with one
// TrailingZeros64 per level), never walking empty ticks: an Advance after a long
// sleep costs O(levels), not O(elapsed ticks).
//
// Range and overflow. The levels span 2^36 ticks: 21.8 years at the default
// 10 ms tick, 2.2 years at 1 ms, and at least 24 h for any tick >= 1.26 µs
// (level l alone spans 64^(l+1) ticks: 0.64 s, 41 s, 44 min, 46.6 h, 124 days
// and 21.8 years at 10 ms, so a 25 s ping cascades once). A timer whose
// tick differs from cur above bit 36 goes to the overflow list. Its event is the
// start of its 2^36-tick block, computed from overflowMin; at that tick the whole
// overflow list is re-filed (timers still out of range go back to it and
// overflowMin is recomputed exactly). Stop leaves overflowMin possibly too low,
// which costs at worst an early re-file pass, never a late timer. The re-file pass
// is O(len(overflow)); with a 10 ms tick the list is only used for timers decades
// away (or, once every 21.8 years of uptime, for timers that straddle a block
// boundary), so the pass is not on any hot path.
//
// Next. Next returns the time until the next event: exact for a level-0 slot,
// and for higher levels the start of the slot, which is never later than the
// true expiry rounded up to a tick. Following Next costs at most one wake-up per
// level a timer cascades through. Next returns 0 while a past-due timer waits in
// the due list. epoll_wait(2) takes milliseconds: round the duration up, or the
// loop wakes before the tick instant and its Advance fires nothing.
//
// Callbacks. A timer's fn runs on the loop goroutine inside Advance, after the
// timer has been unlinked (t.Active() is false in its own fn). fn receives the
// now passed to Advance, not its expiry (When): a periodic timer re-armed at
// When()+period keeps a fixed rate, one re-armed at now+period drifts by the
// lag. While fn runs, cur is the tick being fired. From fn the caller may:
//   - Schedule any timer (including the one firing) for a time after the
//     instant of the tick being fired: it is filed normally, and fires in this
//     same Advance if its tick is <= the tick of now;
//   - Schedule any timer for a time at or before that instant (an already-due
//     time): it goes to the due list and fires at the start of the next
//     Advance call, not this one; so a fn that re-arms itself in the past
//     cannot keep one Advance busy forever, and Next returns 0 meanwhile;
//   - Stop any timer, including one due in the same tick that has not fired
//     yet: it will not fire.
//
// fn must not call Advance (it panics). If fn panics, the timers left in the
// firing list fire at the start of the next Advance.
//
// Order. Advance fires timers in order of expiry tick. Within one tick the order
// is unspecified. Timers scheduled at or before the current tick (the past) are
// clamped to it: they fire first in the next Advance, in unspecified order.
//
// Memory. The Wheel is about 3.3 KiB, allocated once by NewWheel: 6*64 slot
// heads of 8 bytes, 6 occupancy words and a few counters; it never allocates
// afterwards. A Timer is 40 bytes (five words): next and pprev (an
// intrusive hlist as in Linux: pprev points at whichever pointer points at the
// timer, a slot head or the previous node's next, so unlinking is O(1) without
// knowing the slot and a slot head is one word), tick (the expiry tick, kept so
// that cascades and Stop need no 64-bit division), when (the time passed to
// Schedule, for When) and fn. The slot and level are not stored: by I1/I3 they
// follow from tick and cur.
//
// Pool discipline. A Timer is embedded in its owner; Init runs once per owner
// lifetime. The owner must Stop the timer before the owner is released to a
// pool: the wheel keeps pointers to filed timers. A Timer belongs to one Wheel
// at a time.

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// DefaultWheelTick is the tick NewWheel uses when passed a tick <= 0. It is a
// whole number of milliseconds so that tick instants fall on epoll_wait(2)'s
// millisecond grid, and coarse enough that a busy loop fires many timers per
// tick while a 25 s ping still fires within 1/2500 of its period.
const DefaultWheelTick = 10 * time.Millisecond

const (
	wheelBits   = 6                       // bits of tick per level
	wheelSlots  = 1 << wheelBits          // 64 slots: one occupancy word per level
	wheelMask   = wheelSlots - 1          // digit mask
	wheelLevels = 6                       // levels in the wheel proper
	wheelSpan   = wheelLevels * wheelBits // 36: the levels cover 2^36 ticks
	noTick      = math.MaxUint64          // overflowMin when overflow is empty
)

// Timer is a node embedded in its owner (for example the connection struct).
// The zero value is a stopped timer without a callback; call Init once per
// owner lifetime before the first Schedule. All methods are for the loop
// goroutine that owns the Wheel the timer is filed in.
type Timer struct {
	next  *Timer                    // next timer in the same list
	pprev **Timer                   // the pointer that points at this timer; nil: not filed
	tick  uint64                    // expiry tick (see the time model above)
	when  int64                     // the `at` passed to Schedule, ns
	fn    func(t *Timer, now int64) // called on the loop goroutine when the timer fires
}

// Init sets the function run when the timer fires, with the timer itself and
// the value passed to Advance (When gives the expiry). Passing the timer lets
// one top-level function serve every owner of a kind: it finds the owner the
// timer is embedded in (unsafe.Add with the field's unsafe.Offsetof), so an
// owner costs no closure; a connection timer is one such. Pooled owners call
// Init once when the owner is first created. Init panics if the timer is filed
// in a wheel.
func (t *Timer) Init(fn func(t *Timer, now int64)) {
	if t.pprev != nil {
		panic("netpoll: Timer.Init on an active timer")
	}
	t.fn = fn
}

// Active reports whether the timer is filed in a wheel, that is scheduled and
// neither fired nor stopped. A timer is not active inside its own fn unless fn
// scheduled it again.
func (t *Timer) Active() bool { return t.pprev != nil }

// When returns the expiry time in nanoseconds last passed to Schedule. It is
// kept after the timer fires or is stopped.
func (t *Timer) When() int64 { return t.when }

// Wheel is a hierarchical timing wheel; see the comment at the top of this file
// for its invariants. Every method except Stats is for the owning goroutine
// only.
type Wheel struct {
	// Immutable after NewWheel.
	origin int64  // instant of tick 0, ns
	tick   uint64 // tick length, ns, >= 1

	// Owning (loop) goroutine only.
	slots       [wheelLevels][wheelSlots]*Timer // slot list heads
	occupied    [wheelLevels]uint64             // bit s of word l: slots[l][s] != nil (I2)
	overflow    *Timer                          // timers beyond the levels (I4)
	overflowMin uint64                          // <= smallest tick in overflow; noTick when empty
	due         *Timer                          // scheduled at or before cur: fire in the next Advance
	firing      *Timer                          // being fired by the current Advance
	cur         uint64                          // last processed tick
	n           int                             // timers filed
	advancing   bool                            // inside Advance: catches a re-entrant call
	scheduled   uint64                          // Schedule calls
	fired       uint64                          // timers fired
	cascaded    uint64                          // timers re-filed to a lower level or out of overflow
	lastLag     int64                           // see WheelStats.LastLag
	maxLag      int64                           // see WheelStats.MaxLag

	// Any goroutine via atomic: copies of the counters above, stored by the
	// owning goroutine at the end of each Advance, loaded by Stats.
	pub wheelPub
}

// wheelPub holds the published statistics: written by Advance on the loop
// goroutine, read by Stats from any goroutine.
type wheelPub struct {
	scheduled atomic.Uint64
	fired     atomic.Uint64
	cascaded  atomic.Uint64
	pending   atomic.Int64
	lastLag   atomic.Int64
	maxLag    atomic.Int64
}

// WheelStats is a snapshot of a wheel's counters for metrics.
type WheelStats struct {
	Scheduled uint64 // Schedule calls since NewWheel
	Fired     uint64 // timers fired since NewWheel
	Cascaded  uint64 // timers moved down a level or out of overflow
	Pending   int    // timers filed (Len)
	// LastLag is how late the last Advance that had work ran: its now minus
	// the instant of the oldest tick with work (a timer to fire or a slot to
	// cascade, i.e. the instant Next asked the loop to wake at). It measures
	// the loop's lateness, and epoll_wait's rounding up to a millisecond.
	LastLag time.Duration
	MaxLag  time.Duration // largest LastLag since NewWheel
}

// NewWheel returns an empty wheel with the given tick (DefaultWheelTick if
// tick <= 0) whose tick 0 is the instant now on the caller's monotonic clock.
func NewWheel(tick time.Duration, now int64) *Wheel {
	if tick <= 0 {
		tick = DefaultWheelTick
	}
	return &Wheel{origin: now, tick: uint64(tick), overflowMin: noTick}
}

// Tick returns the wheel's tick length.
func (w *Wheel) Tick() time.Duration { return time.Duration(w.tick) }

// Len returns the number of timers filed: scheduled and neither fired nor
// stopped.
func (w *Wheel) Len() int { return w.n }

// Schedule files t to fire at the instant at (ns on the wheel's clock). An
// active t is moved (its earlier expiry is forgotten). A time at or before the
// last processed tick fires at the start of the next Advance. O(1), no
// allocation. Panics if Init was not called.
func (w *Wheel) Schedule(t *Timer, at int64) {
	if t.fn == nil {
		panic("netpoll: Wheel.Schedule on a Timer without Init")
	}
	if t.pprev != nil {
		w.unlink(t)
	}
	t.when = at
	t.tick = w.tickCeil(at)
	w.n++
	w.scheduled++
	if t.tick <= w.cur {
		pushTimer(&w.due, t)
		return
	}
	w.insert(t)
}

// Stop unlinks t so that it does not fire. It reports whether t was active.
// O(1); stopping a stopped timer is a no-op that returns false.
func (w *Wheel) Stop(t *Timer) bool {
	if t.pprev == nil {
		return false
	}
	w.unlink(t)
	return true
}

// Advance processes every tick up to the one of now: it fires, in expiry-tick
// order, every timer due at or before now, and returns how many fired. Timers
// scheduled before this call for a past time fire first. An Advance in which
// nothing is due costs O(levels). A now earlier than the last processed tick
// only fires past-due timers. Must not be called from a timer's fn.
func (w *Wheel) Advance(now int64) (fired int) {
	if w.advancing {
		panic("netpoll: Wheel.Advance called from a timer func")
	}
	w.advancing = true
	defer w.endAdvance()

	// Leftovers of a fn that panicked, then timers scheduled in the past.
	fired = w.fire(now)
	if w.due != nil {
		w.firing, w.due = w.due, nil
		w.firing.pprev = &w.firing
		fired += w.fire(now)
	}

	target := w.tickFloor(now)
	lagged := false
	for w.cur < target {
		e, lvl, ok := w.nextEvent()
		if !ok || e > target {
			w.cur = target // I1 holds for every cur before the next event
			break
		}
		w.cur = e
		if !lagged {
			lagged = true
			w.noteLag(now, e)
		}
		switch {
		case lvl == 0:
			// Every timer of a level-0 slot has tick e: splice the list.
			s := e & wheelMask
			head := w.slots[0][s]
			w.slots[0][s] = nil
			w.occupied[0] &^= 1 << s
			w.firing = head
			head.pprev = &w.firing
		case lvl < wheelLevels:
			s := (e >> (uint(lvl) * wheelBits)) & wheelMask
			head := w.slots[lvl][s]
			w.slots[lvl][s] = nil
			w.occupied[lvl] &^= 1 << s
			w.refile(head, e)
		default:
			head := w.overflow
			w.overflow = nil
			w.overflowMin = noTick
			w.refile(head, e)
		}
		fired += w.fire(now)
	}
	return fired
}

// endAdvance closes an Advance, also when a timer's fn panics, and publishes
// the counters that changed.
func (w *Wheel) endAdvance() {
	w.advancing = false
	p := &w.pub
	if p.scheduled.Load() != w.scheduled {
		p.scheduled.Store(w.scheduled)
	}
	if p.fired.Load() != w.fired {
		p.fired.Store(w.fired)
	}
	if p.cascaded.Load() != w.cascaded {
		p.cascaded.Store(w.cascaded)
	}
	if p.pending.Load() != int64(w.n) {
		p.pending.Store(int64(w.n))
	}
	if p.lastLag.Load() != w.lastLag {
		p.lastLag.Store(w.lastLag)
	}
	if p.maxLag.Load() != w.maxLag {
		p.maxLag.Store(w.maxLag)
	}
}

// Next returns the time from now until the next tick at which the wheel has
// work: a timer to fire (exact for timers less than 64 ticks away within the
// same level-0 span) or a slot to cascade (an earlier instant). It is never
// later than the earliest timer's expiry rounded up to a tick, and 0 if a timer
// is already due. ok is false when no timer is filed: sleep without timeout.
func (w *Wheel) Next(now int64) (d time.Duration, ok bool) {
	if w.due != nil || w.firing != nil {
		return 0, true
	}
	e, _, ok := w.nextEvent()
	if !ok {
		return 0, false
	}
	ns := subSat64(w.timeOf(e), now)
	if ns < 0 {
		ns = 0
	}
	return time.Duration(ns), true
}

// Stats returns the counters as of the end of the last Advance. Safe to call
// from any goroutine (for example a metrics scrape).
func (w *Wheel) Stats() WheelStats {
	p := &w.pub
	return WheelStats{
		Scheduled: p.scheduled.Load(),
		Fired:     p.fired.Load(),
		Cascaded:  p.cascaded.Load(),
		Pending:   int(p.pending.Load()),
		LastLag:   time.Duration(p.lastLag.Load()),
		MaxLag:    time.Duration(p.maxLag.Load()),
	}
}

// pushTimer files t at the head of the list *head.
func pushTimer(head **Timer, t *Timer) {
	t.next = *head
	if t.next != nil {
		t.next.pprev = &t.next
	}
	t.pprev = head
	*head = t
}

// level returns the level of tick k > w.cur; wheelLevels or more means overflow.
func (w *Wheel) level(k uint64) int {
	return (bits.Len64(k^w.cur) - 1) / wheelBits
}

// insert files t (t.tick > w.cur) on its level, or in overflow.
func (w *Wheel) insert(t *Timer) {
	lvl := w.level(t.tick)
	if lvl >= wheelLevels {
		pushTimer(&w.overflow, t)
		if t.tick < w.overflowMin {
			w.overflowMin = t.tick
		}
		return
	}
	s := (t.tick >> (uint(lvl) * wheelBits)) & wheelMask
	pushTimer(&w.slots[lvl][s], t)
	w.occupied[lvl] |= 1 << s
}

// unlink removes a filed t from its list and keeps I2 (and overflowMin, when
// the overflow list empties).
func (w *Wheel) unlink(t *Timer) {
	*t.pprev = t.next
	if t.next != nil {
		t.next.pprev = t.pprev
	}
	if t.tick > w.cur { // on a level or in overflow (I3)
		if lvl := w.level(t.tick); lvl < wheelLevels {
			s := (t.tick >> (uint(lvl) * wheelBits)) & wheelMask
			if w.slots[lvl][s] == nil {
				w.occupied[lvl] &^= 1 << s
			}
		} else if w.overflow == nil {
			w.overflowMin = noTick
		}
	}
	t.next, t.pprev = nil, nil
	w.n--
}

// refile distributes a detached list whose event tick is e == w.cur: timers
// expiring at e go to the firing list, the rest to lower levels (or back to
// overflow). No user code runs here, so the list cannot change under us.
func (w *Wheel) refile(head *Timer, e uint64) {
	for t := head; t != nil; {
		next := t.next
		if t.tick == e {
			pushTimer(&w.firing, t)
		} else {
			w.insert(t)
			w.cascaded++
		}
		t = next
	}
}

// fire runs the firing list. Each timer is unlinked before its fn runs, so fn
// may Schedule or Stop any timer, including ones still in the firing list.
func (w *Wheel) fire(now int64) int {
	n := 0
	for w.firing != nil {
		t := w.firing
		w.firing = t.next
		if t.next != nil {
			t.next.pprev = &w.firing
		}
		t.next, t.pprev = nil, nil
		w.n--
		w.fired++
		n++
		t.fn(t, now)
	}
	return n
}

// nextEvent returns the first tick after w.cur at which the wheel has work and
// the level it is on (wheelLevels: overflow); ok is false when the wheel is
// empty apart from the due and firing lists. By I1 the lowest non-empty level
// holds the earliest event, and the overflow event comes after all of them.
func (w *Wheel) nextEvent() (e uint64, lvl int, ok bool) {
	for l := 0; l < wheelLevels; l++ {
		if m := w.occupied[l]; m != 0 {
			s := uint64(bits.TrailingZeros64(m))
			hi := uint(l+1) * wheelBits
			return w.cur>>hi<<hi | s<<(uint(l)*wheelBits), l, true
		}
	}
	if w.overflow != nil {
		return w.overflowMin >> wheelSpan << wheelSpan, wheelLevels, true
	}
	return 0, 0, false
}

// tickCeil returns the first tick whose instant is at or after at; 0 for
// instants at or before the origin.
func (w *Wheel) tickCeil(at int64) uint64 {
	if at <= w.origin {
		return 0
	}
	d := uint64(at) - uint64(w.origin) // exact: at > origin
	k := d / w.tick
	if d%w.tick != 0 {
		k++
	}
	return k
}

// tickFloor returns the last tick whose instant is at or before now; 0 for
// instants before the origin.
func (w *Wheel) tickFloor(now int64) uint64 {
	if now <= w.origin {
		return 0
	}
	return (uint64(now) - uint64(w.origin)) / w.tick
}

// timeOf returns the instant of tick k, saturated at math.MaxInt64.
func (w *Wheel) timeOf(k uint64) int64 {
	hi, lo := bits.Mul64(k, w.tick)
	if hi != 0 || lo > math.MaxInt64 {
		return math.MaxInt64
	}
	s := w.origin + int64(lo)
	if w.origin > 0 && s < 0 {
		return math.MaxInt64
	}
	return s
}

// noteLag records how late this Advance runs relative to its oldest due tick e.
func (w *Wheel) noteLag(now int64, e uint64) {
	lag := subSat64(now, w.timeOf(e))
	w.lastLag = lag
	if lag > w.maxLag {
		w.maxLag = lag
	}
}

// subSat64 returns a-b saturated to the int64 range.
func subSat64(a, b int64) int64 {
	d := a - b
	if (a >= 0) != (b >= 0) && (d >= 0) != (a >= 0) {
		if a >= 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	return d
}
