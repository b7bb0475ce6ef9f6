package bench

import (
	"errors"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// readAll reads until EAGAIN (edge-triggered epoll must drain the socket) or
// a short read; hup forces reading to EOF.
func (c *Conn) readAll(hup bool) {
	l := c.loop
	gen := c.gen
	for {
		n, err := ignoringEINTR(unix.Read, int(c.fd), l.rbuf)
		if err != nil {
			if !errors.Is(err, unix.EAGAIN) {
				c.shut(errnoReason(err), 0, err)
			}
			return
		}
		if n == 0 {
			c.onEOF()
			return
		}
		l.stats.bytesIn.Add(int64(n))
		c.consume(l.rbuf[:n])
		if c.gen != gen || c.state == stIdle {
			return
		}
		// A short read drained the socket; new data raises a new edge.
		if n < len(l.rbuf) && !hup {
			return
		}
	}
}

// onEOF closes the slot after the server closed TCP, with the reason its
// state implies.
func (c *Conn) onEOF() {
	switch c.state {
	case stConnecting, stHandshake:
		c.shut(ReasonEOFHandshake, 0, nil)
	case stOpen:
		c.shut(ReasonEOF, 0, nil)
	case stClosing:
		c.shut(ReasonClosed, 0, nil)
	}
}

// consume handles bytes just read. While the handshake is pending they
// accumulate in rq (see upgradeResponse); afterwards frames are parsed in
// place from the loop's read buffer and only an incomplete tail is copied
// into rq.
func (c *Conn) consume(data []byte) {
	if c.state == stHandshake {
		if !c.upgradeResponse(data) {
			return
		}
		data = nil
	}
	l := c.loop
	gen := c.gen
	var buf []byte
	inRQ := c.rq != nil
	if inRQ {
		c.rq = append(c.rq, data...)
		buf = c.rq
	} else {
		buf = data
	}
	var rest []byte
	if l.e.cfg.SSEChannels > 0 {
		rest = c.events(buf)
	} else {
		rest = c.frames(buf)
	}
	if c.gen != gen || c.state == stIdle {
		return
	}
	switch {
	case len(rest) == 0:
		if c.rq != nil {
			l.putBuf(c.rq)
			c.rq = nil
		}
	case inRQ:
		m := copy(c.rq, rest)
		c.rq = c.rq[:m]
	default:
		c.rq = append(l.getBuf(len(rest)), rest...)
	}
}

// frames handles every complete frame at the start of b and returns the
// incomplete tail.
func (c *Conn) frames(b []byte) []byte {
	gen := c.gen
	for len(b) > 0 {
		h, hn, err := parseFrameHeaderExt(b, c.deflate)
		if err != nil {
			c.protocolError(err)
			return nil
		}
		if hn == 0 {
			return b
		}
		end := int64(hn) + h.length
		if int64(len(b)) < end {
			return b
		}
		payload := b[hn:end]
		b = b[end:]
		c.frame(h, payload)
		if c.gen != gen || c.state == stIdle {
			return nil
		}
	}
	return b
}

// frame handles one complete frame: control frames at once (RFC 6455 5.5),
// data frames delivered or reassembled (5.4).
func (c *Conn) frame(h frameHeader, payload []byte) {
	l := c.loop
	switch h.op {
	case ws.OpPing:
		// RFC 6455 5.5.2/5.5.3: answer with a pong carrying the same data.
		l.stats.pingsIn.Add(1)
		if c.state == stOpen {
			c.sendFrame(ws.OpPong, payload)
		}
	case ws.OpPong:
		// Unsolicited pongs are allowed and ignored (5.5.3).
	case ws.OpClose:
		c.onCloseFrame(payload)
	case ws.OpText, ws.OpBinary:
		if c.fragOp != 0 {
			c.protocolError(errors.New("new data frame inside a fragmented message"))
			return
		}
		if h.rsv1 {
			c.zmsg = true
			if h.fin {
				c.deliverCompressed(h.op, payload)
				return
			}
		} else if h.fin {
			c.deliver(h.op, payload)
			return
		}
		c.fragOp = h.op
		c.msg = append(l.getBuf(len(payload)), payload...)
	case ws.OpContinuation:
		if c.fragOp == 0 {
			c.protocolError(errors.New("continuation frame without a message"))
			return
		}
		if len(c.msg)+len(payload) > maxFrameSize {
			c.protocolError(errTooBig)
			return
		}
		c.msg = append(c.msg, payload...)
		if !h.fin {
			return
		}
		gen := c.gen
		op, msg := c.fragOp, c.msg
		c.fragOp = 0
		if c.zmsg {
			c.deliverCompressed(op, msg)
		} else {
			c.deliver(op, msg)
		}
		if c.gen == gen && c.state != stIdle {
			l.putBuf(c.msg)
			c.msg = nil
		}
	}
}

// deliverCompressed inflates a complete compressed message and delivers it.
func (c *Conn) deliverCompressed(op ws.OpCode, z []byte) {
	l := c.loop
	c.zmsg = false
	msg, err := l.inflate(l.getBuf(4*len(z)), z)
	if err != nil {
		l.putBuf(msg)
		c.protocolError(err)
		return
	}
	l.stats.compressedIn.Add(1)
	c.deliver(op, msg)
	l.putBuf(msg)
}

// deliver hands a complete message to Handler.OnMessage while the
// connection is open.
func (c *Conn) deliver(op ws.OpCode, payload []byte) {
	if c.state != stOpen {
		return // data after our close frame is discarded (RFC 6455 1.4)
	}
	c.loop.e.h.OnMessage(c, op, payload)
}
