package bench

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// EngineConfig describes the connections an Engine makes. All connections go
// to one server address; they differ only in source address.
type EngineConfig struct {
	// Addr and Port are the server's IPv4 address and TCP port.
	Addr [4]byte
	Port int
	// Host is the Host header value, Path the request target (path?query).
	Host string
	Path string
	// Header holds extra request header lines, each ending in "\r\n".
	Header string
	// Src spreads connections over source addresses by ID (see SrcRange.At);
	// the zero range leaves the choice to the kernel.
	Src SrcRange
	// Loops is the number of event-loop goroutines (default 1).
	Loops int
	// Slots is the number of connection slots. A slot holds at most one
	// socket at a time and may be dialled again after it closed.
	Slots int
	// SlotBase is the global ID of slot 0, so that IDs stay unique across
	// worker processes (source addresses are chosen by global ID).
	SlotBase int
	// HandshakeTimeout bounds connect plus opening handshake (default 10 s).
	HandshakeTimeout time.Duration
	// CloseTimeout bounds the wait for the server's close frame after the
	// client sent its own (default 5 s).
	CloseTimeout time.Duration
	// Tick is the period of Handler.OnTick on every loop; 0 disables ticks.
	Tick time.Duration
}

// CloseEvent says why a connection slot went back to idle.
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

// Engine is a client-side event-loop engine: a few goroutines, each with its
// own epoll instance (epoll(7), edge-triggered), own many non-blocking
// sockets. No goroutine exists per connection, and an idle open connection
// owns no buffers, so tens of thousands of connections per process cost
// little more than their kernel sockets.
type Engine struct {
	cfg   EngineConfig
	h     Handler
	loops []*Loop
	base  time.Time
	wg    sync.WaitGroup
	state atomic.Int32 // engineNew, engineRunning, engineStopped
}

const (
	engineNew int32 = iota
	engineRunning
	engineStopped
)

// NewEngine creates the loops and their epoll and eventfd descriptors.
// Connections are dialled later with DialAll or Conn.Dial.
func NewEngine(cfg EngineConfig, h Handler) (*Engine, error) {
	if cfg.Loops <= 0 {
		cfg.Loops = 1
	}
	if cfg.Slots < 0 {
		return nil, errors.New("engine: negative slot count")
	}
	if cfg.Loops > cfg.Slots && cfg.Slots > 0 {
		cfg.Loops = cfg.Slots
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.CloseTimeout <= 0 {
		cfg.CloseTimeout = 5 * time.Second
	}
	if cfg.Path == "" {
		cfg.Path = "/"
	}
	if cfg.Port <= 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("engine: bad port %d", cfg.Port)
	}
	e := &Engine{cfg: cfg, h: h, base: time.Now()}
	var seed [16]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return nil, err
	}
	s1, s2 := binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])
	for i := range cfg.Loops {
		l, err := newLoop(e, i, s1, s2+uint64(i))
		if err != nil {
			for _, l := range e.loops {
				l.closeFDs()
			}
			return nil, err
		}
		e.loops = append(e.loops, l)
	}
	return e, nil
}

// Start runs the loop goroutines. It may be called once.
func (e *Engine) Start() {
	if !e.state.CompareAndSwap(engineNew, engineRunning) {
		panic("BUG: Engine.Start called twice")
	}
	for _, l := range e.loops {
		e.wg.Add(1)
		go l.run()
	}
}

// Stop closes every socket without a close handshake, stops the loops and
// waits for them. OnClose is not called for the sockets it closes. Stop on
// an engine that never started just releases its descriptors.
func (e *Engine) Stop() {
	switch {
	case e.state.CompareAndSwap(engineNew, engineStopped):
		for _, l := range e.loops {
			l.closeFDs()
		}
		return
	case e.state.CompareAndSwap(engineRunning, engineStopped):
		for _, l := range e.loops {
			l.post(func(l *Loop) { l.stopping = true })
		}
		e.wg.Wait()
		// Only now: a post racing with the loop's exit may still write
		// to the eventfd until the loop has marked itself dead.
		for _, l := range e.loops {
			l.closeFDs()
		}
	}
}

// Now returns the engine clock: monotonic nanoseconds since NewEngine.
// It is safe from any goroutine.
func (e *Engine) Now() int64 { return int64(time.Since(e.base)) }

// Loops returns the loops; index i owns the slots s with s % len == i.
func (e *Engine) Loops() []*Loop { return e.loops }

// Config returns the configuration with defaults applied.
func (e *Engine) Config() EngineConfig { return e.cfg }

// Sync runs f on each loop goroutine in turn, waiting for one loop to finish
// before posting to the next, so f may accumulate into shared variables
// without locks. It must only be called while the engine runs, from outside
// the loops.
func (e *Engine) Sync(f func(l *Loop)) {
	if e.state.Load() != engineRunning {
		return
	}
	done := make(chan struct{})
	for _, l := range e.loops {
		if l.post(func(l *Loop) {
			f(l)
			done <- struct{}{}
		}) {
			<-done
		}
	}
}

// DialAll dials every idle slot, at rate connections per second over the
// whole engine (rate <= 0: as fast as the loops can). Slot s is due at
// start + s/rate, so the pacing is exact and independent of loop count.
func (e *Engine) DialAll(rate float64) {
	start := e.Now()
	e.Sync(func(l *Loop) {
		l.dialing = true
		l.dialNext = 0
		l.dialStart = start
		l.dialRate = rate
	})
}

// EngineStats are counters summed over the loops. They may be read from
// any goroutine while the engine runs.
type EngineStats struct {
	Dials   int64 // connection attempts started
	Opened  int64 // handshakes completed
	Failed  int64 // attempts that ended before the handshake completed
	Closed  int64 // open connections that ended
	Open    int64 // connections open now
	MsgsIn  int64 // data messages received
	MsgsOut int64 // data messages sent
	PingsIn int64 // pings answered
}

// Stats sums the loops' counters.
func (e *Engine) Stats() EngineStats {
	var s EngineStats
	for _, l := range e.loops {
		s.Dials += l.stats.dials.Load()
		s.Opened += l.stats.opened.Load()
		s.Failed += l.stats.failed.Load()
		s.Closed += l.stats.closed.Load()
		s.MsgsIn += l.stats.msgsIn.Load()
		s.MsgsOut += l.stats.msgsOut.Load()
		s.PingsIn += l.stats.pingsIn.Load()
	}
	s.Open = s.Opened - s.Closed
	return s
}

// loopStats are written by the loop goroutine only and read by anyone.
type loopStats struct {
	dials, opened, failed, closed atomic.Int64
	msgsIn, msgsOut, pingsIn      atomic.Int64
}

// Loop is one event loop: an epoll instance, its goroutine and the slots it
// owns. Every field below the task queue is touched only by that goroutine.
type Loop struct {
	e    *Engine
	idx  int
	epfd int
	evfd int

	mu          sync.Mutex // guards tasks and dead; held while writing evfd
	tasks       []func(*Loop)
	dead        bool // the loop goroutine has exited: tasks are refused
	wakePending atomic.Bool
	stats       loopStats

	conns    []Conn
	dst      unix.SockaddrInet4 // per loop: Connect writes into it
	now      int64              // engine clock at the start of this pass
	rbuf     []byte             // shared read buffer
	wbuf     []byte             // frame scratch for writes
	rng      *rand.Rand
	timers   timerHeap
	closed   []closeNote // closes waiting for OnClose
	free     [][]byte    // loop-local buffer pool
	runq     []func(*Loop)
	stopping bool

	dialing   bool
	dialNext  int
	dialStart int64
	dialRate  float64
	nextTick  int64
}

type closeNote struct {
	c  *Conn
	ev CloseEvent
}

const (
	readBufSize  = 64 << 10
	maxPoolBufs  = 64
	maxPoolCap   = 1 << 20
	minBufSize   = 4 << 10
	maxWriteBack = 64 << 20 // unsent bytes one connection may queue
	dialsPerPass = 256      // bounds one pass so a burst does not starve reads
	wakeMarker   = -1       // epoll data of the eventfd
)

func newLoop(e *Engine, idx int, s1, s2 uint64) (*Loop, error) {
	n := 0
	if e.cfg.Slots > idx {
		n = (e.cfg.Slots - idx + e.cfg.Loops - 1) / e.cfg.Loops
	}
	l := &Loop{
		e:     e,
		idx:   idx,
		epfd:  -1,
		evfd:  -1,
		conns: make([]Conn, n),
		dst:   unix.SockaddrInet4{Addr: e.cfg.Addr, Port: e.cfg.Port},
		rbuf:  make([]byte, readBufSize),
		wbuf:  make([]byte, 0, minBufSize),
		rng:   rand.New(rand.NewPCG(s1, s2)),
	}
	for k := range l.conns {
		c := &l.conns[k]
		c.loop = l
		c.local = int32(k)
		c.slot = int32(k*e.cfg.Loops + idx)
		c.fd = -1
	}
	var err error
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if l.evfd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		l.closeFDs()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeMarker}
	if err = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.evfd, &ev); err != nil {
		l.closeFDs()
		return nil, fmt.Errorf("epoll_ctl eventfd: %w", err)
	}
	return l, nil
}

// closeFDs releases the epoll and eventfd descriptors. It runs after the
// loop goroutine exited (or never started) and marks the loop dead first, so
// no post can write to a descriptor number that may already be reused.
func (l *Loop) closeFDs() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dead = true
	if l.evfd >= 0 {
		unix.Close(l.evfd)
		l.evfd = -1
	}
	if l.epfd >= 0 {
		unix.Close(l.epfd)
		l.epfd = -1
	}
}

// Index returns the loop's position in Engine.Loops.
func (l *Loop) Index() int { return l.idx }

// Engine returns the engine the loop belongs to.
func (l *Loop) Engine() *Engine { return l.e }

// NumConns returns the number of slots the loop owns.
func (l *Loop) NumConns() int { return len(l.conns) }

// Conn returns the loop's k-th slot (0 <= k < NumConns). Loop goroutine only.
func (l *Loop) Conn(k int) *Conn { return &l.conns[k] }

// Now reads the engine clock afresh (use for latency stamps).
func (l *Loop) Now() int64 { return l.e.Now() }

// Rand returns the loop's random source. Loop goroutine only.
func (l *Loop) Rand() *rand.Rand { return l.rng }

// post queues f to run on the loop and wakes it through the eventfd; wakes
// are coalesced while one is pending. It reports false, without queueing,
// when the loop has exited. Safe from any goroutine.
func (l *Loop) post(f func(*Loop)) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead {
		return false
	}
	l.tasks = append(l.tasks, f)
	if l.wakePending.CompareAndSwap(false, true) {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		// eventfd(2): a write only fails when the counter would overflow,
		// which a pending, coalesced wake makes impossible. The write is
		// under mu so evfd cannot be closed meanwhile (see closeFDs).
		unix.Write(l.evfd, one[:])
	}
	return true
}

func (l *Loop) runTasks() {
	l.mu.Lock()
	l.runq, l.tasks = l.tasks, l.runq[:0]
	l.mu.Unlock()
	for i, f := range l.runq {
		f(l)
		l.runq[i] = nil
	}
}

func (l *Loop) run() {
	defer l.e.wg.Done()
	events := make([]unix.EpollEvent, 256)
	for !l.stopping {
		n, err := unix.EpollWait(l.epfd, events, l.waitMillis())
		if err != nil && !errors.Is(err, unix.EINTR) {
			panic("BUG: epoll_wait: " + err.Error())
		}
		l.now = l.e.Now()
		for i := range n {
			ev := &events[i]
			if ev.Fd == wakeMarker {
				var b [8]byte
				unix.Read(l.evfd, b[:])
				l.wakePending.Store(false)
				continue
			}
			l.onEvent(ev)
			l.notifyClosed()
		}
		l.runTasks()
		l.now = l.e.Now()
		l.dialDue()
		l.fireTimers()
		if l.e.cfg.Tick > 0 && l.now >= l.nextTick {
			l.nextTick = l.now + int64(l.e.cfg.Tick)
			l.e.h.OnTick(l)
		}
		l.notifyClosed()
	}
	for k := range l.conns {
		c := &l.conns[k]
		if c.fd >= 0 {
			unix.Close(int(c.fd))
			c.fd = -1
		}
		c.state = stIdle
	}
	// Refuse further tasks, then run those that arrived meanwhile so
	// nobody waits forever for them (Sync).
	l.mu.Lock()
	l.dead = true
	rest := l.tasks
	l.tasks = nil
	l.mu.Unlock()
	for _, f := range rest {
		f(l)
	}
}

// waitMillis returns the epoll_wait timeout: until the earliest of the next
// timer, the next paced dial and the next tick; -1 when nothing is due.
func (l *Loop) waitMillis() int {
	if len(l.closed) > 0 {
		return 0
	}
	next := int64(-1)
	earliest := func(t int64) {
		if next < 0 || t < next {
			next = t
		}
	}
	if len(l.timers) > 0 {
		earliest(l.timers[0].at)
	}
	if l.dialing {
		if l.dialRate <= 0 {
			return 0
		}
		s := l.dialNext*len(l.e.loops) + l.idx
		earliest(l.dialStart + int64(float64(s)*1e9/l.dialRate))
	}
	if l.e.cfg.Tick > 0 {
		earliest(l.nextTick)
	}
	if next < 0 {
		return -1
	}
	d := next - l.e.Now()
	if d <= 0 {
		return 0
	}
	return int((d + int64(time.Millisecond) - 1) / int64(time.Millisecond))
}

func (l *Loop) dialDue() {
	if !l.dialing {
		return
	}
	nloops := len(l.e.loops)
	for budget := dialsPerPass; l.dialNext < len(l.conns) && budget > 0; budget-- {
		if l.dialRate > 0 {
			s := l.dialNext*nloops + l.idx
			if l.dialStart+int64(float64(s)*1e9/l.dialRate) > l.now {
				break
			}
		}
		c := &l.conns[l.dialNext]
		l.dialNext++
		c.Dial()
	}
	if l.dialNext >= len(l.conns) {
		l.dialing = false
	}
}

func (l *Loop) fireTimers() {
	for len(l.timers) > 0 && l.timers[0].at <= l.now {
		t := l.timers.pop()
		c := &l.conns[t.local]
		if c.gen != t.gen {
			continue
		}
		switch t.kind {
		case timerHandshake:
			if c.state == stConnecting || c.state == stHandshake {
				c.shut(ReasonHandshakeTime, 0, nil)
			}
		case timerClose:
			if c.state == stClosing {
				c.shut(ReasonCloseTimeout, 0, nil)
			}
		case timerUser:
			l.e.h.OnTimer(c, t.tag)
		}
	}
}

func (l *Loop) notifyClosed() {
	for i := 0; i < len(l.closed); i++ {
		n := l.closed[i]
		l.closed[i] = closeNote{}
		l.e.h.OnClose(n.c, n.ev)
	}
	l.closed = l.closed[:0]
}

func (l *Loop) onEvent(ev *unix.EpollEvent) {
	k := int(ev.Fd)
	if k < 0 || k >= len(l.conns) {
		panic("BUG: epoll event for unknown slot")
	}
	c := &l.conns[k]
	if c.gen != uint32(ev.Pad) || c.state == stIdle {
		return // event of an earlier socket of this slot
	}
	gen := c.gen
	evs := ev.Events
	if c.state == stConnecting {
		if evs&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		if err := connectResult(int(c.fd)); err != nil {
			c.shut(errnoReason(err), 0, err)
			return
		}
		c.connected()
		if c.gen != gen || c.state == stIdle {
			return
		}
	}
	if evs&unix.EPOLLOUT != 0 && c.wq != nil {
		c.flush()
		if c.gen != gen || c.state == stIdle {
			return
		}
	}
	if evs&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.readAll(evs&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0)
	}
}

// getBuf returns an empty buffer with capacity at least n from the loop's
// pool. Pool discipline: a buffer is put back only at points where no slice
// of it can still be in use (never from shut, which may run inside a
// handler that still holds a payload slice).
func (l *Loop) getBuf(n int) []byte {
	if k := len(l.free); k > 0 && cap(l.free[k-1]) >= n {
		b := l.free[k-1]
		l.free[k-1] = nil
		l.free = l.free[:k-1]
		return b
	}
	return make([]byte, 0, max(n, minBufSize))
}

func (l *Loop) putBuf(b []byte) {
	if cap(b) > maxPoolCap || len(l.free) >= maxPoolBufs {
		return
	}
	l.free = append(l.free, b[:0])
}

// maskKey returns a fresh masking key (RFC 6455 5.3). The key must be
// unpredictable to intermediaries; a per-loop PCG seeded from crypto/rand
// serves that purpose for a load driver at a fraction of crypto/rand's cost.
func (l *Loop) maskKey() (k [4]byte) {
	binary.LittleEndian.PutUint32(k[:], l.rng.Uint32())
	return k
}

// Connection states.
const (
	stIdle       uint8 = iota // no socket
	stConnecting              // connect(2) in progress
	stHandshake               // upgrade request sent, waiting for 101
	stOpen                    // WebSocket open
	stClosing                 // close frame sent, waiting for the server's
)

// Conn is one connection slot. All methods must be called on the goroutine
// of the loop that owns it (from Handler callbacks or Loop tasks).
type Conn struct {
	loop   *Loop
	local  int32  // index in loop.conns
	slot   int32  // index in the engine
	fd     int32  // -1 when idle
	gen    uint32 // bumped by every Dial; epoll data and timers carry it
	state  uint8
	fragOp ws.OpCode // opcode of the message being reassembled, or 0
	dialAt int64     // engine clock at Dial
	wpos   int       // bytes of wq already written
	key    [keyLen]byte
	rq     []byte // unparsed input: partial frame or handshake response
	wq     []byte // output the socket did not take yet
	msg    []byte // fragments of the message being reassembled
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

// Dial starts a connection attempt if the slot is idle: socket, optional
// bind to the slot's source address, non-blocking connect, then the opening
// handshake once connected. Failures are reported through OnClose.
func (c *Conn) Dial() {
	if c.state != stIdle {
		return
	}
	l := c.loop
	c.gen++
	c.dialAt = l.e.Now()
	c.state = stConnecting
	l.stats.dials.Add(1)
	var src *[4]byte
	if l.e.cfg.Src.Len() > 0 {
		a := l.e.cfg.Src.At(c.ID())
		src = &a
	}
	fd, err := newSocket(src)
	if err != nil {
		c.shut(errnoReason(err), 0, err)
		return
	}
	c.fd = int32(fd)
	ev := unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET,
		Fd:     c.local,
		Pad:    int32(c.gen),
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		c.shut(errnoReason(err), 0, err)
		return
	}
	l.timers.push(timer{at: c.dialAt + int64(l.e.cfg.HandshakeTimeout), local: c.local, gen: c.gen, kind: timerHandshake})
	done, err := startConnect(fd, &l.dst)
	if err != nil {
		c.shut(errnoReason(err), 0, err)
		return
	}
	if done {
		c.connected()
	}
}

// connected sends the opening handshake (RFC 6455 4.1) with a fresh nonce.
func (c *Conn) connected() {
	l := c.loop
	var nonce [16]byte
	binary.LittleEndian.PutUint64(nonce[:8], l.rng.Uint64())
	binary.LittleEndian.PutUint64(nonce[8:], l.rng.Uint64())
	c.key = makeKey(nonce)
	c.state = stHandshake
	cfg := &l.e.cfg
	l.wbuf = appendUpgradeRequest(l.wbuf[:0], cfg.Host, cfg.Path, c.key[:], cfg.Header)
	c.write(l.wbuf)
}

// After arranges for Handler.OnTimer(c, tag) to run after d, unless the slot
// is dialled again first.
func (c *Conn) After(d time.Duration, tag uint8) {
	l := c.loop
	l.timers.push(timer{at: l.e.Now() + int64(d), local: c.local, gen: c.gen, kind: timerUser, tag: tag})
}

// Send writes payload as one final, masked message with opcode op. It
// returns false when the connection is not open. payload may alias the
// loop's read buffer: it is copied into the frame before masking.
func (c *Conn) Send(op ws.OpCode, payload []byte) bool {
	if c.state != stOpen {
		return false
	}
	c.loop.stats.msgsOut.Add(1)
	c.sendFrame(op, payload)
	return c.state != stIdle
}

func (c *Conn) sendFrame(op ws.OpCode, payload []byte) {
	l := c.loop
	l.wbuf = appendFrame(l.wbuf[:0], op, payload, l.maskKey())
	c.write(l.wbuf)
}

// Close starts the closing handshake (RFC 6455 5.5.1, 7.1.2) with status
// 1000 on an open connection, or abandons an attempt still in progress.
func (c *Conn) Close() {
	switch c.state {
	case stOpen:
		var b [2]byte
		binary.BigEndian.PutUint16(b[:], uint16(ws.StatusNormalClosure))
		c.sendFrame(ws.OpClose, b[:])
		if c.state == stIdle {
			return
		}
		c.state = stClosing
		l := c.loop
		l.timers.push(timer{at: l.e.Now() + int64(l.e.cfg.CloseTimeout), local: c.local, gen: c.gen, kind: timerClose})
	case stConnecting, stHandshake:
		c.shut(ReasonAborted, 0, nil)
	}
}

// shut closes the socket now and queues OnClose for the end of the current
// event. Buffers are dropped, not pooled: a handler up the stack may still
// hold a payload slice into them.
func (c *Conn) shut(reason string, status int, err error) {
	c.shutEvent(CloseEvent{Reason: reason, Status: status, Err: err})
}

// shutEvent is shut with the whole event; it sets ev.Opened.
func (c *Conn) shutEvent(ev CloseEvent) {
	if c.state == stIdle {
		return
	}
	l := c.loop
	opened := c.state >= stOpen
	ev.Opened = opened
	if c.fd >= 0 {
		unix.Close(int(c.fd)) // also removes it from the epoll set (epoll(7))
		c.fd = -1
	}
	c.state = stIdle
	c.fragOp = 0
	c.rq, c.wq, c.msg, c.wpos = nil, nil, nil, 0
	if opened {
		l.stats.closed.Add(1)
	} else {
		l.stats.failed.Add(1)
	}
	l.closed = append(l.closed, closeNote{c: c, ev: ev})
}

// write sends p now as far as the socket takes it and queues the rest.
// p is not retained.
func (c *Conn) write(p []byte) {
	if c.state == stIdle {
		return
	}
	if c.wq != nil {
		if len(c.wq)-c.wpos+len(p) > maxWriteBack {
			c.shut(ReasonNoBuffers, 0, errors.New("write backlog over limit"))
			return
		}
		c.wq = append(c.wq, p...)
		return
	}
	for len(p) > 0 {
		n, err := unix.Write(int(c.fd), p)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.EAGAIN) {
				break
			}
			c.shut(errnoReason(err), 0, err)
			return
		}
		p = p[n:]
	}
	if len(p) > 0 {
		c.wq = append(c.loop.getBuf(len(p)), p...)
		c.wpos = 0
	}
}

// flush writes queued output after EPOLLOUT.
func (c *Conn) flush() {
	for c.wpos < len(c.wq) {
		n, err := unix.Write(int(c.fd), c.wq[c.wpos:])
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.EAGAIN) {
				return
			}
			c.shut(errnoReason(err), 0, err)
			return
		}
		c.wpos += n
	}
	c.loop.putBuf(c.wq)
	c.wq, c.wpos = nil, 0
}

// readAll reads until EAGAIN (edge-triggered epoll must drain the socket) or
// a short read; hup forces reading to EOF.
func (c *Conn) readAll(hup bool) {
	l := c.loop
	gen := c.gen
	for {
		n, err := unix.Read(int(c.fd), l.rbuf)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.EAGAIN) {
				return
			}
			c.shut(errnoReason(err), 0, err)
			return
		}
		if n == 0 {
			c.onEOF()
			return
		}
		c.consume(l.rbuf[:n])
		if c.gen != gen || c.state == stIdle {
			return
		}
		// A short read drained the socket; new data raises a new edge.
		if n < len(l.rbuf) && !hup {
			return
		}
	}
}

func (c *Conn) onEOF() {
	switch c.state {
	case stConnecting, stHandshake:
		c.shut(ReasonEOFHandshake, 0, nil)
	case stOpen:
		c.shut(ReasonEOF, 0, nil)
	case stClosing:
		c.shut(ReasonClosed, 0, nil)
	}
}

// consume handles bytes just read. While the handshake is pending they
// accumulate in rq; afterwards frames are parsed in place from the loop's
// read buffer and only an incomplete tail is copied into rq.
func (c *Conn) consume(data []byte) {
	l := c.loop
	gen := c.gen
	if c.state == stHandshake {
		if c.rq == nil {
			c.rq = l.getBuf(len(data))
		}
		c.rq = append(c.rq, data...)
		n, status, err := parseUpgradeResponse(c.rq, c.key[:])
		if err != nil {
			reason := ReasonBadHandshake
			if errors.Is(err, errStatus) {
				reason = ReasonHTTPStatus
			}
			c.shut(reason, status, err)
			return
		}
		if n == 0 {
			return
		}
		c.state = stOpen
		l.stats.opened.Add(1)
		l.e.h.OnOpen(c)
		if c.gen != gen || c.state == stIdle {
			return
		}
		m := copy(c.rq, c.rq[n:])
		c.rq = c.rq[:m]
		if m == 0 {
			l.putBuf(c.rq)
			c.rq = nil
			return
		}
		data = nil
	}
	var buf []byte
	inRQ := c.rq != nil
	if inRQ {
		c.rq = append(c.rq, data...)
		buf = c.rq
	} else {
		buf = data
	}
	rest := c.frames(buf)
	if c.gen != gen || c.state == stIdle {
		return
	}
	switch {
	case len(rest) == 0:
		if c.rq != nil {
			l.putBuf(c.rq)
			c.rq = nil
		}
	case inRQ:
		m := copy(c.rq, rest)
		c.rq = c.rq[:m]
	default:
		c.rq = append(l.getBuf(len(rest)), rest...)
	}
}

// frames handles every complete frame at the start of b and returns the
// incomplete tail.
func (c *Conn) frames(b []byte) []byte {
	gen := c.gen
	for len(b) > 0 {
		h, hn, err := parseFrameHeader(b)
		if err != nil {
			c.protocolError(err)
			return nil
		}
		if hn == 0 {
			return b
		}
		end := int64(hn) + h.length
		if int64(len(b)) < end {
			return b
		}
		payload := b[hn:end]
		b = b[end:]
		c.frame(h, payload)
		if c.gen != gen || c.state == stIdle {
			return nil
		}
	}
	return b
}

func (c *Conn) frame(h frameHeader, payload []byte) {
	l := c.loop
	switch h.op {
	case ws.OpPing:
		// RFC 6455 5.5.2/5.5.3: answer with a pong carrying the same data.
		l.stats.pingsIn.Add(1)
		if c.state == stOpen {
			c.sendFrame(ws.OpPong, payload)
		}
	case ws.OpPong:
		// Unsolicited pongs are allowed and ignored (5.5.3).
	case ws.OpClose:
		c.onCloseFrame(payload)
	case ws.OpText, ws.OpBinary:
		if c.fragOp != 0 {
			c.protocolError(errors.New("new data frame inside a fragmented message"))
			return
		}
		if h.fin {
			c.deliver(h.op, payload)
			return
		}
		c.fragOp = h.op
		c.msg = append(l.getBuf(len(payload)), payload...)
	case ws.OpContinuation:
		if c.fragOp == 0 {
			c.protocolError(errors.New("continuation frame without a message"))
			return
		}
		if len(c.msg)+len(payload) > maxFrameSize {
			c.protocolError(errTooBig)
			return
		}
		c.msg = append(c.msg, payload...)
		if !h.fin {
			return
		}
		gen := c.gen
		op, msg := c.fragOp, c.msg
		c.fragOp = 0
		c.deliver(op, msg)
		if c.gen == gen && c.state != stIdle {
			l.putBuf(c.msg)
			c.msg = nil
		}
	}
}

func (c *Conn) deliver(op ws.OpCode, payload []byte) {
	if c.state != stOpen {
		return // data after our close frame is discarded (RFC 6455 1.4)
	}
	c.loop.stats.msgsIn.Add(1)
	c.loop.e.h.OnMessage(c, op, payload)
}

// onCloseFrame answers the server's close frame with the same status code
// (RFC 6455 5.5.1) and closes the socket; when the client started the
// closing handshake this completes it.
func (c *Conn) onCloseFrame(payload []byte) {
	if len(payload) == 1 {
		c.protocolError(errors.New("close frame with a one-byte payload"))
		return
	}
	code := int(ws.StatusNoStatusRcvd)
	if len(payload) >= 2 {
		code = int(binary.BigEndian.Uint16(payload))
	}
	if c.state == stClosing {
		c.shut(ReasonClosed, code, nil)
		return
	}
	text := closeText(payload)
	if len(payload) >= 2 {
		c.sendFrame(ws.OpClose, payload[:2])
	} else {
		c.sendFrame(ws.OpClose, nil)
	}
	c.shutEvent(CloseEvent{Reason: ReasonServerClose, Status: code, Text: text})
}

// maxCloseText bounds the close reason kept from a close frame: a control
// frame's payload is at most 125 bytes (RFC 6455 5.5), 2 of them the code.
const maxCloseText = 123

// closeText returns the reason of a close frame payload (RFC 6455 5.5.1:
// the bytes after the 2-byte code) as a printable string: control
// characters become '?', invalid UTF-8 becomes U+FFFD. It allocates only
// when there is a reason.
func closeText(payload []byte) string {
	if len(payload) <= 2 {
		return ""
	}
	b := payload[2:]
	if len(b) > maxCloseText {
		b = b[:maxCloseText]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(string(b), "\uFFFD"))
}

// protocolError fails the connection (RFC 6455 7.1.7) with status 1002.
func (c *Conn) protocolError(err error) {
	if c.state == stOpen {
		var b [2]byte
		binary.BigEndian.PutUint16(b[:], uint16(ws.StatusProtocolError))
		c.sendFrame(ws.OpClose, b[:])
	}
	c.shut(ReasonProtocol, 0, err)
}
