package conn

import (
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/netpoll"
)

// flush writes the pending output with one writev (a second only after a partial write, to learn
// whether the socket is full), then applies a pending hang-up. Called from Engine.OnPass.
func (c *Conn) flush() {
	e := c.e
	for c.out != nil && c.out.Len() > 0 && c.flags&flagBlocked == 0 {
		e.views = c.out.Views(e.views[:0], netpoll.IOVMax)
		n, err := e.loop.Writev(int(c.fd), e.views)
		clear(e.views) // nothing may keep a released chunk or a shared frame alive
		e.Stats.Writev.Add(1)
		if n > 0 {
			c.out.Advance(n)
			e.Stats.BytesOut.Add(uint64(n))
		}
		switch {
		case err == unix.EAGAIN:
			c.flags |= flagBlocked // resumed by the next EPOLLOUT edge
		case err != nil:
			// EPIPE, ECONNRESET: the peer is gone; nothing more can be delivered.
			e.Stats.ReadErrors.Add(1)
			c.closeNow(ws.StatusAbnormalClosure)
			return
		}
	}
	if c.out != nil && c.out.Len() == 0 {
		c.out.Release()
		c.out = nil
	}
	if c.out == nil && c.flags&flagHangup != 0 {
		c.hangup()
	}
}

// hangup ends the connection once everything queued has been written: after a completed close
// handshake the socket is closed at once (the server closes TCP first, RFC 6455 7.1.1); after a
// failure or an HTTP error the write side is shut down and the socket is closed when the peer
// closes its side (reads are discarded meanwhile) or the close timeout fires, so that unread
// input cannot turn our close frame into a connection reset.
func (c *Conn) hangup() {
	c.flags &^= flagHangup
	if c.flags&(flagCloseRecv|flagPeerEOF) != 0 {
		code := ws.StatusCode(c.closeCode)
		if c.flags&flagCloseRecv == 0 {
			code = ws.StatusAbnormalClosure
		}
		c.closeNow(code)
		return
	}
	netpoll.ShutdownWrite(int(c.fd))
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
	if at != 0 {
		c.e.loop.Wheel().Schedule(&c.timer, at)
	} else {
		c.e.loop.Wheel().Stop(&c.timer)
	}
}

// onTimer is the connection's single timer: it works out which deadline is due.
func (c *Conn) onTimer(now int64) {
	e := c.e
	cfg := &e.cfg
	e.Stats.TimersFired.Add(1)
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
		if cfg.PingInterval > 0 && now-c.lastRecv >= int64(cfg.PongMisses)*int64(cfg.PingInterval) {
			// Dead peer: tell it why if it can still hear, then close without a long wait.
			e.Stats.PingTimeouts.Add(1)
			c.debug("ping timeout", "silent_for", time.Duration(now-c.lastRecv))
			c.sendClose(ws.StatusGoingAway, "ping timeout")
			c.state = stateClosing
			c.flags |= flagFailed
			c.flush()
			c.closeNow(ws.StatusGoingAway)
			return
		}
		if cfg.IdleTimeout > 0 && now-c.lastData >= int64(cfg.IdleTimeout) {
			e.Stats.IdleTimeouts.Add(1)
			c.Close(ws.StatusNormalClosure, "idle timeout")
			return
		}
		if cfg.PingInterval > 0 && now >= c.nextPing {
			// Ping every interval, even a peer heard from recently: skipping the ping after a
			// pong (which always arrives less than an interval before the next ping is due)
			// would halve the ping rate, leaving gaps of two intervals in the traffic that is
			// meant to keep NATs and proxies from dropping the idle connection.
			c.writeFrame(ws.OpPing, nil)
			e.Stats.PingsSent.Add(1)
			for c.nextPing <= now {
				c.nextPing += int64(cfg.PingInterval)
			}
		}
		c.scheduleOpen()
	}
}
