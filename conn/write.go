package conn

import (
	"errors"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/frame"
	"github.com/wsgate/wsgate/netpoll"
	"github.com/wsgate/wsgate/ringbuf"
)

// Output: frames are queued on the connection's ringbuf.Queue (borrowed from the loop's pool
// while bytes are pending) and flushed at the end of the loop pass with one writev.

// ErrClosed is returned by writes to a connection that is closing or closed.
var ErrClosed = errors.New("conn: connection is closing or closed")

// ErrSlowConsumer is returned when a write would exceed Config.MaxQueue; the connection has been
// closed with 1008.
var ErrSlowConsumer = errors.New("conn: outbound queue over limit (slow consumer)")

func (c *Conn) markDirty() {
	if c.flags&flagDirty == 0 {
		c.flags |= flagDirty
		c.e.dirty = append(c.e.dirty, c)
	}
}

func (c *Conn) queue() *ringbuf.Queue {
	if c.out == nil {
		c.out = c.e.pool.Queue()
	}
	c.markDirty()
	return c.out
}

// WriteMessage queues one message as a single frame, copying payload. It is flushed at the end of
// the loop pass. Text payloads must be valid UTF-8 (the caller's responsibility).
func (c *Conn) WriteMessage(op ws.OpCode, payload []byte) error {
	if !c.Open() {
		return ErrClosed
	}
	if !c.fits(frame.HeaderLen(len(payload)) + len(payload)) {
		return ErrSlowConsumer
	}
	c.writeFrame(op, payload)
	return nil
}

// WriteFrame queues a complete, already encoded, unmasked frame by reference: b is not copied and
// must never be modified afterwards (it may be queued on many connections at once).
func (c *Conn) WriteFrame(b []byte) error {
	if !c.Open() {
		return ErrClosed
	}
	if !c.fits(len(b)) {
		return ErrSlowConsumer
	}
	c.queue().Ref(b)
	c.e.Stats.FramesOut.Add(1)
	return nil
}

// fits enforces Config.MaxQueue: a consumer that lets more than that pile up is closed with 1008
// "slow consumer" and its queue dropped, so it can neither grow the server's memory nor hold up
// anyone else. One message is always accepted into an empty queue, whatever its size (the
// message size is bounded by the application, e.g. by Config.MaxMessage for echoes).
func (c *Conn) fits(n int) bool {
	q := c.Queued()
	if q == 0 || q+n <= c.e.cfg.MaxQueue {
		return true
	}
	c.e.Stats.SlowConsumers.Add(1)
	c.out.Reset()
	c.fail(ws.StatusPolicyViolation, "slow consumer")
	return false
}

func (c *Conn) writeFrame(op ws.OpCode, payload []byte) {
	n := frame.HeaderLen(len(payload)) + len(payload)
	b := c.queue().Grow(n)
	frame.AppendFrame(b[:0], op, payload)
	c.e.Stats.FramesOut.Add(1)
}

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
			e.Stats.WriteErrors.Add(1)
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
