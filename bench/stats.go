package bench

import "sync/atomic"

// EngineStats are counters summed over the loops: a snapshot that
// Engine.Stats (any goroutine) returns by value, owned by its caller.
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

// loopStats are a loop's counters: atomic, added to by that loop's
// goroutine only and loaded by any (Engine.Stats, collectLoop).
type loopStats struct {
	dials, opened, failed, closed, pingsIn atomic.Int64
	// -compression: handshakes that agreed on permessage-deflate, compressed messages received,
	// and the bytes read from every socket (the wire, compressed or not).
	deflated, compressedIn, bytesIn atomic.Int64
}
