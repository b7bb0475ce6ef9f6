package bench

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// scenario is a Handler plus the phase hooks the worker drives. Hooks are
// called from the worker goroutine; they reach loop state only through
// Engine.Sync, so everything per loop stays single-goroutine.
type scenario interface {
	Handler
	// setup starts the setup phase (usually: dial every slot).
	setup(e *Engine)
	// ready reports that setup has settled: every slot opened or failed
	// (and, for pubsub, every subscription was answered).
	ready(e *Engine) bool
	// begin starts the measured phase.
	begin(e *Engine)
	// end stops generating load; ctl carries the coordinator's data.
	end(e *Engine, ctl ctlMsg)
	// drained reports that nothing is in flight any more.
	drained(e *Engine) bool
	// collect adds the scenario's counters into r (via Engine.Sync).
	collect(e *Engine, r *Result)
	// progress fills the scenario's live counters; any goroutine.
	progress(p *Progress)
}

// connStats is the per-loop bookkeeping every scenario shares: handshake
// latency, failure and disconnect reasons, time of the last open. Loop
// goroutine only.
type connStats struct {
	handshake    Histogram
	failures     map[string]int64 // failed attempts by reasonKey
	drops        map[string]int64 // disconnects the driver did not ask for, by reasonKey
	clientCloses int64            // disconnects the driver asked for
	lastOpen     int64            // engine clock
	firstDial    int64            // engine clock, 0 = none yet
}

// base implements the connection-level part of every scenario.
type base struct {
	cfg   *Config
	slots int
	loops []connStats
	extra atomic.Int64 // protocol-level errors for progress
}

func newBase(cfg *Config, slots, loops int) *base {
	return &base{cfg: cfg, slots: slots, loops: make([]connStats, loops)}
}

func (b *base) opened(c *Conn) {
	s := &b.loops[c.Loop().Index()]
	now := c.Loop().Now()
	s.handshake.Record(now - c.DialedAt())
	s.lastOpen = now
	if s.firstDial == 0 || c.DialedAt() < s.firstDial {
		s.firstDial = max(c.DialedAt(), 1)
	}
}

func (b *base) closed(c *Conn, ev CloseEvent) {
	s := &b.loops[c.Loop().Index()]
	if s.firstDial == 0 || c.DialedAt() < s.firstDial {
		s.firstDial = max(c.DialedAt(), 1)
	}
	switch {
	case !ev.Opened:
		countReason(&s.failures, reasonKey(ev))
	case ev.Reason == ReasonClosed:
		s.clientCloses++ // our close frame, answered: churn's -hold ran out
	default:
		countReason(&s.drops, reasonKey(ev))
	}
}

func (b *base) settled(e *Engine) bool {
	st := e.Stats()
	return st.Opened+st.Failed >= int64(b.slots)
}

// collectLoop adds loop l's connection counters to r. It runs on l's
// goroutine (inside Engine.Sync) together with the scenario's own counters
// for that loop, so every loop contributes one consistent snapshot even
// while handshakes that started before the stop are still completing.
func (b *base) collectLoop(l *Loop, r *Result) {
	st := &l.stats
	opened, closed := st.opened.Load(), st.closed.Load()
	r.Attempts += st.dials.Load()
	r.Opened += opened
	r.Failed += st.failed.Load()
	r.Disconnects += closed
	r.OpenAtEnd += opened - closed
	r.PingsAnswered += st.pingsIn.Load()
	r.Deflated += st.deflated.Load()
	r.CompressedIn += st.compressedIn.Load()
	r.BytesIn += st.bytesIn.Load()
	s := &b.loops[l.Index()]
	r.Handshake = mergeHist(r.Handshake, &s.handshake)
	r.Failures = mergeCounts(r.Failures, s.failures)
	r.Drops = mergeCounts(r.Drops, s.drops)
	r.ClientCloses += s.clientCloses
	wall := l.e.base.UnixNano()
	if s.firstDial != 0 {
		fd := wall + s.firstDial
		if r.FirstDial == 0 || fd < r.FirstDial {
			r.FirstDial = fd
		}
	}
	if s.lastOpen != 0 {
		r.LastOpen = max(r.LastOpen, wall+s.lastOpen)
	}
}

func (b *base) progressConns(e *Engine, p *Progress) {
	st := e.Stats()
	p.Target = int64(b.slots)
	p.Dials, p.Open, p.Opened, p.Failed, p.Closed = st.Dials, st.Open, st.Opened, st.Failed, st.Closed
	p.Errors = st.Failed + b.extra.Load()
}

func (b *base) OnTimer(*Conn, uint8) {}
func (b *base) OnTick(*Loop)         {}

// ---------------------------------------------------------------- connect

// connectScenario opens every connection at the dial rate and holds them,
// answering pings (the engine does that), until the coordinator stops it.
type connectScenario struct {
	*base
	e *Engine
}

func (s *connectScenario) OnOpen(c *Conn)                     { s.opened(c) }
func (s *connectScenario) OnMessage(*Conn, ws.OpCode, []byte) {}
func (s *connectScenario) OnClose(c *Conn, ev CloseEvent)     { s.closed(c, ev) }
func (s *connectScenario) setup(e *Engine)                    { s.e = e; e.DialAll(s.cfg.DialRate) }
func (s *connectScenario) ready(e *Engine) bool               { return s.settled(e) }
func (s *connectScenario) begin(*Engine)                      {}
func (s *connectScenario) end(*Engine, ctlMsg)                {}
func (s *connectScenario) drained(*Engine) bool               { return true }
func (s *connectScenario) collect(e *Engine, r *Result) {
	e.Sync(func(l *Loop) { s.collectLoop(l, r) })
}
func (s *connectScenario) progress(p *Progress) { s.progressConns(s.e, p) }

// ---------------------------------------------------------------- echo

// echoScenario keeps at most one message in flight per connection. Closed
// loop (MsgRate <= 0): the echo of a message triggers the next. Paced
// (MsgRate > 0): every loop issues its share of the rate on a 1 ms tick to
// connections that have nothing in flight. Round-trip time is measured from
// the send to the complete echo.
type echoScenario struct {
	*base
	e      *Engine
	total  int // connections over all workers, for the rate share
	sentAt []int64
	seq    []uint32
	ls     []echoLoop
}

type echoLoop struct {
	latency   Histogram
	payload   []byte
	measuring bool
	start     int64
	issued    int64
	cursor    int
	rate      float64
	inflight  int64
	sent      atomic.Int64
	received  atomic.Int64
	lost      atomic.Int64
	mismatch  int64
	unexpect  int64
	behind    int64
	_         [64]byte // keep loops' counters on separate cache lines
}

func (s *echoScenario) OnOpen(c *Conn) { s.opened(c) }

func (s *echoScenario) OnClose(c *Conn, ev CloseEvent) {
	s.closed(c, ev)
	i := c.Index()
	if s.sentAt[i] != 0 {
		s.sentAt[i] = 0
		l := &s.ls[c.Loop().Index()]
		l.inflight--
		l.lost.Add(1)
	}
}

// send issues the next message on c; loop goroutine.
func (s *echoScenario) send(c *Conn, l *echoLoop) bool {
	i := c.Index()
	s.seq[i]++
	l.payload[0] = 'a' + byte(s.seq[i]%26)
	s.sentAt[i] = c.Loop().Now()
	if !c.Send(ws.OpText, l.payload) {
		s.sentAt[i] = 0
		return false
	}
	l.inflight++
	l.sent.Add(1)
	return true
}

func (s *echoScenario) OnMessage(c *Conn, op ws.OpCode, p []byte) {
	li := c.Loop().Index()
	l := &s.ls[li]
	i := c.Index()
	at := s.sentAt[i]
	if at == 0 {
		l.unexpect++
		s.extra.Add(1)
		return
	}
	now := c.Loop().Now()
	l.latency.Record(now - at)
	s.sentAt[i] = 0
	l.inflight--
	l.received.Add(1)
	if op != ws.OpText || len(p) != len(l.payload) || p[0] != 'a'+byte(s.seq[i]%26) || (len(p) > 1 && p[len(p)-1] != 'x') {
		l.mismatch++
		s.extra.Add(1)
	}
	if l.measuring && s.cfg.MsgRate <= 0 {
		s.send(c, l)
	}
}

// OnTick paces sends in rate mode.
func (s *echoScenario) OnTick(lp *Loop) {
	l := &s.ls[lp.Index()]
	if !l.measuring || l.rate <= 0 {
		return
	}
	due := int64(float64(lp.Now()-l.start)*l.rate/1e9) - l.issued
	n := lp.NumConns()
	for due > 0 {
		found := false
		for k := 0; k < n; k++ {
			c := lp.Conn(l.cursor)
			l.cursor++
			if l.cursor == n {
				l.cursor = 0
			}
			if c.IsOpen() && s.sentAt[c.Index()] == 0 {
				found = s.send(c, l)
				break
			}
		}
		if !found {
			l.behind += due
			l.issued += due
			return
		}
		l.issued++
		due--
	}
}

func (s *echoScenario) setup(e *Engine) {
	s.e = e
	e.Sync(func(lp *Loop) {
		l := &s.ls[lp.Index()]
		l.payload = make([]byte, s.cfg.Size)
		for i := range l.payload {
			l.payload[i] = 'x'
		}
		if s.cfg.MsgRate > 0 && s.total > 0 {
			l.rate = s.cfg.MsgRate * float64(lp.NumConns()) / float64(s.total)
		}
	})
	e.DialAll(s.cfg.DialRate)
}

func (s *echoScenario) ready(e *Engine) bool { return s.settled(e) }

func (s *echoScenario) begin(e *Engine) {
	e.Sync(func(lp *Loop) {
		l := &s.ls[lp.Index()]
		l.measuring = true
		l.start = lp.Now()
		if s.cfg.MsgRate > 0 {
			return
		}
		for k := range lp.NumConns() {
			if c := lp.Conn(k); c.IsOpen() {
				s.send(c, l)
			}
		}
	})
}

func (s *echoScenario) end(e *Engine, _ ctlMsg) {
	e.Sync(func(lp *Loop) { s.ls[lp.Index()].measuring = false })
}

func (s *echoScenario) drained(e *Engine) bool {
	var n int64
	e.Sync(func(lp *Loop) { n += s.ls[lp.Index()].inflight })
	return n == 0
}

func (s *echoScenario) collect(e *Engine, r *Result) {
	ec := &EchoCounts{Size: s.cfg.Size, TargetRate: s.cfg.MsgRate}
	e.Sync(func(lp *Loop) {
		s.collectLoop(lp, r)
		l := &s.ls[lp.Index()]
		r.Latency = mergeHist(r.Latency, &l.latency)
		ec.Sent += l.sent.Load()
		ec.Received += l.received.Load()
		// Still in flight after the drain: counted as lost.
		ec.Lost += l.lost.Load() + l.inflight
		ec.Mismatched += l.mismatch
		ec.Unexpected += l.unexpect
		ec.Behind += l.behind
	})
	r.Echo = ec
}

func (s *echoScenario) progress(p *Progress) {
	s.progressConns(s.e, p)
	for i := range s.ls {
		p.Sent += s.ls[i].sent.Load()
		p.Received += s.ls[i].received.Load()
	}
}

// ---------------------------------------------------------------- pubsub

// pubsubScenario is the subscriber side: slot with global ID i subscribes to
// channel i % Channels when it opens. Deliveries are checked against the
// channel's sequence: seq above the last one seen is a delivery (a gap in
// between is loss), anything else a duplicate. Publish-to-delivery latency
// comes from the publish time the publisher puts in data.t (wall clock, so
// it is comparable across processes on the host).
type pubsubScenario struct {
	*base
	e    *Engine
	subs []subState
	ls   []subLoop
	// names holds each channel's name and the subscribe message for it,
	// built once so the hot path does not format strings.
	names [][]byte
	subs0 [][]byte
}

type subState struct {
	last       int64
	subscribed bool
	settled    bool
}

type subLoop struct {
	latency    Histogram
	msg        serverMsg
	tally      []ChannelTally
	errs       map[string]int64 // {"op":"error"} messages by serverErrorKey
	subscribed atomic.Int64
	subErrs    atomic.Int64
	settled    atomic.Int64 // acked, refused, or closed before an answer
	delivered  atomic.Int64
	duplicated int64
	unexpected int64
	final      []int64
	_          [64]byte
}

func (s *pubsubScenario) channelOf(c *Conn) int { return c.ID() % s.cfg.Channels }

func (s *pubsubScenario) OnOpen(c *Conn) {
	s.opened(c)
	c.Send(ws.OpText, s.subs0[s.channelOf(c)])
}

func (s *pubsubScenario) OnClose(c *Conn, ev CloseEvent) {
	s.closed(c, ev)
	st := &s.subs[c.Index()]
	if ev.Opened && !st.settled {
		st.settled = true
		s.ls[c.Loop().Index()].settled.Add(1)
	}
}

func (s *pubsubScenario) OnMessage(c *Conn, op ws.OpCode, p []byte) {
	l := &s.ls[c.Loop().Index()]
	m := &l.msg
	if op != ws.OpText || parseServerMsg(p, m) != nil {
		l.unexpected++
		s.extra.Add(1)
		return
	}
	st := &s.subs[c.Index()]
	switch string(m.op) {
	case "message":
		if !st.subscribed || !m.hasSeq {
			l.unexpected++
			return
		}
		if m.hasTime {
			l.latency.Record(time.Now().UnixNano() - m.stamp)
		}
		if m.seq > st.last {
			st.last = m.seq
			l.delivered.Add(1)
		} else {
			l.duplicated++
		}
	case "subscribed":
		ch := s.channelOf(c)
		if st.subscribed && m.hasSeq && m.seq == st.last && string(m.channel) == string(s.names[ch]) {
			// A notice of the channel's epoch at our position (a cluster channel's first
			// epoch): nothing was lost or skipped. A numbering that restarted would not come
			// at our position and counts as unexpected below.
			return
		}
		if st.subscribed || !m.hasSeq || string(m.channel) != string(s.names[ch]) {
			l.unexpected++
			return
		}
		st.subscribed, st.last = true, m.seq
		l.tally[ch].Subs++
		l.tally[ch].SumBase += m.seq
		l.subscribed.Add(1)
		if !st.settled {
			st.settled = true
			l.settled.Add(1)
		}
	case "error":
		s.extra.Add(1)
		countReason(&l.errs, serverErrorKey(m))
		if !st.settled {
			st.settled = true
			l.settled.Add(1)
			l.subErrs.Add(1)
		}
	}
}

func (s *pubsubScenario) setup(e *Engine) {
	s.e = e
	e.DialAll(s.cfg.DialRate)
}

func (s *pubsubScenario) ready(e *Engine) bool {
	var settled int64
	for i := range s.ls {
		settled += s.ls[i].settled.Load()
	}
	return e.Stats().Failed+settled >= int64(s.slots)
}

func (s *pubsubScenario) begin(*Engine) {}

func (s *pubsubScenario) end(e *Engine, ctl ctlMsg) {
	e.Sync(func(lp *Loop) { s.ls[lp.Index()].final = ctl.Final })
}

// drained: every subscriber still open has seen its channel's final seq.
func (s *pubsubScenario) drained(e *Engine) bool {
	done := true
	e.Sync(func(lp *Loop) {
		final := s.ls[lp.Index()].final
		for k := range lp.NumConns() {
			c := lp.Conn(k)
			st := &s.subs[c.Index()]
			if !c.IsOpen() || !st.subscribed {
				continue
			}
			if ch := s.channelOf(c); ch < len(final) && st.last < final[ch] {
				done = false
				return
			}
		}
	})
	return done
}

func (s *pubsubScenario) collect(e *Engine, r *Result) {
	pc := &PubSubCounts{Channels: s.cfg.Channels, Tally: make([]ChannelTally, s.cfg.Channels)}
	e.Sync(func(lp *Loop) {
		s.collectLoop(lp, r)
		l := &s.ls[lp.Index()]
		r.Latency = mergeHist(r.Latency, &l.latency)
		pc.Subscribed += l.subscribed.Load()
		pc.SubscribeErrors += l.subErrs.Load()
		pc.Delivered += l.delivered.Load()
		pc.Duplicated += l.duplicated
		pc.Unexpected += l.unexpected
		pc.ErrorReasons = mergeCounts(pc.ErrorReasons, l.errs)
		for i, t := range l.tally {
			pc.Tally[i].Subs += t.Subs
			pc.Tally[i].SumBase += t.SumBase
		}
	})
	r.PubSub = pc
}

func (s *pubsubScenario) progress(p *Progress) {
	s.progressConns(s.e, p)
	for i := range s.ls {
		p.Received += s.ls[i].delivered.Load()
		p.Events += s.ls[i].subscribed.Load()
	}
}

// serverErrorKey is the reason key of a protocol error message,
// {"op":"error","code":N,"reason":"..."}: "error N: reason".
func serverErrorKey(m *serverMsg) string {
	key := "error"
	if m.code != 0 {
		key += " " + strconv.FormatInt(m.code, 10)
	}
	if len(m.reason) == 0 {
		return key + ": (no reason given)"
	}
	return key + ": " + truncate(string(m.reason), maxDetail)
}

// subscribeMsg returns the subscribe request for a channel name.
func subscribeMsg(name string) []byte {
	return []byte(`{"op":"subscribe","channel":"` + name + `"}`)
}

// ---------------------------------------------------------------- churn

// Timer tags of the churn scenario.
const (
	tagHold   uint8 = iota + 1 // connection lifetime is over: disconnect
	tagRedial                  // backoff wait is over: reconnect
)

// churnScenario keeps every slot cycling: open, live for Hold, close, wait
// Backoff.Delay(0), reconnect. A failed attempt waits Backoff.Delay(n) for
// the n-th consecutive failure; a successful open resets n.
type churnScenario struct {
	*base
	e       *Engine
	attempt []uint8
	ever    []bool
	ls      []churnLoop
}

type churnLoop struct {
	measuring  bool
	connects   atomic.Int64
	reconnects atomic.Int64
	_          [64]byte
}

func (s *churnScenario) OnOpen(c *Conn) {
	s.opened(c)
	i := c.Index()
	l := &s.ls[c.Loop().Index()]
	l.connects.Add(1)
	if s.ever[i] {
		l.reconnects.Add(1)
	}
	s.ever[i] = true
	s.attempt[i] = 0
	if l.measuring {
		c.After(s.cfg.Hold, tagHold)
	}
}

func (s *churnScenario) OnMessage(*Conn, ws.OpCode, []byte) {}

func (s *churnScenario) OnClose(c *Conn, ev CloseEvent) {
	s.closed(c, ev)
	l := &s.ls[c.Loop().Index()]
	if !l.measuring {
		return
	}
	i := c.Index()
	n := 0
	if !ev.Opened {
		n = int(s.attempt[i])
		if s.attempt[i] < 63 {
			s.attempt[i]++
		}
	}
	c.After(s.cfg.Backoff.Delay(n, c.Loop().Rand()), tagRedial)
}

func (s *churnScenario) OnTimer(c *Conn, tag uint8) {
	if !s.ls[c.Loop().Index()].measuring {
		return
	}
	switch tag {
	case tagHold:
		c.Close()
	case tagRedial:
		c.Dial()
	}
}

func (s *churnScenario) setup(e *Engine)    { s.e = e }
func (s *churnScenario) ready(*Engine) bool { return true }

func (s *churnScenario) begin(e *Engine) {
	e.Sync(func(lp *Loop) { s.ls[lp.Index()].measuring = true })
	e.DialAll(s.cfg.DialRate)
}

// drained: no attempt is still connecting or in its handshake, so every
// connection the server accepted is counted on this side too.
func (s *churnScenario) drained(e *Engine) bool {
	done := true
	e.Sync(func(lp *Loop) {
		for k := range lp.NumConns() {
			if st := lp.Conn(k).state; st == stConnecting || st == stHandshake {
				done = false
				return
			}
		}
	})
	return done
}

func (s *churnScenario) end(e *Engine, _ ctlMsg) {
	e.Sync(func(lp *Loop) { s.ls[lp.Index()].measuring = false })
}

func (s *churnScenario) collect(e *Engine, r *Result) {
	cc := &ChurnCounts{}
	e.Sync(func(lp *Loop) {
		s.collectLoop(lp, r)
		cc.Connects += s.ls[lp.Index()].connects.Load()
		cc.Reconnects += s.ls[lp.Index()].reconnects.Load()
	})
	r.Churn = cc
}

func (s *churnScenario) progress(p *Progress) {
	s.progressConns(s.e, p)
	for i := range s.ls {
		p.Events += s.ls[i].reconnects.Load()
	}
}

// newScenario builds the handler for cfg.Scenario with slots local slots on
// loops loops; total is the connection count over all workers.
func newScenario(cfg *Config, slots, loops, total int) scenario {
	b := newBase(cfg, slots, loops)
	switch cfg.Scenario {
	case ScenarioConnect:
		return &connectScenario{base: b}
	case ScenarioEcho:
		return &echoScenario{base: b, total: total, sentAt: make([]int64, slots), seq: make([]uint32, slots), ls: make([]echoLoop, loops)}
	case ScenarioPubSub, ScenarioSSE:
		s := &pubsubScenario{base: b, subs: make([]subState, slots), ls: make([]subLoop, loops)}
		for i := range cfg.Channels {
			s.names = append(s.names, []byte(cfg.channelName(i)))
			s.subs0 = append(s.subs0, subscribeMsg(cfg.channelName(i)))
		}
		for i := range s.ls {
			s.ls[i].tally = make([]ChannelTally, cfg.Channels)
		}
		if cfg.Scenario == ScenarioSSE {
			return &sseScenario{pubsubScenario: s}
		}
		return s
	case ScenarioChurn:
		return &churnScenario{base: b, attempt: make([]uint8, slots), ever: make([]bool, slots), ls: make([]churnLoop, loops)}
	}
	panic("BUG: unknown scenario " + cfg.Scenario)
}

// ---------------------------------------------------------------- sse

// sseScenario is pubsub over Server-Sent Events: slot i requests its channel (i % Channels)
// in the URL instead of subscribing, and its first event says where the channel stands,
// {"op":"subscribed","channels":[{"channel":C,"seq":N,...}]}; every message event carries the
// same JSON object a WebSocket subscriber gets, so deliveries, gaps and latency are counted as
// pubsub counts them. Publishes go through the HTTP API (-publish-url).
type sseScenario struct {
	*pubsubScenario
}

func (s *sseScenario) OnOpen(c *Conn) { s.opened(c) }

// sseSubscribed is the data of the first event.
type sseSubscribed struct {
	Op       string `json:"op"`
	Channels []struct {
		Channel string `json:"channel"`
		Seq     int64  `json:"seq"`
	} `json:"channels"`
}

func (s *sseScenario) OnMessage(c *Conn, op ws.OpCode, p []byte) {
	if !bytes.HasPrefix(p, []byte(`{"op":"subscribed"`)) {
		s.pubsubScenario.OnMessage(c, op, p)
		return
	}
	// Once per stream: decoded with encoding/json, then handed on as the WebSocket reply.
	var sub sseSubscribed
	l := &s.ls[c.Loop().Index()]
	if json.Unmarshal(p, &sub) != nil || len(sub.Channels) != 1 {
		l.unexpected++
		s.extra.Add(1)
		return
	}
	ch := sub.Channels[0]
	msg := `{"op":"subscribed","channel":"` + ch.Channel + `","seq":` + strconv.FormatInt(ch.Seq, 10) + `}`
	s.pubsubScenario.OnMessage(c, op, []byte(msg))
}
