package wsgate

import (
	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/conn"
)

// Echo is the handler of echo mode: every text or binary message is sent back as it came, as one
// frame. It is what benchmarks and conformance suites (Autobahn's fuzzingclient) expect.
type Echo struct{}

// OnOpen implements conn.Handler.
func (Echo) OnOpen(*conn.Conn) {}

// OnMessage implements conn.Handler: the payload is copied into the connection's outbound queue
// before the call returns, as the borrowed slice requires. The echo is an answer (written from
// OnMessage), so a client that sends faster than it reads is slowed down by read-side backpressure
// (conn.Config.HighWater) rather than closed as a slow consumer.
func (Echo) OnMessage(c *conn.Conn, op ws.OpCode, payload []byte) {
	c.WriteMessage(op, payload)
}

// OnClose implements conn.Handler.
func (Echo) OnClose(*conn.Conn, ws.StatusCode) {}
