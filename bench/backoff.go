package bench

import (
	"math"
	"time"
)

// Backoff is the reconnect schedule of the churn scenario: the wait before the
// n-th consecutive reconnect attempt is Base*2^n, capped at Max, plus a
// uniformly random offset in [-Jitter, +Jitter]. A successful connection
// resets n to zero; Max <= 0 means no cap. The defaults (DefaultBackoff) are the ones real client
// fleets are asked to use: 500 ms doubling to a 30 s cap, +/-100 ms jitter.
//
// A Backoff is a value, immutable once configured; Delay only reads it.
type Backoff struct {
	Base   time.Duration
	Max    time.Duration
	Jitter time.Duration
}

// DefaultBackoff is the schedule used when no flag overrides it.
var DefaultBackoff = Backoff{Base: 500 * time.Millisecond, Max: 30 * time.Second, Jitter: 100 * time.Millisecond}

// Int64Ner is the randomness Backoff needs; *math/rand/v2.Rand satisfies it
// and tests inject a deterministic one.
type Int64Ner interface {
	// Int64N returns a value in [0, n); n > 0.
	Int64N(n int64) int64
}

// Delay returns the wait before attempt n (0 for the first reconnect after a
// disconnect). It never returns a negative duration.
func (b Backoff) Delay(attempt int, rnd Int64Ner) time.Duration {
	d := max(b.Base, 0)
	for i := 0; i < attempt && d > 0 && d <= math.MaxInt64/2; i++ {
		if b.Max > 0 && d >= b.Max {
			break
		}
		d *= 2
	}
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	if b.Jitter > 0 && rnd != nil {
		d += time.Duration(rnd.Int64N(int64(2*b.Jitter)+1)) - b.Jitter
	}
	if d < 0 {
		d = 0
	}
	return d
}
