package conn

import (
	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/frame"
	"github.com/wsgate/wsgate/netpoll"
)

// Closing a connection: the closing handshake the server starts (Close, fail), the end of the
// socket once the output is written (hangup), and the release of everything the connection
// holds (closeNow). Loop goroutine only.

// Close starts the closing handshake (RFC 6455 7.1.2): a close frame with code and reason is
// queued behind the output already queued; the socket is closed when the peer answers or
// Config.CloseTimeout passes. (The closes the server decides on its own, for a slow consumer, a
// shutdown, a ping or idle timeout, drop the output not yet started instead, see Conn.cut.)
func (c *Conn) Close(code ws.StatusCode, reason string) {
	if c.state != stateOpen || c.flags&flagCloseSent != 0 {
		return
	}
	c.sendClose(code, reason)
	c.state = stateClosing
	c.armCloseTimeout()
}

// (For a stream, Close ends the body after the events queued and closes the socket once the
// client has read it and closed its side, or at the close timeout.)

func (c *Conn) sendClose(code ws.StatusCode, reason string) {
	if c.mode&modeStream != 0 {
		c.endStream(code) // a stream has no closing handshake: its body ends
		return
	}
	c.flags |= flagCloseSent
	c.closeCode = uint16(code)
	var buf [2 + 125 + 14]byte
	f := frame.AppendClose(buf[:0], code, reason)
	c.queue().Write(f)
	c.e.Stats.FramesOut.Add(1)
	c.e.Stats.CloseSent[closeIndex(uint16(code))].Add(1)
	if c.flags&flagPaused != 0 {
		// Nothing read from now on adds output (data is dropped, pings go unanswered): read
		// again, to see the peer's close or EOF as soon as it comes.
		c.resume()
	}
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
		e.Stats.Open[c.transport()].Add(-1)
		e.live--
	}
	// Counted out only after OnClose: whoever sees the count reach zero (Shutdown, a test, a
	// scrape) also sees everything the handler released, such as a connection's subscriptions.
	e.held.Add(-1)
	// The struct goes back to the pool at the end of the pass (it may be in e.dirty).
	c.markDirty()
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
