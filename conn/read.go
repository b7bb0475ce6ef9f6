package conn

import (
	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/frame"
	"github.com/wsgate/wsgate/netpoll"
)

// maxReadsPerEvent bounds the reads one connection gets per pass before it is requeued behind the
// other ready connections of its loop (fairness under a flood).
const maxReadsPerEvent = 8

// readable reads until the socket is drained (a short read or EAGAIN), the read budget is spent,
// the connection's output passes Config.HighWater (pause), or the connection closes. The socket is
// edge-triggered: stopping early for the budget requires a Requeue, and a pause ends with one
// (resume). hangup says the event reported the peer's FIN (EPOLLRDHUP) or an error: then a short
// read does not mean drained, since the FIN's edge is this one and no other will come; read on to
// EOF (remembered in flagRdHup, as a paused connection sees the edge but reads later).
func (c *Conn) readable(hangup bool) {
	e := c.e
	if hangup {
		c.flags |= flagRdHup
	}
	hangup = c.flags&flagRdHup != 0
	if c.flags&flagBacklog != 0 {
		// Frames a pause left unprocessed come before anything still in the socket.
		c.flags &^= flagBacklog
		if c.in != nil && c.flags&flagPaused == 0 {
			c.process(c.in, true)
		}
	}
	for reads := 0; c.state != stateClosed; reads++ {
		if c.flags&flagPaused != 0 {
			return // resume requeues the socket: the bytes in it raised no edge we will see again
		}
		if reads == maxReadsPerEvent {
			e.loop.Requeue(int(c.fd))
			return
		}
		// Small pending input moves in front of fresh bytes in the shared buffer; a large
		// partial frame is completed in its own buffer, read into directly.
		direct := c.in != nil && cap(c.in) > len(e.rbuf)/2
		var dst []byte
		if direct {
			dst = c.in[len(c.in):cap(c.in)]
		} else {
			dst = e.rbuf[len(c.in):]
		}
		n, err := netpoll.Read(int(c.fd), dst)
		if n > 0 {
			e.Stats.BytesIn.Add(uint64(n))
			var data []byte
			if direct {
				data = c.in[:len(c.in)+n]
			} else {
				k := copy(e.rbuf, c.in)
				data = e.rbuf[:k+n]
			}
			c.process(data, direct)
			if n < len(dst) && !hangup {
				return
			}
			continue
		}
		switch {
		case err == unix.EAGAIN:
			return
		case err == unix.EINTR:
			continue
		case n == 0 && err == nil:
			c.onEOF()
			return
		default:
			e.Stats.ReadErrors.Add(1)
			c.closeNow(ws.StatusAbnormalClosure)
			return
		}
	}
}

// onEOF handles the peer closing its side of TCP. Output still queued (a handshake response, an
// HTTP error, a close frame) is flushed first: a peer that half-closes still reads.
func (c *Conn) onEOF() {
	if c.out != nil && c.out.Len() > 0 && c.flags&flagPeerEOF == 0 {
		c.flags |= flagPeerEOF | flagHangup
		if c.state != stateClosing {
			c.state = stateClosing
			c.armCloseTimeout()
		}
		c.markDirty()
		return
	}
	code := ws.StatusAbnormalClosure
	if c.flags&flagCloseRecv != 0 {
		code = ws.StatusCode(c.closeCode)
	}
	c.closeNow(code)
}

// process consumes data (all pending input: c.in's bytes followed by the new ones); inIn says
// whether data aliases c.in. Whatever is left incomplete is kept in c.in.
func (c *Conn) process(data []byte, inIn bool) {
	if c.flags&flagFailed != 0 {
		c.keep(c.awaitClose(data), 0, inIn)
		return
	}
	if c.mode&modeStream != 0 {
		// A stream's client sends nothing after its request; whatever it sends is dropped.
		c.keep(nil, 0, inIn)
		return
	}
	if c.state == stateClosing && c.flags&flagCloseRecv != 0 {
		// The close handshake is done: frames after a close are ignored (RFC 6455 5.5.1).
		c.keep(nil, 0, inIn)
		return
	}
	if c.state == stateHandshake {
		n := c.handshake(data)
		if n == 0 || c.state != stateOpen || c.mode&modeStream != 0 {
			if c.state == stateHandshake {
				c.keep(data, 0, inIn)
			} else {
				c.keep(nil, 0, inIn)
			}
			return
		}
		data = data[n:]
	}
	rest, need := c.frames(data)
	if c.state == stateClosed {
		return
	}
	c.keep(rest, need, inIn)
}

// keep stores the unprocessed tail rest in c.in, sized for need bytes when the frame length is
// known, and releases c.in when nothing is left.
func (c *Conn) keep(rest []byte, need int, inIn bool) {
	if c.state == stateClosed {
		return
	}
	if len(rest) == 0 {
		c.releaseIn()
		return
	}
	want := max(need, len(rest))
	if c.in != nil && cap(c.in) >= want {
		// rest may alias c.in (then this is a move to the front) or the shared read buffer.
		c.in = c.in[:copy(c.in[:cap(c.in)], rest)]
		return
	}
	nb := c.e.pool.Get(want)
	nb = nb[:copy(nb[:want], rest)]
	c.releaseIn()
	c.in = nb
}

// awaitClose handles input after the connection failed: nothing is processed any more, but the
// peer's answering close frame, if the byte stream still frames, lets the socket close at once
// instead of at the close timeout. It returns the incomplete tail to keep.
func (c *Conn) awaitClose(p []byte) []byte {
	if c.state != stateClosing || c.flags&flagOpened == 0 || c.mode&modeStream != 0 {
		return nil // an HTTP rejection or a stream: wait for EOF
	}
	for len(p) > 0 {
		h, hn, err := frame.ParseHeader(p)
		if err != nil {
			return nil
		}
		if hn == 0 {
			return p
		}
		total := hn + int(h.Length)
		if h.Length > 125 {
			return nil // not a frame we will look into: discard
		}
		if len(p) < total {
			return p
		}
		if h.OpCode == ws.OpClose {
			c.flags |= flagCloseRecv
			c.closeNow(ws.StatusCode(c.closeCode))
			return nil
		}
		p = p[total:]
	}
	return nil
}

// handshake runs the request head in data once it is complete. It returns the bytes consumed (0
// while the head is incomplete) and leaves the connection open, or closing after an HTTP error.
func (c *Conn) handshake(data []byte) int {
	e := c.e
	end := frame.HeaderEnd(data)
	if end < 0 {
		if len(data) > e.cfg.MaxHeaderBytes {
			c.reject(RejectTooLarge, frame.AppendHTTPError(nil, 431, "", "request header too large\n"))
		}
		return 0
	}
	if end > e.cfg.MaxHeaderBytes {
		c.reject(RejectTooLarge, frame.AppendHTTPError(nil, 431, "", "request header too large\n"))
		return 0
	}
	if c.flags&flagOverLimit != 0 {
		c.reject(RejectMaxConns, frame.AppendHTTPError(nil, 503, "Retry-After: 5\r\n", "server at connection limit\n"))
		return 0
	}
	if e.drain.Refuse && e.drain.active {
		c.reject(RejectShutdown, refusal)
		return 0
	}
	if e.stream != nil && !frame.IsUpgrade(data[:end]) {
		return c.streamRequest(data[:end])
	}
	e.checking = c
	resp, res := frame.UpgradeDeflate(e.resp[:0], data[:end], e.check, e.cfg.Compression)
	e.checking = nil
	e.resp = resp[:0] // grown once if a response did not fit
	if res.Status != 101 {
		c.reject(rejectIndex(res.Reason), resp)
		return 0
	}
	c.queue().Write(resp)
	c.flags |= flagGreeting
	e.Stats.Handshakes.Add(1)
	if res.Deflate {
		c.flags |= flagDeflate
		e.Stats.DeflateHandshakes.Add(1)
	}
	now := e.loop.Now()
	c.state = stateOpen
	c.flags |= flagOpened
	e.live++
	c.lastRecv, c.lastData = now, now
	if e.cfg.MaxMsgRate > 0 {
		c.tokens, c.tokAt = float32(e.cfg.MsgBurst), now
	}
	c.armHeartbeat(now)
	e.Stats.Open[c.transport()].Add(1)
	e.h.OnOpen(c)
	if e.drain.swept {
		e.drainOpened(c)
	}
	return end
}

// reject answers the handshake with an HTTP error and closes once it is flushed.
func (c *Conn) reject(reason int, resp []byte) {
	c.e.Stats.Rejects[reason].Add(1)
	c.debug("handshake refused", "reason", RejectNames[reason])
	c.queue().Write(resp)
	c.state = stateClosing
	c.flags |= flagHangup | flagFailed
	c.armCloseTimeout()
}

// frames parses and handles every complete frame in p. It returns the incomplete tail and, when
// the tail's header is complete, the tail's full frame size (to size its buffer).
func (c *Conn) frames(p []byte) (rest []byte, need int) {
	e := c.e
	var now int64 // read once per batch, at its first complete frame
	for len(p) > 0 {
		h, hn, perr := frame.ParseHeader(p)
		if perr != nil {
			c.protocolError(perr)
			return nil, 0
		}
		if hn == 0 {
			return p, 0
		}
		if err := frame.CheckHeaderDeflate(h, c.fragOp != 0, c.flags&flagDeflate != 0); err != nil {
			c.protocolError(err)
			return nil, 0
		}
		if h.OpCode.IsData() || h.OpCode == ws.OpContinuation {
			if h.Length > e.cfg.MaxMessage-int64(len(c.msg)) {
				c.protocolError(frame.ErrMessageTooBig)
				return nil, 0
			}
		}
		total := hn + int(h.Length)
		if len(p) < total {
			if (h.OpCode == ws.OpText && h.Rsv == 0 ||
				h.OpCode == ws.OpContinuation && c.fragOp == ws.OpText && c.flags&flagInflate == 0) &&
				c.flags&flagCloseSent == 0 {
				// Text is checked as it arrives, and its buffer sized as it grows (textPart).
				// Compressed text is checked once inflated (deflate.go).
				if hn < len(p) {
					return c.textPart(p, h, hn), 0
				}
				return p, 0
			}
			return p, total
		}
		payload := p[hn:total]
		frame.Unmask(payload, h.Mask, 0)
		p = p[total:]
		e.Stats.FramesIn.Add(1)
		if now == 0 {
			now = e.loop.Now()
		}
		c.lastRecv = now
		c.frame(h, payload)
		if c.state == stateClosed || c.flags&(flagFailed|flagCloseRecv) != 0 {
			return nil, 0 // anything after a close or a failure is ignored
		}
		if c.flags&flagCloseSent == 0 && c.Queued() > e.cfg.HighWater {
			// Backpressure: the answers to this peer are piling up. Stop reading (the frames
			// already read wait in c.in) until the queue drains to LowWater (flush, resume).
			c.pause()
			return p, 0
		}
	}
	return nil, 0
}

// pause stops reading from the connection: TCP flow control then pushes back on the peer.
func (c *Conn) pause() {
	c.flags |= flagPaused
	c.e.Stats.ReadPauses.Add(1)
}

// resume ends a pause: at the next pass the frames the pause left in c.in are processed, then the
// socket is read again. The Requeue is what makes it read at all: the bytes waiting in the socket
// raised their edge while the connection was paused, and no other edge will come for them.
func (c *Conn) resume() {
	c.flags &^= flagPaused
	if c.in != nil {
		c.flags |= flagBacklog
	}
	c.e.loop.Requeue(int(c.fd))
}

// textPart checks the part of a text frame that has arrived (p: the frame's header, hn bytes,
// then part of its payload), so that invalid UTF-8 fails the connection at once, not once the
// whole frame is in (RFC 6455 8.1, the "fail fast" of Autobahn's 6.x cases). The part is unmasked,
// checked and added to the message being assembled, as if it had been a fragment of its own; the
// frame's header is rewritten, at the end of p, as a continuation frame carrying the rest of the
// payload (same FIN, the length left, the mask key turned by the bytes taken), and returned as
// the tail to keep: the rest of the payload follows it on the wire. Frame sizes only shrink, so
// the new header fits where the old header and the part were.
func (c *Conn) textPart(p []byte, h ws.Header, hn int) (rest []byte) {
	part := p[hn:]
	frame.Unmask(part, h.Mask, 0)
	if h.OpCode == ws.OpText { // the message's first frame
		c.utf8.Reset()
		if !c.allow() {
			return nil
		}
	}
	if !c.utf8.Write(part) {
		c.protocolError(frame.ErrInvalidUTF8)
		return nil
	}
	left := int(h.Length) - len(part)
	c.fragOp = ws.OpText
	c.growMsg(len(part) + left)
	c.msg = append(c.msg, part...)
	var mask [4]byte
	for i := range mask {
		mask[i] = h.Mask[(i+len(part))%4]
	}
	rest = p[len(p)-frame.HeaderLen(left)-4:]
	b := frame.AppendHeader(rest[:0], h.Fin, ws.OpContinuation, left)
	b[1] |= 0x80 // masked, as every client frame is
	copy(rest[len(b):], mask[:])
	return rest
}

func (c *Conn) protocolError(err *frame.Error) {
	c.fail(err.Code, err.Reason)
}

// frame handles one complete, unmasked frame.
func (c *Conn) frame(h ws.Header, payload []byte) {
	switch h.OpCode {
	case ws.OpPing:
		if c.flags&flagCloseSent == 0 {
			c.writeFrame(ws.OpPong, payload)
			c.e.Stats.PongsSent.Add(1)
		}
		return
	case ws.OpPong:
		return // liveness only (lastRecv)
	case ws.OpClose:
		c.onCloseFrame(payload)
		return
	}
	// Data frames: text, binary, continuation. After our close frame, data is dropped while we
	// wait for the peer's close (RFC 6455 1.4).
	if c.flags&flagCloseSent != 0 {
		return
	}
	op := h.OpCode
	if op == ws.OpContinuation {
		op = c.fragOp
	} else {
		c.utf8.Reset()
		if !c.allow() {
			return
		}
		if h.Rsv != 0 { // RSV1: CheckHeaderDeflate allows no other bit, and only once agreed
			c.flags |= flagInflate
		}
	}
	if c.flags&flagInflate != 0 {
		c.compressedFrame(h, op, payload)
		return
	}
	if op == ws.OpText && !c.utf8.Write(payload) {
		c.protocolError(frame.ErrInvalidUTF8)
		return
	}
	if !h.Fin {
		c.fragOp = op
		c.appendMsg(payload)
		return
	}
	if op == ws.OpText && !c.utf8.Done() {
		c.protocolError(frame.ErrInvalidUTF8)
		return
	}
	msg := payload
	if c.fragOp != 0 {
		c.appendMsg(payload)
		msg = c.msg
	}
	c.fragOp = 0
	c.lastData = c.lastRecv
	c.e.Stats.MessagesIn.Add(1)
	c.flags |= flagInMessage
	c.e.h.OnMessage(c, op, msg)
	c.flags &^= flagInMessage
	c.releaseMsg()
}

// appendMsg adds a fragment to the message being assembled, growing through the pool.
func (c *Conn) appendMsg(p []byte) {
	if len(p) == 0 && c.msg != nil {
		return
	}
	if cap(c.msg)-len(c.msg) < len(p) {
		nb := c.e.pool.Get(max(len(c.msg)+len(p), 2*cap(c.msg)))
		nb = append(nb, c.msg...)
		c.releaseMsg()
		c.msg = nb
	}
	c.msg = append(c.msg, p...)
}

// growMsg makes room for n more bytes in the message being assembled.
func (c *Conn) growMsg(n int) {
	if cap(c.msg)-len(c.msg) < n {
		nb := c.e.pool.Get(len(c.msg) + n)
		nb = append(nb, c.msg...)
		c.releaseMsg()
		c.msg = nb
	}
}

// allow applies the inbound message rate limit (token bucket).
func (c *Conn) allow() bool {
	cfg := &c.e.cfg
	if cfg.MaxMsgRate <= 0 {
		return true
	}
	now := c.lastRecv
	c.tokens += float32(float64(now-c.tokAt) * cfg.MaxMsgRate / 1e9)
	c.tokAt = now
	if c.tokens > float32(cfg.MsgBurst) {
		c.tokens = float32(cfg.MsgBurst)
	}
	if c.tokens < 1 {
		c.e.Stats.RateLimited.Add(1)
		c.fail(ws.StatusPolicyViolation, "message rate limit exceeded")
		return false
	}
	c.tokens--
	return true
}

// onCloseFrame handles the peer's close frame (RFC 6455 5.5.1, 7.1.5, 7.4).
func (c *Conn) onCloseFrame(payload []byte) {
	code, _, err := frame.ParseClose(payload)
	if err != nil {
		c.protocolError(err)
		return
	}
	c.flags |= flagCloseRecv
	c.e.Stats.CloseRecv[closeIndex(uint16(code))].Add(1)
	if c.flags&flagCloseSent == 0 {
		// Echo the peer's code; an empty close is answered with an empty close.
		c.flags |= flagCloseSent
		c.closeCode = uint16(code)
		var f []byte
		var buf [4]byte
		if code == ws.StatusNoStatusRcvd {
			f = frame.AppendHeader(buf[:0], true, ws.OpClose, 0)
		} else {
			f = frame.AppendClose(buf[:0], code, "")
		}
		c.queue().Write(f)
		c.e.Stats.FramesOut.Add(1)
		c.e.Stats.CloseSent[closeIndex(uint16(code))].Add(1)
	} else {
		c.closeCode = uint16(code)
	}
	// The handshake is complete: close TCP as soon as our close frame is out (the server closes
	// first, RFC 6455 7.1.1).
	c.state = stateClosing
	c.flags |= flagHangup
	c.armCloseTimeout()
	c.markDirty()
}

// releaseIn returns the pending-input buffer to the pool.
func (c *Conn) releaseIn() {
	if c.in != nil {
		c.e.pool.Put(c.in)
		c.in = nil
	}
}

// releaseMsg returns the message-assembly buffer to the pool.
func (c *Conn) releaseMsg() {
	if c.msg != nil {
		c.e.pool.Put(c.msg)
		c.msg = nil
	}
}
