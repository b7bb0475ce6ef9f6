package conn

import (
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/frame"
)

// StatusServiceRestart is close code 1012, "service restart" (IANA WebSocket Close Code Number
// Registry; not in RFC 6455): the server is being replaced, reconnect (with backoff and jitter).
const StatusServiceRestart ws.StatusCode = 1012

// Drain says how an engine closes its connections at the end of its life (Engine.Drain).
type Drain struct {
	Code   ws.StatusCode // close code sent to every connection: 1001 for a shutdown, 1012 for a restart
	Reason string        // close reason (at most 123 bytes)
	// Period spreads the closes evenly: the connections open when the drain starts are closed
	// one after the other over Period, in order of their descriptors, so their clients do not
	// reconnect all in the same second. 0 closes them all at once.
	Period time.Duration
	// Refuse answers every handshake that completes from now on with HTTP 503 and Retry-After
	// (the server is going away and keeps its listeners only to refuse politely). Without it (a
	// hand-over: the listeners are served by a new process) a handshake already under way
	// completes and its connection is drained with the others; once Period is over, at once.
	Refuse bool
	// Done, if set, runs once on the loop goroutine when Period has passed and no WebSocket
	// connection of this engine is left (every close handshake ended, or timed out).
	Done func()
}

// drainState is an Engine's drain in progress. Loop goroutine only.
type drainState struct {
	Drain
	active bool
	swept  bool  // Period is over: every connection was sent its close, new ones get it at once
	start  int64 // loop clock when the drain started
	total  int   // connections open (close not sent) when it started: the pacing's count
	closed int   // connections the drain has closed so far
	cursor int   // next index of Engine.conns to look at
}

// Drain starts closing every WebSocket connection with d.Code, spread over d.Period (see Drain).
// A frame the socket has partly taken is completed first, then the close frame; output not yet
// started is dropped. A second Drain replaces the first's code, reason and Done and ends its
// period at once if d.Period is 0. The pacing is a per-pass budget: each loop pass closes as many
// connections as are due by then and asks the loop to wake up when the next one is due, so a
// drain costs no timer or goroutine per connection. Loop goroutine only (post it).
func (e *Engine) Drain(d Drain) {
	now := e.loop.Now()
	ds := &e.drain
	if !ds.active {
		total := 0 // the connections this drain will close (not those already closing)
		for _, c := range e.conns[:e.top] {
			if drainable(c) {
				total++
			}
		}
		*ds = drainState{Drain: d, active: true, start: now, total: total}
	} else {
		period := d.Period
		if d.Period > 0 {
			period = time.Duration(ds.start + int64(ds.Period) - now) // keep the original end
		}
		ds.Drain = d
		ds.Period = max(0, period)
		ds.start = now
		ds.total -= ds.closed
		ds.closed = 0
	}
	e.draining = true
	e.paceDrain(now)
}

// paceDrain closes the connections due by now (OnPass calls Done once the last has gone). Loop
// goroutine only.
func (e *Engine) paceDrain(now int64) {
	ds := &e.drain
	if !ds.swept {
		end := ds.start + int64(ds.Period)
		if now >= end || ds.total <= 0 {
			// The period is over: whatever is still open (and whatever opened meanwhile).
			for _, c := range e.conns[:e.top] {
				if drainable(c) {
					e.drainConn(c)
				}
			}
			ds.swept = true
		} else {
			// Connection k (from 1) is due at start + (k-1) x Period / total: the first at
			// once, the last one Period/total before the end.
			due := min(ds.total, int(int64(ds.total)*(now-ds.start)/int64(ds.Period))+1)
			for ds.closed < due && ds.cursor < e.top {
				c := e.conns[ds.cursor]
				ds.cursor++
				if drainable(c) {
					e.drainConn(c)
					ds.closed++
				}
			}
			next := end
			if ds.cursor < e.top && ds.closed < ds.total {
				next = ds.start + (int64(ds.closed)*int64(ds.Period)+int64(ds.total)-1)/int64(ds.total)
			}
			e.loop.WakeAt(max(next, now+1))
		}
	}
}

// drainable reports whether the drain still has to close c (a slot of Engine.conns): open,
// and not already sent a close.
func drainable(c *Conn) bool { return c != nil && c.state == stateOpen && c.flags&flagCloseSent == 0 }

// drainConn closes one open connection for the drain: whole frames, then the close frame.
func (e *Engine) drainConn(c *Conn) {
	c.cut()
	c.Close(e.drain.Code, e.drain.Reason)
}

// drainOpened is called when a handshake completes during a drain whose period is over (a
// hand-over's handshake that was under way): the connection is closed at once with the drain's
// code. Loop goroutine only.
func (e *Engine) drainOpened(c *Conn) {
	c.Close(e.drain.Code, e.drain.Reason)
}

// refusal is the HTTP answer to a handshake refused because the server is shutting down.
var refusal = frame.AppendHTTPError(nil, 503, "Retry-After: 5\r\n", "server shutting down\n")
