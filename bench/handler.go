package bench

import "github.com/gobwas/ws"

// CloseEvent says why a connection slot went back to idle. The loop
// goroutine builds it and hands a copy to Handler.OnClose; nothing else
// holds it.
type CloseEvent struct {
	// Opened is true when the opening handshake had completed, so the
	// event is a disconnect; false means the connection attempt failed.
	Opened bool
	// Reason is one of the Reason* constants.
	Reason string
	// Status is the HTTP status for ReasonHTTPStatus and the close code
	// (RFC 6455 7.4) for ReasonServerClose; otherwise 0.
	Status int
	// Text is the reason in the server's close frame (RFC 6455 5.5.1) for
	// ReasonServerClose, made printable (see closeText); otherwise "".
	Text string
	// Err is the underlying error, if any.
	Err error
}

// Handler receives a connection's events. Every method is called on the
// goroutine of the loop that owns the connection (or, for OnTick, the loop
// itself), never concurrently for the same loop, so state kept per
// connection or per loop needs no locks.
type Handler interface {
	// OnOpen is called when the opening handshake completed.
	OnOpen(c *Conn)
	// OnMessage is called for each complete text or binary message.
	// payload is valid only during the call: it points into the loop's
	// read buffer or the connection's reassembly buffer.
	OnMessage(c *Conn, op ws.OpCode, payload []byte)
	// OnClose is called once after the slot's socket was closed, whether
	// the attempt failed or an open connection ended. The slot is idle
	// and may be dialled again from here.
	OnClose(c *Conn, ev CloseEvent)
	// OnTimer is called when a timer set with Conn.After fires and the
	// slot has not been dialled again since it was set.
	OnTimer(c *Conn, tag uint8)
	// OnTick is called every EngineConfig.Tick on each loop.
	OnTick(l *Loop)
}
