package bench

import "sync/atomic"

// EngineStats are counters summed over the loops. They may be read from
// any goroutine while the engine runs.
type EngineStats struct {
	Dials   int64 // connection attempts started
	Opened  int64 // handshakes completed
	Failed  int64 // attempts that ended before the handshake completed
	Closed  int64 // open connections that ended
	Open    int64 // connections open now
	PingsIn int64 // pings answered
}

// Stats sums the loops' counters.
func (e *Engine) Stats() EngineStats {
	var s EngineStats
	for _, l := range e.loops {
		s.Dials += l.stats.dials.Load()
		s.Opened += l.stats.opened.Load()
		s.Failed += l.stats.failed.Load()
		s.Closed += l.stats.closed.Load()
		s.PingsIn += l.stats.pingsIn.Load()
	}
	s.Open = s.Opened - s.Closed
	return s
}

// loopStats are written by the loop goroutine only and read by anyone.
type loopStats struct {
	dials, opened, failed, closed, pingsIn atomic.Int64
}
