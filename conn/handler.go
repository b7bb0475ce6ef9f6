package conn

import "github.com/gobwas/ws"

// Handler is what an application implements. Every method runs on the connection's loop
// goroutine; a slow handler delays every connection of that loop.
type Handler interface {
	// OnOpen runs once the handshake has succeeded and the 101 response is queued.
	OnOpen(c *Conn)
	// OnMessage delivers one complete text or binary message. payload is borrowed: it points
	// into the loop's read buffer (or the connection's assembly buffer) and is valid only until
	// OnMessage returns; copy what must outlive the call. Text payloads are valid UTF-8.
	OnMessage(c *Conn, op ws.OpCode, payload []byte)
	// OnClose runs once when a connection that was opened is gone (its socket is closed). code is
	// the close code received from the peer, or the one the server sent, or 1006 when the
	// connection ended without a close frame. c must not be used after OnClose returns.
	OnClose(c *Conn, code ws.StatusCode)
}
