package netpoll

import (
	"math/rand/v2"
	"testing"
	"time"
)

const wheelBenchTimers = 1 << 20 // a million connections' timers

// newBenchWheel returns a wheel with the default tick and a million initialised
// timers whose expiry times are spread over 0-60 s (levels 0-2, as pings and
// deadlines are), plus the times.
func newBenchWheel(b *testing.B, fn func(*Timer, int64)) (*Wheel, []Timer, []int64) {
	b.Helper()
	origin := int64(1e12)
	w := NewWheel(0, origin)
	timers := make([]Timer, wheelBenchTimers)
	ats := make([]int64, wheelBenchTimers)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range timers {
		timers[i].Init(fn)
		ats[i] = origin + 1 + rng.Int64N(int64(60*time.Second))
	}
	return w, timers, ats
}

// BenchmarkWheelSchedule measures one Schedule in a wheel holding about a
// million timers. insert: the timer is inactive; move: the timer is active
// and is moved to a new time (unlink plus insert), as a ping re-arms.
func BenchmarkWheelSchedule(b *testing.B) {
	b.Run("insert", func(b *testing.B) {
		w, timers, ats := newBenchWheel(b, func(*Timer, int64) {})
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			j := i & (wheelBenchTimers - 1)
			if j == 0 && i > 0 {
				b.StopTimer()
				for k := range timers {
					w.Stop(&timers[k])
				}
				b.StartTimer()
			}
			w.Schedule(&timers[j], ats[j])
		}
	})
	b.Run("move", func(b *testing.B) {
		w, timers, ats := newBenchWheel(b, func(*Timer, int64) {})
		for i := range timers {
			w.Schedule(&timers[i], ats[i])
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			j := i & (wheelBenchTimers - 1)
			w.Schedule(&timers[j], ats[wheelBenchTimers-1-j]+int64(i>>20))
		}
	})
}

// BenchmarkWheelStop measures one Stop of an active timer in a wheel holding
// about a million timers.
func BenchmarkWheelStop(b *testing.B) {
	w, timers, ats := newBenchWheel(b, func(*Timer, int64) {})
	fill := func() {
		for i := range timers {
			w.Schedule(&timers[i], ats[i])
		}
	}
	fill()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		j := i & (wheelBenchTimers - 1)
		if j == 0 && i > 0 {
			b.StopTimer()
			fill()
			b.StartTimer()
		}
		w.Stop(&timers[j])
	}
}

// BenchmarkWheelFire measures firing per timer (one op = one timer fired),
// cascades included: timers spread over 60 s are fired by an Advance at every
// 10 ms tick. 1M is the target load, whose linked lists far exceed the CPU
// caches, so it is bound by memory latency; 64k shows the wheel's own cost
// with nodes in cache.
func BenchmarkWheelFire(b *testing.B) {
	for _, bc := range []struct {
		name string
		n    int
	}{{"1M", wheelBenchTimers}, {"64k", 1 << 16}} {
		b.Run(bc.name, func(b *testing.B) {
			fired := 0
			w, timers, ats := newBenchWheel(b, func(*Timer, int64) { fired++ })
			timers, ats = timers[:bc.n], ats[:bc.n]
			tick := int64(w.Tick())
			now := int64(1e12)
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; {
				n := min(b.N-done, len(timers))
				b.StopTimer()
				for i := range n {
					w.Schedule(&timers[i], now-int64(1e12)+ats[i])
				}
				b.StartTimer()
				for w.Len() > 0 {
					now += tick
					w.Advance(now)
				}
				done += n
			}
			if fired != b.N {
				b.Fatalf("fired %d of %d", fired, b.N)
			}
		})
	}
}

// BenchmarkWheelAdvanceIdle measures an Advance that fires nothing: a new
// tick each time, a million timers filed 60 to 120 days ahead.
func BenchmarkWheelAdvanceIdle(b *testing.B) {
	w, timers, _ := newBenchWheel(b, func(*Timer, int64) { b.Fatal("fired") })
	rng := rand.New(rand.NewPCG(5, 6))
	origin := int64(1e12)
	for i := range timers {
		w.Schedule(&timers[i], origin+int64(60*24*time.Hour)+rng.Int64N(int64(60*24*time.Hour)))
	}
	tick := int64(w.Tick())
	now := origin
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		now += tick
		w.Advance(now)
	}
}
