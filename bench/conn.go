package bench

import "github.com/gobwas/ws"

// Connection states.
const (
	stIdle       uint8 = iota // no socket
	stConnecting              // connect(2) in progress
	stHandshake               // upgrade request sent, waiting for 101
	stOpen                    // WebSocket open
	stClosing                 // close frame sent, waiting for the server's
)

// Conn is one connection slot. All methods must be called on the goroutine
// of the loop that owns it (from Handler callbacks or Loop tasks), and only
// that goroutine touches its fields; loop, local and slot are immutable
// after newLoop.
type Conn struct {
	loop   *Loop
	local  int32  // index in loop.conns
	slot   int32  // index in the engine
	fd     int32  // -1 when idle
	gen    uint32 // bumped by every Dial; epoll data and timers carry it
	state  uint8
	fragOp ws.OpCode // opcode of the message being reassembled, or 0
	// deflate: the handshake agreed on permessage-deflate; zmsg: the message being reassembled
	// is compressed (RSV1 on its first frame).
	deflate, zmsg bool
	dialAt        int64 // engine clock at Dial
	wpos          int   // bytes of wq already written
	key           [keyLen]byte
	rq            []byte // unparsed input: partial frame or handshake response
	wq            []byte // output the socket did not take yet
	msg           []byte // fragments of the message being reassembled
}

// Index returns the slot's index within its engine (0..Slots-1).
func (c *Conn) Index() int { return int(c.slot) }

// ID returns the slot's global ID: EngineConfig.SlotBase + Index.
func (c *Conn) ID() int { return c.loop.e.cfg.SlotBase + int(c.slot) }

// Loop returns the owning loop.
func (c *Conn) Loop() *Loop { return c.loop }

// IsOpen reports whether the WebSocket is open (handshake done, no close
// frame sent).
func (c *Conn) IsOpen() bool { return c.state == stOpen }

// IsIdle reports whether the slot has no socket.
func (c *Conn) IsIdle() bool { return c.state == stIdle }

// DialedAt returns the engine clock when the current or last attempt began.
func (c *Conn) DialedAt() int64 { return c.dialAt }
