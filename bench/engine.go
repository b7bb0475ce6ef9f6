package bench

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// EngineConfig describes the connections an Engine makes. All connections go
// to one server address; they differ only in source address. The caller
// fills it in before NewEngine, which keeps its own copy with defaults
// applied; that copy is immutable, so every loop reads it without locks.
type EngineConfig struct {
	// Addr and Port are the server's IPv4 address and TCP port.
	Addr [4]byte
	Port int
	// Host is the Host header value, Path the request target (path?query).
	Host string
	Path string
	// Header holds extra request header lines, each ending in "\r\n".
	Header string
	// Tokens, when set, are sent as "Authorization: Bearer": connection
	// with global ID i sends Tokens[i % len(Tokens)] (a token file of many
	// users spreads them over the connections).
	Tokens []string
	// Deflate offers permessage-deflate without context takeover (deflate.go).
	Deflate bool
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
	// SSEChannels, when positive, makes every slot a Server-Sent Events stream instead of a
	// WebSocket (sse.go): slot with global ID i requests Path with
	// channel=ChannelPrefix<i % SSEChannels>.
	SSEChannels   int
	ChannelPrefix string
}

// Engine is a client-side event-loop engine: a few goroutines, each with its
// own epoll instance (epoll(7), edge-triggered), own many non-blocking
// sockets. No goroutine exists per connection, and an idle open connection
// owns no buffers, so tens of thousands of connections per process cost
// little more than their kernel sockets.
//
// Its methods are safe from any goroutine, except that Stop, Sync and
// DialAll wait for the loops and so must not be called on a loop goroutine
// (from a Handler callback or a task).
type Engine struct {
	cfg   EngineConfig   // immutable after NewEngine
	h     Handler        // immutable; called on loop goroutines only
	loops []*Loop        // immutable after NewEngine
	base  time.Time      // immutable: the zero of the engine clock (Now)
	wg    sync.WaitGroup // running loop goroutines: Start adds, run ends, Stop waits
	state atomic.Int32   // engineNew, engineRunning, engineStopped; any goroutine
}

// Engine lifecycle states (Engine.state): New -> Running -> Stopped, or
// New -> Stopped for an engine that never started.
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
	if cfg.Deflate {
		cfg.Header += deflateOffer // the offer rides with the extra header lines, built once
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
