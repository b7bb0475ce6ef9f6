package bench

import (
	"testing"
	"time"
)

// TestProgressRateWindows: progress rates divide by the window the counts
// cover: up to the workers' (mean) snapshot time during the measured phase,
// the whole measured phase once it ended (as Result.Throughput does), and
// connect's setup for its connections.
func TestProgressRateWindows(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := &runState{r: &Runner{Config: Config{Scenario: ScenarioEcho}}, t0: t0,
		progress: []Progress{{Received: 100, At: t0.Add(5 * time.Second).UnixNano()}, {Received: 300, At: t0.Add(7 * time.Second).UnixNano()}}}
	p := s.total()
	eq(t, "summed count", p.Received, 400)
	eq(t, "mean snapshot time", p.At, t0.Add(6*time.Second).UnixNano())

	asOf := time.Unix(0, p.At)
	eq(t, "setup rate", s.rateOf(400, asOf), 400.0/6)
	s.tMeasure = t0.Add(2 * time.Second)
	eq(t, "measuring rate", s.rateOf(400, asOf), 100)
	eq(t, "counts from before the measured phase", s.rateOf(0, t0.Add(time.Second)), 0)
	s.measured = 8 * time.Second
	eq(t, "rate after the measured phase", s.rateOf(400, asOf), throughput(400, 8*time.Second))

	c := &runState{r: &Runner{Config: Config{Scenario: ScenarioConnect}}, t0: t0, setupTook: 4 * time.Second,
		tMeasure: t0.Add(4 * time.Second), measured: time.Second}
	eq(t, "connect rate", c.rateOf(1000, t0.Add(5*time.Second)), 250)
}
