package conn

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/netpoll"
	"github.com/wsgate/wsgate/ringbuf"
)

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
	MaxConns         int64         // sockets held at once, across all loops; 0 = unlimited; over -> 503
	MaxMsgRate       float64       // inbound messages per second per connection; 0 = unlimited
	MsgBurst         int           // token bucket size for MaxMsgRate (default max(1, rate))
	// WriteDelay holds output for up to this long so that messages queued in several loop passes
	// leave in one writev: fewer TCP sends (less CPU per message) for up to this much added
	// latency. 0 (the default) flushes at the end of every pass.
	WriteDelay time.Duration
	// Check, if set, sees each request URI during the handshake; a non-zero status rejects it.
	Check func(uri []byte) (status int, reason string)
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
	case c.MaxMsgRate < 0 || c.MsgBurst < 0 || c.MaxConns < 0 || c.MaxQueue < 0 || c.MaxMessage < 0:
		return errors.New("a limit is negative (0 means the default or unlimited)")
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
	if c.MaxMsgRate > 0 && c.MsgBurst <= 0 {
		c.MsgBurst = max(1, int(c.MaxMsgRate))
	}
	return c
}

// Engine runs the connections of one netpoll.Loop and implements netpoll.Handler.
// Apart from Post, Loop, Stats and Config, its methods are for the loop goroutine only.
type Engine struct {
	loop  *netpoll.Loop
	cfg   Config
	h     Handler
	held  *atomic.Int64 // sockets held across all engines of a server, for MaxConns
	Stats Stats

	conns    []*Conn // by fd
	free     []*Conn // pooled Conn structs
	pool     ringbuf.Pool
	rbuf     []byte
	views    [][]byte
	dirty    []*Conn // connections with output queued or a close pending this pass
	flushAt  int64   // WriteDelay: when the pending output must be flushed; 0: nothing pending
	seq      uint32  // connection ID sequence
	rnd      uint64  // xorshift state for ping jitter
	draining bool    // shutting down: no new connections are opened
}

// NewEngine creates the engine for loop. held is shared by every engine of one server (it counts
// sockets for Config.MaxConns); nil gives the engine its own counter.
func NewEngine(loop *netpoll.Loop, cfg Config, h Handler, held *atomic.Int64) *Engine {
	cfg = cfg.WithDefaults()
	if held == nil {
		held = new(atomic.Int64)
	}
	e := &Engine{
		loop:  loop,
		cfg:   cfg,
		h:     h,
		held:  held,
		rbuf:  make([]byte, cfg.ReadBufferSize),
		views: make([][]byte, 0, netpoll.IOVMax),
		rnd:   uint64(loop.Now()) | 1,
	}
	return e
}

// Loop returns the engine's loop. Any goroutine.
func (e *Engine) Loop() *netpoll.Loop { return e.loop }

// Post runs fn on the engine's loop goroutine. Any goroutine. False if the loop has stopped.
func (e *Engine) Post(fn func()) bool { return e.loop.Post(fn) }

// Lookup returns the open connection with this ID (Conn.ID), or nil when it has closed since.
// Loop goroutine only: work that finished elsewhere (a cluster publish's answer) comes back to a
// connection by posting a task that looks it up.
func (e *Engine) Lookup(id uint64) *Conn {
	fd := int(id & fdMask)
	if fd < len(e.conns) {
		if c := e.conns[fd]; c != nil && c.id == id && c.state == stateOpen {
			return c
		}
	}
	return nil
}

// Connections returns the sockets held, handshaking or open, by every engine that shares this
// engine's counter (NewEngine's held: the whole server). Any goroutine.
func (e *Engine) Connections() int64 { return e.held.Load() }

// Each calls fn for every open connection of this engine. Loop goroutine only; fn must not close
// connections other than the one it is given.
func (e *Engine) Each(fn func(c *Conn)) {
	for _, c := range e.conns {
		if c != nil && c.state == stateOpen {
			fn(c)
		}
	}
}

// ID layout: loop index (8 bits) | sequence (32 bits) | fd (24 bits). The fd part turns an ID into
// a slice index of the loop's table; the sequence tells a reused fd's new connection from the old.
const (
	fdBits = 24
	fdMask = 1<<fdBits - 1
)

func (e *Engine) newConn(fd int) *Conn {
	var c *Conn
	if n := len(e.free); n > 0 {
		c = e.free[n-1]
		e.free[n-1] = nil
		e.free = e.free[:n-1]
	} else {
		c = &Conn{e: e}
		c.timer.Init(c.onTimer)
	}
	e.seq++
	c.id = uint64(e.loop.Index()&0xff)<<56 | uint64(e.seq)<<fdBits | uint64(fd&fdMask)
	c.fd = int32(fd)
	return c
}

func (e *Engine) freeConn(c *Conn) {
	*c = Conn{e: e, timer: c.timer}
	e.free = append(e.free, c)
}

// OnAccept implements netpoll.Handler.
func (e *Engine) OnAccept(fd int) {
	if fd > fdMask || e.draining {
		e.loop.Close(fd)
		return
	}
	if err := e.loop.Register(fd); err != nil {
		e.loop.Logger().Error("register accepted socket", "err", err)
		e.loop.Close(fd)
		return
	}
	for fd >= len(e.conns) {
		e.conns = append(e.conns, make([]*Conn, max(1024, len(e.conns)))...)
	}
	c := e.newConn(fd)
	e.conns[fd] = c
	if n := e.held.Add(1); e.cfg.MaxConns > 0 && n > e.cfg.MaxConns {
		c.flags |= flagOverLimit
	}
	now := e.loop.Now()
	c.state = stateHandshake
	e.loop.Wheel().Schedule(&c.timer, now+int64(e.cfg.HandshakeTimeout))
}

// OnEvent implements netpoll.Handler.
func (e *Engine) OnEvent(fd int, events uint32) {
	c := e.conns[fd]
	if c == nil {
		return
	}
	if events&(netpoll.EventRead|netpoll.EventHangup|netpoll.EventError) != 0 {
		c.readable(events&(netpoll.EventHangup|netpoll.EventError) != 0)
	}
	if events&netpoll.EventWrite != 0 && c.state != stateClosed && c.out != nil {
		c.flags &^= flagBlocked
		c.markDirty()
	}
}

// OnPass implements netpoll.Handler: flush every connection with pending output (with
// Config.WriteDelay, once the oldest pending output has waited that long).
func (e *Engine) OnPass(now int64) {
	if e.cfg.WriteDelay > 0 && len(e.dirty) > 0 && !e.draining {
		if e.flushAt == 0 {
			e.flushAt = now + int64(e.cfg.WriteDelay)
		}
		if now < e.flushAt {
			e.loop.WakeAt(e.flushAt)
			return
		}
	}
	e.flushAt = 0
	for i := 0; i < len(e.dirty); i++ { // closing a connection may append to e.dirty
		c := e.dirty[i]
		e.dirty[i] = nil
		c.flags &^= flagDirty
		if c.state == stateClosed {
			e.freeConn(c)
			continue
		}
		c.flush()
		if c.state == stateClosed && c.flags&flagDirty == 0 {
			e.freeConn(c)
		}
	}
	e.dirty = e.dirty[:0]
}

// Shutdown starts a graceful shutdown of this engine: sends close 1001 with reason to every open
// connection and closes handshaking ones. Loop goroutine only (post it).
func (e *Engine) Shutdown(reason string) {
	e.draining = true
	for _, c := range e.conns {
		if c == nil {
			continue
		}
		switch c.state {
		case stateOpen:
			c.Close(ws.StatusGoingAway, reason)
		case stateHandshake:
			c.closeNow(ws.StatusGoingAway)
		}
	}
}

// CloseAll closes every socket at once, without a close handshake (the end of a shutdown that
// timed out). Loop goroutine only.
func (e *Engine) CloseAll() {
	for _, c := range e.conns {
		if c != nil && c.state != stateClosed {
			c.closeNow(ws.StatusAbnormalClosure)
		}
	}
	e.draining = true
	e.OnPass(e.loop.Now())
}

// jitter returns a pseudo-random duration in [0, d) for spreading ping phases (xorshift64).
func (e *Engine) jitter(d int64) int64 {
	if d <= 0 {
		return 0
	}
	x := e.rnd
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	e.rnd = x
	return int64(x % uint64(d))
}
