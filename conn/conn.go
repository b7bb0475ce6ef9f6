package conn

import (
	"context"
	"log/slog"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/frame"
	"github.com/wsgate/wsgate/netpoll"
	"github.com/wsgate/wsgate/ringbuf"
)

// Connection states.
const (
	stateHandshake uint8 = iota // waiting for the HTTP request head
	stateOpen                   // WebSocket open
	stateClosing                // we sent a close frame (or an HTTP error); waiting for the peer
	stateClosed                 // socket closed; the struct goes back to the pool after this pass
)

// Flag bits.
const (
	flagDirty     uint16 = 1 << iota // in Engine.dirty for this pass
	flagBlocked                      // writev hit EAGAIN: wait for EPOLLOUT
	flagCloseSent                    // a close frame is queued or sent
	flagCloseRecv                    // the peer's close frame arrived
	flagFailed                       // protocol failure: input is discarded until EOF
	flagHangup                       // close the socket once the output is flushed
	flagOverLimit                    // accepted over Config.MaxConns: answer 503
	flagOpened                       // OnOpen ran, so OnClose must run
	flagPeerEOF                      // the peer shut down its side; close once output is flushed
	flagPaused                       // queued output passed Config.HighWater: not reading (backpressure)
	flagBacklog                      // c.in may hold complete frames left unprocessed by a pause
	flagRdHup                        // an event reported the peer's FIN: read to EOF, no edge will come
	flagInMessage                    // Handler.OnMessage of this connection is running (writes are answers)
	flagGreeting                     // the 101 response is queued and not started: a Cut keeps it
	flagDeflate                      // permessage-deflate was agreed at the handshake (deflate.go)
	flagInflate                      // the fragmented message in progress is compressed (RSV1 on its first frame)
)

// Mode bits: what a connection carries (the flag word is full).
const (
	modeStream  uint8 = 1 << iota // an HTTP event stream (stream.go), not a WebSocket
	modeChunked                   // the stream's body is in chunked transfer coding (HTTP/1.1)
)

// Conn is one connection. Its methods are for its loop goroutine only (from Handler callbacks or
// tasks posted with Engine.Post); the struct is pooled and reused once Handler.OnClose returns.
//
// Ownership: e is set when the struct is first made and kept while it is pooled and reused;
// every other field is loop goroutine only, set at accept (Engine.OnAccept) and cleared when the
// struct goes back to the pool (Engine.freeConn). The field order packs the struct into a
// 176-byte size class (TestConnSize).
//
// Memory of an idle connection, byte by byte (amd64): the struct is one 176-byte heap object
// (TestNewConnIsOneObject: the timer's function is shared, not a closure per connection), and
// the loop's and the engine's descriptor tables (netpoll.TableSize long, allocated once) hold 4
// and 8 bytes per descriptor. An idle connection holds no buffer: in, msg and out are empty.
//
//	  0  e          8  its engine
//	  8  Data      16  the application's state (an interface: type and pointer)
//	 24  in        24  partial request head or frame (pooled while used)
//	 48  msg       24  fragmented message being assembled (pooled while used)
//	 72  out        8  output queue (pooled while output is pending)
//	 80  timer     40  wheel node: next, pprev, expiry tick, expiry time, function
//	120  id         8  loop | sequence | fd
//	128  lastRecv   8  last frame received (pong-miss deadline)
//	136  lastData   8  last data frame received (idle deadline)
//	144  nextPing   8  next ping due
//	152  tokAt      8  rate limit: when the bucket was last topped up (a stream: events queued)
//	160  fd         4
//	164  closeCode  2
//	166  flags      2  flag* bits
//	168  state      1
//	169  fragOp     1
//	170  utf8       1  incremental UTF-8 state of the text being received
//	171  mode       1  mode* bits: a stream, chunked
//	172  tokens     4  rate limit bucket
type Conn struct {
	e *Engine // immutable for the struct's life
	// Data is the application's per-connection state (loop goroutine only).
	Data any

	in    []byte         // pending input: partial request head or partial frame (pooled)
	msg   []byte         // fragmented message being assembled (pooled)
	out   *ringbuf.Queue // pending output, nil when nothing is pending
	timer netpoll.Timer  // the one timer of every deadline (heartbeat.go), filed in the loop's wheel

	id       uint64 // loop | sequence | fd, see Engine.newConn
	lastRecv int64  // last frame of any kind received; a stream: when its output was last seen drained (heartbeat.go)
	lastData int64  // last data frame received (idle timeout); a stream: last timer run after an event
	nextPing int64  // when the next ping is due
	tokAt    int64  // when tokens was last topped up; a stream: events queued since its timer last ran

	fd        int32
	closeCode uint16    // code reported to OnClose
	flags     uint16    // flag* bits
	state     uint8     // state* value
	fragOp    ws.OpCode // opcode of the fragmented message in progress, 0 if none
	utf8      frame.UTF8
	mode      uint8   // mode* bits (set once, at OnRequest)
	tokens    float32 // rate limit bucket (float32: packs with the small fields above)
}

// ID returns the connection's server-unique ID (logs name connections by it). Any goroutine may
// hold an ID: unlike a *Conn, it never refers to a pooled struct's next user.
func (c *Conn) ID() uint64 { return c.id }

// Engine returns the connection's engine.
func (c *Conn) Engine() *Engine { return c.e }

// Deflate reports whether the connection agreed on permessage-deflate at its handshake: it may
// then be sent compressed frames (WriteFrameDeflate) and may send some. Loop goroutine only.
func (c *Conn) Deflate() bool { return c.flags&flagDeflate != 0 }

// Open reports whether the WebSocket is open for writing.
func (c *Conn) Open() bool { return c.state == stateOpen && c.flags&flagCloseSent == 0 }

// Queued returns the outbound bytes not yet taken by the socket. Once it passes
// Config.HighWater the connection is not read until it drains to Config.LowWater; once a write
// from outside the connection's own OnMessage would take it past Config.MaxQueue the connection
// is closed with 1008. Loop goroutine only.
func (c *Conn) Queued() int {
	if c.out == nil {
		return 0
	}
	return c.out.Len()
}

// debug logs an event of this connection at debug level, with its ID and peer address. Nothing
// is formatted (and getpeername(2) is not called) unless debug logging is on.
func (c *Conn) debug(msg string, args ...any) {
	log := c.e.loop.Logger()
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	peer := "unknown"
	if a, ok := netpoll.PeerAddr(int(c.fd)); ok {
		peer = a.String()
	}
	log.Debug(msg, append(args, "conn", c.id, "peer", peer)...)
}
