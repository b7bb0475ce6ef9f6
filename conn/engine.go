package conn

import (
	"sync/atomic"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/frame"
	"github.com/wsgate/wsgate/netpoll"
	"github.com/wsgate/wsgate/ringbuf"
)

// Engine runs the connections of one netpoll.Loop and implements netpoll.Handler.
// Apart from Loop, Post and Connections, its methods are for the loop goroutine only; each field
// says who may touch it.
type Engine struct {
	// Immutable after NewEngine: any goroutine may read them.
	loop *netpoll.Loop
	cfg  Config // with defaults applied
	h    Handler
	exp  Expirer // h as an Expirer, nil if it is not one
	// stream is h as a StreamHandler, nil when it is not one (then every request must be an
	// upgrade).
	stream StreamHandler
	held   *atomic.Int64 // sockets held across all engines of a server, for MaxConns; any goroutine via atomic

	// Any goroutine via atomic: written by the loop goroutine, read by metrics and tests.
	Stats Stats

	// Loop goroutine only.
	conns    []*Conn                            // by fd; netpoll.TableSize long, allocated once
	top      int                                // conns[top:] has never held a connection: walks stop there
	free     []*Conn                            // pooled Conn structs
	pool     ringbuf.Pool                       // chunks for input, message assembly and output queues
	rbuf     []byte                             // the read buffer every connection of the loop reads into
	views    [][]byte                           // a flush's views of the queued output, cap netpoll.IOVMax
	resp     []byte                             // where a handshake response is built before it is queued (reused)
	checking *Conn                              // the connection whose handshake is running, for check
	check    func(*frame.Request) (int, string) // e.runCheck bound once (nil without Config.Check): no closure per handshake
	growFn   func(b []byte, n int) []byte       // e.grow bound once, for frame.Inflate
	dirty    []*Conn                            // connections with output queued or a close pending this pass
	flushAt  int64                              // WriteDelay: when the pending output must be flushed; 0: nothing pending
	seq      uint32                             // connection ID sequence
	rnd      uint64                             // xorshift state for ping jitter
	draining bool                               // a drain or CloseAll started: output is flushed without WriteDelay
	stopped  bool                               // CloseAll ran: accepted sockets are closed at once
	live     int                                // WebSocket connections opened and not yet closed (drain's count)
	drain    drainState                         // Drain's progress
	queued   int64                              // pool.Pending last stored in Stats.QueuedBytes
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
		resp:  make([]byte, 0, 256),
		conns: make([]*Conn, netpoll.TableSize()),
		rnd:   uint64(loop.Now()) | 1,
	}
	if cfg.Check != nil {
		e.check = e.runCheck
	}
	e.exp, _ = h.(Expirer)
	e.growFn = e.grow
	e.stream, _ = h.(StreamHandler)
	return e
}

// runCheck is frame.Upgrade's check: Config.Check for the connection whose handshake is running.
// Loop goroutine only.
func (e *Engine) runCheck(r *frame.Request) (int, string) {
	return e.cfg.Check(e.checking, r)
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
	for _, c := range e.conns[:e.top] {
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
		c.timer.Init(connTimerFired)
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
	if fd > fdMask || e.stopped {
		e.loop.Close(fd)
		return
	}
	if err := e.loop.Register(fd); err != nil {
		e.loop.Logger().Error("register accepted socket", "err", err)
		e.loop.Close(fd)
		return
	}
	for fd >= len(e.conns) { // beyond netpoll.TableSize: the limit was raised since NewEngine
		e.conns = append(e.conns, make([]*Conn, max(1024, len(e.conns)))...)
	}
	c := e.newConn(fd)
	e.conns[fd] = c
	e.top = max(e.top, fd+1)
	if n := e.held.Add(1); e.cfg.MaxConns > 0 && n > e.cfg.MaxConns {
		c.flags |= flagOverLimit
	}
	c.state = stateHandshake
	c.armHandshakeTimeout(e.loop.Now())
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
	if e.drain.active {
		e.paceDrain(now)
	}
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
	if q := e.pool.Pending; q != e.queued {
		e.queued = q
		e.Stats.QueuedBytes.Store(q)
	}
	if e.drain.active && e.drain.swept && e.live == 0 && e.drain.Done != nil {
		done := e.drain.Done
		e.drain.Done = nil
		done()
	}
}

// Shutdown starts a graceful shutdown of this engine at once: close 1001 with reason to every
// open connection (after the frame the socket has partly taken; output not started is dropped),
// and HTTP 503 with Retry-After to every handshake from now on. It is Drain with Code 1001,
// Refuse and no Period. Loop goroutine only (post it).
func (e *Engine) Shutdown(reason string) {
	e.Drain(Drain{Code: ws.StatusGoingAway, Reason: reason, Refuse: true})
}

// CloseAll closes every socket at once, without a close handshake (the end of a shutdown that
// timed out). Loop goroutine only.
func (e *Engine) CloseAll() {
	for _, c := range e.conns[:e.top] {
		if c != nil && c.state != stateClosed {
			c.closeNow(ws.StatusAbnormalClosure)
		}
	}
	e.draining, e.stopped = true, true
	e.OnPass(e.loop.Now())
}
