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

// Expirer is implemented by a Handler whose connections may have to close at a time of its
// choosing (the pub/sub gateway's token expiry). The connection's single timer (heartbeat.go)
// takes Expiry into its earliest deadline: no goroutine, runtime timer or extra field per
// connection. When the deadline comes the connection is closed with code and reason (after the
// frame the socket has partly taken; output not started is dropped). Expiry runs on the loop
// goroutine whenever the timer is filed or fires, so it must be cheap and allocation-free; it is
// first asked just before OnOpen, when c.Data holds what Config.Check stored.
type Expirer interface {
	// Expiry returns when c must close (loop clock, Engine.Loop().Now(), in ns), with the close
	// code and reason to send; at 0 means never.
	Expiry(c *Conn) (at int64, code ws.StatusCode, reason string)
}
