package bench

import (
	"math/rand/v2"
	"testing"
	"time"
)

// fixedRand returns a chosen position in [0, n): 0 -> lowest, 1 -> highest,
// 0.5 -> middle, so the jitter a test sees is exact.
type fixedRand float64

func (f fixedRand) Int64N(n int64) int64 {
	v := int64(float64(f) * float64(n-1))
	return min(max(v, 0), n-1)
}

func TestBackoffScheduleDoublesToTheCap(t *testing.T) {
	b := DefaultBackoff
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second,
		8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for n, w := range want {
		if got := b.Delay(n, fixedRand(0.5)); got != w {
			t.Errorf("attempt %d: %v, want %v", n, got, w)
		}
	}
	// Far past the cap and with absurd attempt numbers: no overflow.
	for _, n := range []int{40, 64, 1000, 1 << 30} {
		if got := b.Delay(n, fixedRand(0.5)); got != 30*time.Second {
			t.Errorf("attempt %d: %v, want the 30s cap", n, got)
		}
	}
}

func TestBackoffJitterBounds(t *testing.T) {
	b := DefaultBackoff
	cases := []struct {
		attempt int
		r       fixedRand
		want    time.Duration
	}{
		{attempt: 0, r: 0, want: 400 * time.Millisecond},
		{attempt: 0, r: 1, want: 600 * time.Millisecond},
		{attempt: 3, r: 0, want: 3900 * time.Millisecond},
		{attempt: 3, r: 1, want: 4100 * time.Millisecond},
		{attempt: 9, r: 0, want: 29900 * time.Millisecond},
		{attempt: 9, r: 1, want: 30100 * time.Millisecond},
	}
	for _, c := range cases {
		if got := b.Delay(c.attempt, c.r); got != c.want {
			t.Errorf("attempt %d rand %v: %v, want %v", c.attempt, c.r, got, c.want)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	seenLow, seenHigh := false, false
	for range 20000 {
		d := b.Delay(0, rng)
		if d < 400*time.Millisecond || d > 600*time.Millisecond {
			t.Fatalf("delay %v outside 500ms +/- 100ms", d)
		}
		seenLow = seenLow || d < 420*time.Millisecond
		seenHigh = seenHigh || d > 580*time.Millisecond
	}
	if !seenLow || !seenHigh {
		t.Error("jitter does not cover its range")
	}
}

func TestBackoffNeverNegative(t *testing.T) {
	b := Backoff{Base: 10 * time.Millisecond, Max: time.Second, Jitter: 50 * time.Millisecond}
	if got := b.Delay(0, fixedRand(0)); got != 0 {
		t.Errorf("jitter below zero: %v, want 0", got)
	}
	if got := (Backoff{}).Delay(5, fixedRand(0.5)); got != 0 {
		t.Errorf("zero backoff: %v", got)
	}
	if got := (Backoff{Base: time.Second}).Delay(3, nil); got != 8*time.Second {
		t.Errorf("uncapped backoff without jitter: %v, want 8s", got)
	}
}
