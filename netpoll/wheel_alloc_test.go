//go:build !race

package netpoll

import (
	"math/rand/v2"
	"testing"
	"time"
)

const wheelMillion = 1 << 20

// wheelSpreadTimes returns n expiry times after origin covering the past, every
// level and the overflow list of a wheel with the default tick.
func wheelSpreadTimes(n int, origin int64, seed uint64) []int64 {
	rng := rand.New(rand.NewPCG(seed, 99))
	ats := make([]int64, n)
	for i := range ats {
		switch i % 16 {
		case 0:
			ats[i] = origin - rng.Int64N(int64(time.Second)) // past: due list
		case 1:
			ats[i] = origin + int64(30*365*24*time.Hour) + rng.Int64N(int64(time.Hour)) // overflow
		default:
			// Log-uniform from 1 ms to about 6 days: levels 0 to 4.
			ats[i] = origin + rng.Int64N(int64(time.Millisecond)<<rng.IntN(30))
		}
	}
	return ats
}

func wheelTimerSlice(fn func(*Timer, int64)) []Timer {
	timers := make([]Timer, wheelMillion) // the owners' embedded nodes
	for i := range timers {
		timers[i].Init(fn)
	}
	return timers
}

// TestWheelMillionTimersZeroAlloc adds a million timers, re-schedules and
// stops them: no allocation at all.
func TestWheelMillionTimersZeroAlloc(t *testing.T) {
	origin := int64(5e9)
	w := NewWheel(0, origin)
	timers := wheelTimerSlice(func(*Timer, int64) {})
	ats := wheelSpreadTimes(len(timers), origin, 1)
	allocs := testing.AllocsPerRun(2, func() {
		for i := range timers {
			w.Schedule(&timers[i], ats[i])
		}
		if w.Len() != len(timers) {
			t.Fatalf("Len = %d", w.Len())
		}
		for i := range timers {
			w.Schedule(&timers[i], ats[len(ats)-1-i]) // move every timer
		}
		for i := range timers {
			if !w.Stop(&timers[i]) {
				t.Fatalf("timer %d not active", i)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per million Schedule+Schedule+Stop, want 0", allocs)
	}
	if w.Len() != 0 {
		t.Fatalf("Len = %d", w.Len())
	}
	checkWheel(t, w)
}

// TestWheelFireZeroAlloc fires a million timers through cascades, with some
// fns re-arming their timer: no allocation.
func TestWheelFireZeroAlloc(t *testing.T) {
	origin := int64(5e9)
	w := NewWheel(0, origin)
	fired := 0
	rearmUntil := int64(0)
	var timers []Timer
	timers = wheelTimerSlice(func(_ *Timer, now int64) {
		fired++
		if fired%7 == 0 && now < rearmUntil {
			t := &timers[fired%len(timers)]
			w.Schedule(t, now+int64(25*time.Second))
		}
	})
	ats := wheelSpreadTimes(len(timers), origin, 2)
	for i := range ats {
		if ats[i] > origin+int64(time.Hour) {
			ats[i] = origin + (ats[i]-origin)%int64(time.Hour)
		}
	}
	now := origin
	allocs := testing.AllocsPerRun(2, func() {
		for i := range timers {
			w.Schedule(&timers[i], now+ats[i]-origin)
		}
		end := now + int64(time.Hour+time.Minute)
		rearmUntil = now + int64(time.Hour)
		for ; now < end; now += int64(DefaultWheelTick) {
			w.Advance(now)
		}
		if w.Len() != 0 {
			t.Fatalf("Len = %d after the last expiry", w.Len())
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per million fired timers, want 0", allocs)
	}
	if fired < 3*len(timers) {
		t.Fatalf("fired %d", fired)
	}
}

func TestWheelIdleCallsZeroAlloc(t *testing.T) {
	w := NewWheel(0, 0)
	var tm Timer
	tm.Init(func(*Timer, int64) {})
	w.Schedule(&tm, int64(90*24*time.Hour))
	now := int64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		now += int64(DefaultWheelTick)
		if w.Advance(now) != 0 {
			t.Fatal("fired")
		}
		if _, ok := w.Next(now); !ok {
			t.Fatal("Next")
		}
		_ = w.Stats()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per idle Advance+Next+Stats", allocs)
	}
}
