package conn

import (
	"context"
	"errors"
	"log/slog"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/frame"
	"github.com/wsgate/wsgate/netpoll"
	"github.com/wsgate/wsgate/ringbuf"
)

// Connection states.
const (
	stateHandshake uint8 = iota // waiting for the HTTP request head
	stateOpen                   // WebSocket open
	stateClosing                // we sent a close frame (or an HTTP error); waiting for the peer
	stateClosed                 // socket closed; the struct goes back to the pool after this pass
)

// Flag bits.
const (
	flagDirty     uint16 = 1 << iota // in Engine.dirty for this pass
	flagBlocked                      // writev hit EAGAIN: wait for EPOLLOUT
	flagCloseSent                    // a close frame is queued or sent
	flagCloseRecv                    // the peer's close frame arrived
	flagFailed                       // protocol failure: input is discarded until EOF
	flagHangup                       // close the socket once the output is flushed
	flagOverLimit                    // accepted over Config.MaxConns: answer 503
	flagOpened                       // OnOpen ran, so OnClose must run
	flagPeerEOF                      // the peer shut down its side; close once output is flushed
)

// Conn is one connection. Its methods are for its loop goroutine only (from Handler callbacks or
// tasks posted with Engine.Post); the struct is pooled and reused once Handler.OnClose returns.
type Conn struct {
	e *Engine
	// Data is the application's per-connection state (loop goroutine only).
	Data any

	in    []byte         // pending input: partial request head or partial frame (pooled)
	msg   []byte         // fragmented message being assembled (pooled)
	out   *ringbuf.Queue // pending output, nil when nothing is pending
	timer netpoll.Timer

	id       uint64
	lastRecv int64 // last frame of any kind received
	lastData int64 // last data frame received (idle timeout)
	nextPing int64
	tokAt    int64 // when tokens was last topped up

	fd        int32
	closeCode uint16 // code reported to OnClose
	flags     uint16
	state     uint8
	fragOp    ws.OpCode // opcode of the fragmented message in progress, 0 if none
	utf8      frame.UTF8
	tokens    float32 // rate limit bucket (float32: packs with the small fields above)
}

// ErrClosed is returned by writes to a connection that is closing or closed.
var ErrClosed = errors.New("conn: connection is closing or closed")

// ErrSlowConsumer is returned when a write would exceed Config.MaxQueue; the connection has been
// closed with 1008.
var ErrSlowConsumer = errors.New("conn: outbound queue over limit (slow consumer)")

// ID returns the connection's server-unique ID (logs name connections by it). Any goroutine may
// hold an ID: unlike a *Conn, it never refers to a pooled struct's next user.
func (c *Conn) ID() uint64 { return c.id }

// Engine returns the connection's engine.
func (c *Conn) Engine() *Engine { return c.e }

// Open reports whether the WebSocket is open for writing.
func (c *Conn) Open() bool { return c.state == stateOpen && c.flags&flagCloseSent == 0 }

// Queued returns the outbound bytes not yet taken by the socket.
func (c *Conn) Queued() int {
	if c.out == nil {
		return 0
	}
	return c.out.Len()
}

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

// Close starts the closing handshake (RFC 6455 7.1.2): a close frame with code and reason is
// queued; the socket is closed when the peer answers or Config.CloseTimeout passes.
func (c *Conn) Close(code ws.StatusCode, reason string) {
	if c.state != stateOpen || c.flags&flagCloseSent != 0 {
		return
	}
	c.sendClose(code, reason)
	c.state = stateClosing
	c.armCloseTimeout()
}

func (c *Conn) sendClose(code ws.StatusCode, reason string) {
	c.flags |= flagCloseSent
	c.closeCode = uint16(code)
	var buf [2 + 125 + 14]byte
	f := frame.AppendClose(buf[:0], code, reason)
	c.queue().Write(f)
	c.e.Stats.FramesOut.Add(1)
	c.e.Stats.CloseSent[closeIndex(uint16(code))].Add(1)
}

// fail fails the WebSocket connection (RFC 6455 7.1.7): a close frame with the error's code, no
// more input is processed, and the socket is closed when the peer closes its side or the close
// timeout passes.
func (c *Conn) fail(code ws.StatusCode, reason string) {
	c.debug("connection failed", "close_code", int(code), "reason", reason)
	c.flags |= flagFailed
	if c.flags&flagCloseSent == 0 && c.state == stateOpen {
		c.sendClose(code, reason)
	}
	if c.state == stateOpen {
		c.state = stateClosing
		c.armCloseTimeout()
	}
	// Half-close after the flush tells the peer we are done even if it never answers the close.
	c.flags |= flagHangup
	c.markDirty()
}

// closeNow closes the socket immediately and reports OnClose. Output not yet flushed is dropped.
func (c *Conn) closeNow(code ws.StatusCode) {
	if c.state == stateClosed {
		return
	}
	e := c.e
	if c.flags&flagCloseSent == 0 && c.flags&flagCloseRecv == 0 {
		c.closeCode = uint16(code)
	}
	c.state = stateClosed
	e.loop.Wheel().Stop(&c.timer)
	e.loop.Close(int(c.fd))
	e.conns[c.fd] = nil
	if c.out != nil {
		c.out.Release()
		c.out = nil
	}
	c.releaseIn()
	c.releaseMsg()
	if c.flags&flagOpened != 0 {
		e.h.OnClose(c, ws.StatusCode(c.closeCode))
	}
	// Counted out only after OnClose: whoever sees the count reach zero (Shutdown, a test, a
	// scrape) also sees everything the handler released, such as a connection's subscriptions.
	e.held.Add(-1)
	// The struct goes back to the pool at the end of the pass (it may be in e.dirty).
	c.markDirty()
}

// debug logs an event of this connection at debug level, with its ID and peer address. Nothing
// is formatted (and getpeername(2) is not called) unless debug logging is on.
func (c *Conn) debug(msg string, args ...any) {
	log := c.e.loop.Logger()
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	peer := "unknown"
	if a, ok := netpoll.PeerAddr(int(c.fd)); ok {
		peer = a.String()
	}
	log.Debug(msg, append(args, "conn", c.id, "peer", peer)...)
}

// armCloseTimeout gives the peer Config.CloseTimeout from now to finish closing.
func (c *Conn) armCloseTimeout() {
	c.e.loop.Wheel().Schedule(&c.timer, c.e.loop.Now()+int64(c.e.cfg.CloseTimeout))
}

func (c *Conn) releaseIn() {
	if c.in != nil {
		c.e.pool.Put(c.in)
		c.in = nil
	}
}

func (c *Conn) releaseMsg() {
	if c.msg != nil {
		c.e.pool.Put(c.msg)
		c.msg = nil
	}
}
