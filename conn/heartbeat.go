package conn

import (
	"time"
	"unsafe"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/netpoll"
)

// Heartbeats and deadlines. A connection has exactly one timer (the netpoll.Timer node in its
// struct), always set to its earliest deadline: the handshake deadline while handshaking; the
// next ping, the pong-miss deadline (lastRecv + PongMisses x PingInterval) and the idle deadline
// (lastData + IdleTimeout) and the application's deadline (Expirer) while open; the
// close-handshake deadline while closing. Receiving a
// frame only stores a timestamp (read.go); onTimer works out which deadline is due when the timer
// fires and files the timer again for the next one. Everything here runs on the loop goroutine.

// armHandshakeTimeout gives a connection accepted at now Config.HandshakeTimeout to complete
// its handshake.
func (c *Conn) armHandshakeTimeout(now int64) {
	c.e.loop.Wheel().Schedule(&c.timer, now+int64(c.e.cfg.HandshakeTimeout))
}

// armHeartbeat schedules the first timer of an open connection. Pings start at a random phase
// within the first interval, so that connections accepted together do not ping together.
func (c *Conn) armHeartbeat(now int64) {
	cfg := &c.e.cfg
	if cfg.PingInterval > 0 {
		c.nextPing = now + c.e.jitter(int64(cfg.PingInterval)) + 1
	}
	c.scheduleOpen()
}

// scheduleOpen sets the timer to the earliest deadline of an open connection.
func (c *Conn) scheduleOpen() {
	cfg := &c.e.cfg
	var at int64
	if cfg.PingInterval > 0 {
		at = min(c.nextPing, c.lastRecv+int64(cfg.PongMisses)*int64(cfg.PingInterval))
	}
	if cfg.IdleTimeout > 0 {
		idle := c.lastData + int64(cfg.IdleTimeout)
		if at == 0 || idle < at {
			at = idle
		}
	}
	if x := c.e.exp; x != nil {
		if d, _, _ := x.Expiry(c); d != 0 && (at == 0 || d < at) {
			at = d
		}
	}
	if at != 0 {
		c.e.loop.Wheel().Schedule(&c.timer, at)
	} else {
		c.e.loop.Wheel().Stop(&c.timer)
	}
}

// connTimerFired is the function of every connection's timer. It finds the connection its timer
// is embedded in, so that a connection needs no closure of its own (a method value c.onTimer
// was a 16-byte allocation per connection struct). Loop goroutine (the wheel calls it).
func connTimerFired(t *netpoll.Timer, now int64) {
	(*Conn)(unsafe.Add(unsafe.Pointer(t), -int(unsafe.Offsetof(Conn{}.timer)))).onTimer(now)
}

// onTimer is the connection's single timer: it works out which deadline is due.
func (c *Conn) onTimer(now int64) {
	e := c.e
	cfg := &e.cfg
	switch c.state {
	case stateHandshake:
		e.Stats.Rejects[RejectTimeout].Add(1)
		c.debug("handshake timed out")
		c.closeNow(ws.StatusAbnormalClosure)
	case stateClosing:
		e.Stats.CloseTimeouts.Add(1)
		c.debug("close handshake timed out")
		c.closeNow(ws.StatusCode(c.closeCode))
	case stateOpen:
		if x := e.exp; x != nil {
			if at, code, reason := x.Expiry(c); at != 0 && now >= at {
				e.Stats.Expired.Add(1)
				c.debug("application deadline", "close_code", int(code), "reason", reason)
				c.cut()
				c.Close(code, reason)
				return
			}
		}
		if c.mode&modeStream != 0 {
			// A stream's client never sends: its liveness is that it takes what is written.
			// lastRecv is when its output was last seen drained (0: a flush drained it since
			// the timer last ran; the write deadline is PongMisses x PingInterval after it),
			// and it is idle when no event was queued (tokAt counts them) for IdleTimeout.
			if c.out == nil || c.lastRecv == 0 {
				c.lastRecv = now
			}
			if c.tokAt != 0 {
				c.lastData, c.tokAt = now, 0
			}
		}
		if cfg.PingInterval > 0 && now-c.lastRecv >= int64(cfg.PongMisses)*int64(cfg.PingInterval) {
			// Dead peer: tell it why if it can still hear, then close without a long wait (at
			// once if the close frame is out).
			e.Stats.PingTimeouts.Add(1)
			c.debug("ping timeout", "silent_for", time.Duration(now-c.lastRecv))
			c.cut()
			c.sendClose(ws.StatusGoingAway, "ping timeout")
			c.state = stateClosing
			c.flags |= flagFailed
			c.flush()
			if c.out == nil {
				c.closeNow(ws.StatusGoingAway)
				return
			}
			// The socket is full: closing it now would tear the frame it has partly taken.
			// Finish that frame and the close frame if the peer reads within the close
			// timeout, as after any failure.
			c.flags |= flagHangup
			c.armCloseTimeout()
			return
		}
		if cfg.IdleTimeout > 0 && now-c.lastData >= int64(cfg.IdleTimeout) {
			e.Stats.IdleTimeouts.Add(1)
			c.cut()
			c.Close(ws.StatusNormalClosure, "idle timeout")
			return
		}
		if cfg.PingInterval > 0 && now >= c.nextPing {
			// Ping every interval, even a peer heard from recently: skipping the ping after a
			// pong (which always arrives less than an interval before the next ping is due)
			// would halve the ping rate, leaving gaps of two intervals in the traffic that is
			// meant to keep NATs and proxies from dropping the idle connection.
			c.ping()
			e.Stats.PingsSent.Add(1)
			for c.nextPing <= now {
				c.nextPing += int64(cfg.PingInterval)
			}
		}
		c.scheduleOpen()
	}
}

// ExpiryChanged tells an open connection that its Expirer deadline has changed (a refreshed
// token): its timer is filed again for its earliest deadline. A later deadline needs no call (the
// timer finds it when it fires), an earlier one does. Loop goroutine only; allocates nothing.
func (c *Conn) ExpiryChanged() {
	if c.state == stateOpen && c.flags&flagCloseSent == 0 {
		c.scheduleOpen()
	}
}

// armCloseTimeout gives the peer Config.CloseTimeout from now to finish closing.
func (c *Conn) armCloseTimeout() {
	c.e.loop.Wheel().Schedule(&c.timer, c.e.loop.Now()+int64(c.e.cfg.CloseTimeout))
}

// jitter returns a pseudo-random duration in [0, d) for spreading ping phases (xorshift64).
func (e *Engine) jitter(d int64) int64 {
	if d <= 0 {
		return 0
	}
	x := e.rnd
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	e.rnd = x
	return int64(x % uint64(d))
}
