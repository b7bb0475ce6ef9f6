package client

import (
	"math"
	"time"
)

// backoffDelay is the wait before reconnect attempt number step (0 for the first after a lost
// connection or a failed first attempt): BackoffInitial x BackoffMultiplier^step, capped at
// BackoffMax, moved by (2r-1) x J with J = max(Jitter, JitterFraction x delay) and r in [0, 1),
// then kept within [0, BackoffMax]. o has its defaults applied.
func backoffDelay(o *Options, step int, r float64) time.Duration {
	d := float64(o.BackoffInitial) * math.Pow(o.BackoffMultiplier, float64(step))
	maxD := float64(o.BackoffMax)
	if d > maxD || math.IsInf(d, 0) || math.IsNaN(d) {
		d = maxD
	}
	j := math.Max(float64(o.Jitter), o.JitterFraction*d)
	d += (2*r - 1) * j
	return time.Duration(math.Min(maxD, math.Max(0, d)))
}

// delay draws the jitter for step. Any goroutine.
func (c *Client) delay(step int) time.Duration {
	c.randMu.Lock()
	r := c.opts.Rand()
	c.randMu.Unlock()
	return backoffDelay(&c.opts, step, r)
}
