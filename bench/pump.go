package bench

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// count returns how many of v are true.
func (s *runState) count(v []bool) int {
	n := 0
	for _, b := range v {
		if b {
			n++
		}
	}
	return n
}

// fatal returns the errors that end the run: a worker failed.
func (s *runState) fatal() error { return errors.Join(s.errs...) }

// pump handles worker events and prints progress until done() holds, the
// deadline passes or ctx ends. It reports whether done() held.
func (s *runState) pump(ctx context.Context, deadline time.Time, done func() bool) bool {
	every := s.r.PlainEvery
	if s.r.Live {
		every = 250 * time.Millisecond
	}
	period := min(every/4, 250*time.Millisecond)
	tick := time.NewTicker(period)
	defer tick.Stop()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		if done() {
			return true
		}
		if len(s.errs) > 0 {
			return false
		}
		select {
		case ev := <-s.events:
			s.handle(ev)
		case <-tick.C:
			if time.Since(s.lastPrint) >= every-period/2 {
				s.print()
			}
		case <-timer.C:
			return done()
		case <-ctx.Done():
			return done()
		}
	}
}

// handle records one worker event: progress, ready, result, error or exit.
func (s *runState) handle(ev workerEvent) {
	i := ev.idx
	if ev.exited {
		s.exited[i] = true
		if ev.err != nil && s.results[i] == nil {
			s.errs = append(s.errs, fmt.Errorf("worker %d: %w", i, ev.err))
		}
		return
	}
	switch ev.msg.Type {
	case "progress":
		if ev.msg.Progress != nil {
			s.progress[i] = *ev.msg.Progress
		}
	case "ready":
		s.ready[i] = true
	case "result":
		s.results[i] = ev.msg.Result
	case "error":
		s.errs = append(s.errs, fmt.Errorf("worker %d: %s", i, ev.msg.Error))
	}
}
