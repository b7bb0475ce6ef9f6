package bench

import (
	"encoding/binary"
	"errors"
	"strings"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// Close starts the closing handshake (RFC 6455 5.5.1, 7.1.2) with status
// 1000 on an open connection, or abandons an attempt still in progress.
func (c *Conn) Close() {
	switch c.state {
	case stOpen:
		if c.loop.e.cfg.SSEChannels > 0 {
			c.shut(ReasonClosed, 0, nil) // a stream has no closing handshake
			return
		}
		var b [2]byte
		binary.BigEndian.PutUint16(b[:], uint16(ws.StatusNormalClosure))
		c.sendFrame(ws.OpClose, b[:])
		if c.state == stIdle {
			return
		}
		c.state = stClosing
		l := c.loop
		l.timers.push(timer{at: l.e.Now() + int64(l.e.cfg.CloseTimeout), local: c.local, gen: c.gen, kind: timerClose})
	case stConnecting, stHandshake:
		c.shut(ReasonAborted, 0, nil)
	}
}

// shut closes the socket now and queues OnClose for the end of the current
// event. Buffers are dropped, not pooled: a handler up the stack may still
// hold a payload slice into them.
func (c *Conn) shut(reason string, status int, err error) {
	c.shutEvent(CloseEvent{Reason: reason, Status: status, Err: err})
}

// shutEvent is shut with the whole event; it sets ev.Opened.
func (c *Conn) shutEvent(ev CloseEvent) {
	if c.state == stIdle {
		return
	}
	l := c.loop
	opened := c.state >= stOpen
	ev.Opened = opened
	if c.fd >= 0 {
		unix.Close(int(c.fd)) // also removes it from the epoll set (epoll(7))
		c.fd = -1
	}
	c.state = stIdle
	c.fragOp, c.deflate, c.zmsg = 0, false, false
	c.rq, c.wq, c.msg, c.wpos = nil, nil, nil, 0
	if opened {
		l.stats.closed.Add(1)
	} else {
		l.stats.failed.Add(1)
	}
	l.closed = append(l.closed, closeNote{c: c, ev: ev})
}

// onCloseFrame answers the server's close frame with the same status code
// (RFC 6455 5.5.1) and closes the socket; when the client started the
// closing handshake this completes it.
func (c *Conn) onCloseFrame(payload []byte) {
	if len(payload) == 1 {
		c.protocolError(errors.New("close frame with a one-byte payload"))
		return
	}
	code := int(ws.StatusNoStatusRcvd)
	if len(payload) >= 2 {
		code = int(binary.BigEndian.Uint16(payload))
	}
	if c.state == stClosing {
		c.shut(ReasonClosed, code, nil)
		return
	}
	text := closeText(payload)
	if len(payload) >= 2 {
		c.sendFrame(ws.OpClose, payload[:2])
	} else {
		c.sendFrame(ws.OpClose, nil)
	}
	c.shutEvent(CloseEvent{Reason: ReasonServerClose, Status: code, Text: text})
}

// maxCloseText bounds the close reason kept from a close frame: a control
// frame's payload is at most 125 bytes (RFC 6455 5.5), 2 of them the code.
const maxCloseText = 123

// closeText returns the reason of a close frame payload (RFC 6455 5.5.1:
// the bytes after the 2-byte code) as a printable string: control
// characters become '?', invalid UTF-8 becomes U+FFFD. It allocates only
// when there is a reason.
func closeText(payload []byte) string {
	if len(payload) <= 2 {
		return ""
	}
	b := payload[2:]
	if len(b) > maxCloseText {
		b = b[:maxCloseText]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(string(b), "\uFFFD"))
}

// protocolError fails the connection (RFC 6455 7.1.7) with status 1002.
func (c *Conn) protocolError(err error) {
	if c.state == stOpen {
		var b [2]byte
		binary.BigEndian.PutUint16(b[:], uint16(ws.StatusProtocolError))
		c.sendFrame(ws.OpClose, b[:])
	}
	c.shut(ReasonProtocol, 0, err)
}
