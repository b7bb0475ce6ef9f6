package conn

import (
	"errors"
	"time"

	"github.com/wsgate/wsgate/frame"
)

// Config holds the connection limits and timers. A zero limit or timeout takes the documented
// default; a zero optional feature (pings, idle timeout, rate limit, write delay, connection cap)
// is off, as the matching cmd/wsgate flag's 0 is. Validate reports values that cannot work.
type Config struct {
	MaxMessage       int64         // largest message accepted, in bytes (default 16 MiB); larger -> close 1009
	MaxHeaderBytes   int           // largest handshake request head (default 8 KiB); larger -> 431
	ReadBufferSize   int           // the loop's shared read buffer (default 64 KiB)
	HandshakeTimeout time.Duration // default 5 s
	PingInterval     time.Duration // ping period (DefaultPingInterval is 25 s); 0 = no pings, no pong-miss detection
	PongMisses       int           // intervals without any frame before the peer is dead (default 3, at least 2)
	IdleTimeout      time.Duration // close after this long without a data frame; 0 = off
	CloseTimeout     time.Duration // wait for the peer's close frame after ours (default 3 s)
	MaxQueue         int           // outbound bytes queued per connection before 1008 (default 1 MiB)
	// HighWater and LowWater are the read-side backpressure marks (defaults MaxQueue/2 and
	// MaxQueue/4; 0 takes the default). Once a connection's queued output passes HighWater its
	// loop stops reading from it, so TCP flow control pushes back on a client that sends
	// requests faster than it reads the answers; reading resumes when the queue has drained to
	// LowWater. Answers a handler writes from OnMessage are bounded this way (HighWater plus what
	// one message's handler writes) and are never failed as a slow consumer while the queue is
	// at or below HighWater; output the server originates for a connection (a pub/sub fan-out
	// from a task) still ends in 1008 once it passes MaxQueue.
	HighWater  int
	LowWater   int
	MaxConns   int64   // sockets held at once, across all loops; 0 = unlimited; over -> 503
	MaxMsgRate float64 // inbound messages per second per connection; 0 = unlimited
	MsgBurst   int     // token bucket size for MaxMsgRate (default max(1, rate))
	// WriteDelay holds output for up to this long so that messages queued in several loop passes
	// leave in one writev: fewer TCP sends (less CPU per message) for up to this much added
	// latency. 0 (the default) flushes at the end of every pass.
	WriteDelay time.Duration
	// Compression offers permessage-deflate (RFC 7692) without context takeover in either
	// direction: a client's acceptable offer is answered with server_no_context_takeover and
	// client_no_context_takeover (an offer that cannot be honoured is declined, and the
	// connection continues uncompressed). Messages the server writes to such a connection with
	// WriteMessage are compressed when at least CompressionMinSize bytes, and compressed
	// messages it receives are inflated, bounded by MaxMessage after inflation.
	Compression bool
	// CompressionMinSize is the smallest message compressed (default 256 bytes): below it the
	// DEFLATE overhead saves too little to be worth the CPU.
	CompressionMinSize int
	// Check, if set, sees each request (target and headers) on the connection's loop once the
	// WebSocket handshake is otherwise valid, before the 101 is written and before
	// Handler.OnOpen: it routes or authorises the connection. It returns 0 to accept, or an HTTP
	// status in 400..599 and a reason that becomes the response body (the connection is then
	// refused, counted under RejectRejected, and OnOpen/OnClose never run). It may set c.Data
	// for OnOpen to find (cleared with the connection if refused). r is valid only during the
	// call.
	Check func(c *Conn, r *frame.Request) (status int, reason string)
}

// Defaults for Config's zero values.
const (
	DefaultMaxMessage       = 16 << 20
	DefaultMaxHeaderBytes   = 8 << 10
	DefaultReadBufferSize   = 64 << 10
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultPingInterval     = 25 * time.Second
	DefaultPongMisses       = 3
	DefaultCloseTimeout     = 3 * time.Second
	DefaultMaxQueue         = 1 << 20
	DefaultCompressionMin   = 256
)

// Validate reports a setting that cannot work, in the words of the flag that sets it. It is the
// one place these rules live: wsgate.New refuses such a Config, and so does the command line.
func (c Config) Validate() error {
	switch {
	case c.PingInterval < 0:
		return errors.New("ping interval is negative (0 disables pings)")
	case c.PongMisses == 1 || c.PongMisses < 0:
		// With one, a healthy peer whose pong comes a little slower than the previous one would
		// be declared dead: its last frame is the previous pong, a full interval before.
		return errors.New("pong misses must be at least 2 (with 1 a healthy peer whose pong is a little late is closed)")
	case c.IdleTimeout < 0, c.WriteDelay < 0, c.HandshakeTimeout < 0, c.CloseTimeout < 0:
		return errors.New("a timeout or delay is negative (0 means the default or off)")
	case c.MaxMsgRate < 0 || c.MsgBurst < 0 || c.MaxConns < 0 || c.MaxQueue < 0 || c.MaxMessage < 0 ||
		c.HighWater < 0 || c.LowWater < 0 || c.CompressionMinSize < 0:
		return errors.New("a limit is negative (0 means the default or unlimited)")
	}
	d := c.WithDefaults()
	switch {
	case d.HighWater > d.MaxQueue:
		return errors.New("high water is above max queue (reading would never pause before the slow-consumer close)")
	case d.LowWater >= d.HighWater:
		return errors.New("low water must be below high water")
	}
	return nil
}

// WithDefaults returns c with zero limits and timeouts replaced by the defaults.
func (c Config) WithDefaults() Config {
	if c.MaxMessage <= 0 {
		c.MaxMessage = DefaultMaxMessage
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.ReadBufferSize <= 0 {
		c.ReadBufferSize = DefaultReadBufferSize
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.PongMisses == 0 {
		c.PongMisses = DefaultPongMisses
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = DefaultMaxQueue
	}
	if c.HighWater <= 0 {
		c.HighWater = max(1, c.MaxQueue/2)
	}
	if c.LowWater <= 0 {
		c.LowWater = min(c.MaxQueue/4, c.HighWater/2)
	}
	if c.CompressionMinSize <= 0 {
		c.CompressionMinSize = DefaultCompressionMin
	}
	if c.MaxMsgRate > 0 && c.MsgBurst <= 0 {
		c.MsgBurst = max(1, int(c.MaxMsgRate))
	}
	return c
}
