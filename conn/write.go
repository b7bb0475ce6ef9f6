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
// the loop pass. Text payloads must be valid UTF-8 (the caller's responsibility). On a connection
// that agreed on permessage-deflate a message of at least Config.CompressionMinSize bytes is
// compressed (RSV1) when that makes it smaller.
func (c *Conn) WriteMessage(op ws.OpCode, payload []byte) error {
	if !c.Open() {
		return ErrClosed
	}
	if c.mode&modeStream != 0 {
		return ErrStream
	}
	if !c.fits(frame.HeaderLen(len(payload)) + len(payload)) {
		return ErrSlowConsumer
	}
	if !c.writeCompressed(op, payload) {
		c.writeFrame(op, payload)
	}
	return nil
}

// WriteFrame queues a complete, already encoded, unmasked frame by reference: b is not copied and
// must never be modified afterwards (it may be queued on many connections at once).
func (c *Conn) WriteFrame(b []byte) error {
	if !c.Open() {
		return ErrClosed
	}
	if c.mode&modeStream != 0 {
		return ErrStream
	}
	if !c.fits(len(b)) {
		return ErrSlowConsumer
	}
	c.queue().Ref(b)
	c.e.Stats.FramesOut.Add(1)
	return nil
}

// fits enforces Config.MaxQueue for a write of n bytes. A connection that lets more than that
// pile up is closed with 1008 "slow consumer": the output not yet started is dropped (the frame
// the socket has partly taken is completed first, so the client sees whole frames and then the
// close frame), so it can neither grow the server's memory nor hold up anyone else. One message is
// always accepted into an empty queue, whatever its size (the message size is bounded by the
// application, e.g. by Config.MaxMessage for echoes). An answer, a write from the connection's own
// OnMessage, is accepted while the queue is at or below Config.HighWater: read-side backpressure
// (read.go) already bounds what answers can queue, so a client that sends faster than it reads is
// slowed down by TCP, not closed.
func (c *Conn) fits(n int) bool {
	q := c.Queued()
	if q == 0 || q+n <= c.e.cfg.MaxQueue || (c.flags&flagInMessage != 0 && q <= c.e.cfg.HighWater) {
		return true
	}
	c.e.Stats.SlowConsumers.Add(1)
	c.cut()
	c.fail(ws.StatusPolicyViolation, "slow consumer")
	return false
}

// cut drops the queued output the socket has not started on, keeping the rest of the frame it has
// partly taken (and the handshake response, if none of it is written yet): what the server queues
// next, a close frame, follows whole frames. The bytes kept are at most one frame.
func (c *Conn) cut() {
	if c.out == nil {
		return
	}
	keep := 0
	if c.flags&flagGreeting != 0 {
		keep = 1
	}
	c.out.Cut(keep)
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
	if q := uint64(c.Queued()); q > e.Stats.QueuePeak.Load() {
		e.Stats.QueuePeak.Store(q) // loop goroutine only writes it: no lost update
	}
	for c.out != nil && c.out.Len() > 0 && c.flags&flagBlocked == 0 {
		e.views = c.out.Views(e.views[:0], netpoll.IOVMax)
		n, err := e.loop.Writev(int(c.fd), e.views)
		clear(e.views) // nothing may keep a released chunk or a shared frame alive
		e.Stats.Writev.Add(1)
		if n > 0 {
			c.out.Advance(n)
			e.Stats.BytesOut.Add(uint64(n))
			c.flags &^= flagGreeting
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
		if c.mode&modeStream != 0 {
			c.lastRecv = 0 // the client took everything: alive (heartbeat.go reads the mark)
		}
	}
	if c.flags&flagPaused != 0 && c.Queued() <= e.cfg.LowWater {
		c.resume()
	}
	if c.out == nil && c.flags&flagHangup != 0 {
		c.hangup()
	}
}
