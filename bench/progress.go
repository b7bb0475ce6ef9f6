package bench

import (
	"fmt"
	"time"
)

// Progress is a live snapshot a worker reports twice a second. It is a
// value: the worker fills it on its goroutine and sends a copy; the
// coordinator keeps the latest per worker on its own goroutine.
type Progress struct {
	Target   int64 `json:"target"`
	Dials    int64 `json:"dials"`
	Open     int64 `json:"open"`
	Opened   int64 `json:"opened"`
	Failed   int64 `json:"failed"`
	Closed   int64 `json:"closed"`
	Sent     int64 `json:"sent"`     // echo messages sent
	Received int64 `json:"received"` // echo messages received, pubsub deliveries
	Events   int64 `json:"events"`   // subscriptions acknowledged, reconnects
	Errors   int64 `json:"errors"`   // failed attempts plus protocol-level errors
	// At is when the snapshot was taken (wall clock, Unix nanoseconds,
	// comparable across the worker processes of one host): the end of
	// the window its counts cover. In a sum of snapshots it is their mean.
	At int64 `json:"at"`
}

// add sums o's counts into p; At is left to the caller.
func (p *Progress) add(o Progress) {
	p.Target += o.Target
	p.Dials += o.Dials
	p.Open += o.Open
	p.Opened += o.Opened
	p.Failed += o.Failed
	p.Closed += o.Closed
	p.Sent += o.Sent
	p.Received += o.Received
	p.Events += o.Events
	p.Errors += o.Errors
}

// total sums the workers' latest progress. Its At is the mean of theirs:
// when workers progress at equal rates, the sum of their counts is what
// all of them together had at that mean time.
func (s *runState) total() Progress {
	var p Progress
	var at, n int64
	for _, x := range s.progress {
		p.add(x)
		if x.At != 0 {
			at += x.At
			n++
		}
	}
	if n > 0 {
		p.At = at / n
	}
	return p
}

// rateOf is the rate a progress line shows for n events counted at asOf,
// computed as the summary computes its throughput (throughput): during
// setup over the time since the run started; from the measured phase on
// over the time since it started and, once it ended, over its whole length,
// like Result.Throughput. Connect's count is its connections, opened during
// setup: its rate stays over the setup's length.
func (s *runState) rateOf(n int64, asOf time.Time) float64 {
	switch {
	case s.r.Config.Scenario == ScenarioConnect && s.setupTook > 0:
		return throughput(n, s.setupTook)
	case s.measured > 0:
		return throughput(n, s.measured)
	case !s.tMeasure.IsZero():
		return throughput(n, asOf.Sub(s.tMeasure))
	}
	return throughput(n, asOf.Sub(s.t0))
}

// print writes one progress line from the workers' latest progress.
func (s *runState) print() {
	now := time.Now()
	p := s.total()
	cfg := &s.r.Config
	opening := s.phase == "setup" || cfg.Scenario == ScenarioConnect
	var n int64
	switch {
	case opening:
		n = p.Opened
	case cfg.Scenario == ScenarioEcho || cfg.Scenario == ScenarioPubSub || cfg.Scenario == ScenarioSSE:
		n = p.Received
	case cfg.Scenario == ScenarioChurn:
		n = p.Events
	}
	// Worker counts are as of their last report (progressEvery), the
	// publisher's are live.
	asOf := now
	if p.At != 0 {
		asOf = time.Unix(0, p.At)
	}
	var pubd int64
	if s.pub != nil {
		pubd = s.pub.published()
	}
	s.emit(s.line(s.phase, opening, p.Open, n, s.rateOf(n, asOf), pubd, s.rateOf(pubd, now), p.Errors, now))
}

// printDone writes the last progress line from the final result: its count
// and rate are the summary's Ops and Throughput.
func (s *runState) printDone(res *Result) {
	var pubd int64
	if res.PubSub != nil {
		pubd = res.PubSub.Published
	}
	s.emit(s.line("done", res.Scenario == ScenarioConnect, res.OpenAtEnd, res.Ops, res.Throughput,
		pubd, throughput(pubd, s.measured), s.total().Errors, time.Now()))
}

// line formats a progress line: connections open / target, the count n and
// its rate, errors and elapsed time. n counts opened connections while
// opening, else the scenario's operations (messages, deliveries,
// reconnects); pubsub also shows the publisher's count and rate.
func (s *runState) line(phase string, opening bool, open, n int64, rate float64, pubd int64, pubRate float64, errs int64, now time.Time) string {
	cfg := &s.r.Config
	line := fmt.Sprintf("[%s %s] open %d/%d", cfg.Scenario, phase, open, cfg.Conns)
	switch {
	case opening:
		line += fmt.Sprintf(" opened %d (%.0f/s)", n, rate)
	case cfg.Scenario == ScenarioEcho:
		line += fmt.Sprintf(" msgs %d (%.0f/s)", n, rate)
	case cfg.Scenario == ScenarioPubSub || cfg.Scenario == ScenarioSSE:
		line += fmt.Sprintf(" published %d (%.0f/s) delivered %d (%.0f/s)", pubd, pubRate, n, rate)
	case cfg.Scenario == ScenarioChurn:
		line += fmt.Sprintf(" reconnects %d (%.0f/s)", n, rate)
	}
	return line + fmt.Sprintf(" errors %d elapsed %.1fs", errs, now.Sub(s.t0).Seconds())
}

// emit prints a progress line: redrawn in place on a terminal, a plain line
// otherwise.
func (s *runState) emit(line string) {
	if s.r.Live {
		fmt.Fprint(s.r.Log, "\r\x1b[K"+line)
		s.r.liveDrawn = true
	} else {
		fmt.Fprintln(s.r.Log, line)
	}
	s.lastPrint = time.Now()
}

// clearLive ends a live progress line so the next output starts clean.
func (r *Runner) clearLive() {
	if r.Live && r.liveDrawn {
		fmt.Fprintln(r.Log)
		r.liveDrawn = false
	}
}
