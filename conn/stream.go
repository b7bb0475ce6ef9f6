package conn

import (
	"errors"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/frame"
)

// Streams: a request on the WebSocket listener that is not an upgrade (frame.IsUpgrade) goes to
// the handler's OnRequest when the Handler is a StreamHandler. A stream it accepts lives on the
// same loop, in the same Conn, with the same queue, timer and limits as a WebSocket: the
// response head is its greeting, each event one queue unit (so Cut never tears one), a comment
// line is its ping, and its end is the empty last chunk (HTTP/1.1) or the close of the socket
// (HTTP/1.0). The client sends nothing after its request: what it sends anyway is discarded,
// and its EOF ends the stream. Everything here runs on the loop goroutine.

// StreamHandler is a Handler that also answers requests that are not WebSocket upgrades (plain
// HTTP on the WebSocket listener), with a stream such as Server-Sent Events.
type StreamHandler interface {
	Handler
	// OnRequest decides a request that is not an upgrade, once Config.Check (if set) has
	// accepted it. To serve it, it calls c.OpenStream with the response head and may queue the
	// first events (Conn.WriteEvent), then returns status 0; OnClose runs when the stream ends,
	// OnOpen never. To refuse it, it returns an HTTP status in 400..599, extra header lines
	// (each ending in "\r\n", or "") and the body of the error response. r and its slices are
	// valid only during the call.
	OnRequest(c *Conn, r *frame.Request) (status int, headers, body string)
}

// ErrStream is returned by WebSocket writes (WriteMessage, WriteFrame) to a stream.
var ErrStream = errors.New("conn: the connection is an event stream, not a WebSocket")

// Stream reports whether c is a stream (OnRequest accepted it) rather than a WebSocket.
func (c *Conn) Stream() bool { return c.mode&modeStream != 0 }

// Chunked reports whether the stream's body is in chunked transfer coding (an HTTP/1.1 client;
// HTTP/1.0 clients get a body that ends with the connection). Events must be framed to match.
func (c *Conn) Chunked() bool { return c.mode&modeChunked != 0 }

// OpenStream opens c as a stream: head (the complete HTTP response head, copied) is queued as its
// greeting, kept whole by every close. chunked says the body is in chunked transfer coding.
// Only from StreamHandler.OnRequest.
func (c *Conn) OpenStream(head []byte, chunked bool) {
	if c.state != stateHandshake || c.e.checking != c {
		panic("BUG: conn: OpenStream outside OnRequest")
	}
	e := c.e
	c.queue().Write(head)
	c.flags |= flagGreeting | flagOpened
	c.mode = modeStream
	if chunked {
		c.mode |= modeChunked
	}
	c.state = stateOpen
	now := e.loop.Now()
	c.lastRecv, c.lastData = now, now
	c.armHeartbeat(now)
	e.Stats.Streams.Add(1)
	e.Stats.Open[TransportSSE].Add(1)
	e.live++
}

// WriteEvent queues one event of a stream as one unit: prefix copied, then shared by reference
// (shared must never be modified afterwards: it may be queued on many streams at once). Either
// may be empty. The bytes are sent as they are: the caller frames them as chunks when Chunked.
// A write that would take the queue past Config.MaxQueue closes the stream as a slow consumer
// (after the event the socket has partly taken, never in the middle of one): ErrSlowConsumer.
func (c *Conn) WriteEvent(prefix, shared []byte) error {
	if !c.Open() || c.mode&modeStream == 0 {
		return ErrClosed
	}
	if !c.fits(len(prefix) + len(shared)) {
		return ErrSlowConsumer
	}
	q := c.queue()
	if len(prefix) > 0 {
		q.Write(prefix)
		q.RefCont(shared)
	} else {
		q.Ref(shared)
	}
	c.tokAt++
	c.e.Stats.EventsOut.Add(1)
	return nil
}

// Stream framing: the chunked form of a comment line ": ping\n\n", and the last chunk.
var (
	pingComment        = []byte(": ping\n\n")
	pingCommentChunked = []byte("8\r\n: ping\n\n\r\n")
	lastChunk          = []byte("0\r\n\r\n")
)

// streamRequest runs a request head that is not an upgrade through Config.Check and the
// handler's OnRequest. It returns the bytes consumed, 0 when the request was refused.
func (c *Conn) streamRequest(head []byte) int {
	e := c.e
	r, resp, res := frame.ReadRequest(e.resp[:0], head)
	if res.Status != 0 {
		e.resp = resp[:0]
		c.reject(rejectIndex(res.Reason), resp)
		return 0
	}
	e.checking = c
	defer func() { e.checking = nil }()
	if e.cfg.Check != nil {
		if status, reason := e.cfg.Check(c, &r); status != 0 {
			c.rejectStream(RejectRejected, status, "", reason)
			return 0
		}
	}
	status, headers, body := e.stream.OnRequest(c, &r)
	if status != 0 {
		if c.mode&modeStream != 0 {
			panic("BUG: conn: OnRequest opened a stream and refused it")
		}
		c.rejectStream(RejectStream, status, headers, body)
		return 0
	}
	if c.mode&modeStream == 0 {
		panic("BUG: conn: OnRequest accepted a request without OpenStream")
	}
	if e.drain.swept {
		e.drainOpened(c) // a hand-over's request that was under way: its body ends at once
	}
	return len(head)
}

func (c *Conn) rejectStream(reason, status int, headers, body string) {
	e := c.e
	resp := frame.AppendHTTPError(e.resp[:0], status, headers, body)
	e.resp = resp[:0]
	c.reject(reason, resp)
}

// endStream queues the end of a stream's body (the last chunk; nothing for HTTP/1.0, whose body
// ends with the connection) and hangs up once it is written. code is what OnClose reports.
func (c *Conn) endStream(code ws.StatusCode) {
	c.flags |= flagCloseSent | flagHangup
	c.closeCode = uint16(code)
	if c.mode&modeChunked != 0 {
		c.queue().Write(lastChunk)
	}
	c.markDirty()
}

// ping queues a heartbeat: a ping frame, or a comment line on a stream.
func (c *Conn) ping() {
	switch {
	case c.mode&modeStream == 0:
		c.writeFrame(ws.OpPing, nil)
	case c.mode&modeChunked != 0:
		c.queue().Write(pingCommentChunked)
	default:
		c.queue().Write(pingComment)
	}
}
