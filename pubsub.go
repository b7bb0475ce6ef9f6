package wsgate

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/conn"
	"github.com/wsgate/wsgate/frame"
	"github.com/wsgate/wsgate/shard"
)

// PubSubConfig configures the pub/sub gateway. Zero values are the documented defaults.
type PubSubConfig struct {
	// ClientPublish lets WebSocket clients publish with {"op":"publish"}.
	ClientPublish bool
	// APIKey, when set, is required as "Authorization: Bearer <key>" on /api/ requests.
	APIKey string
	// DedupWindow is how long a publish id is remembered per channel (default 30 min; negative
	// disables deduplication).
	DedupWindow time.Duration
	// DedupMaxIDs caps the ids remembered across all channels (default 100000; the oldest are
	// forgotten first), which bounds the dedup memory to roughly DedupMaxIDs x (100 B + id and
	// channel length).
	DedupMaxIDs int
	// MaxChannels per connection (default 128).
	MaxChannels int
	// MaxErrors is how many bad requests a connection may send before it is closed with 1008
	// (default 10).
	MaxErrors int
}

func (c PubSubConfig) withDefaults() PubSubConfig {
	if c.DedupWindow == 0 {
		c.DedupWindow = 30 * time.Minute
	}
	if c.DedupWindow < 0 {
		c.DedupWindow = 0
	}
	if c.DedupMaxIDs <= 0 {
		c.DedupMaxIDs = 100000
	}
	if c.MaxChannels <= 0 {
		c.MaxChannels = 128
	}
	if c.MaxErrors <= 0 {
		c.MaxErrors = 10
	}
	return c
}

// PubSub is the gateway application: a conn.Handler plus the publish entry points used by the
// HTTP API. Publish and Broadcast may be called from any goroutine.
type PubSub struct {
	s     *Server
	cfg   PubSubConfig
	table *shard.Table
	subs  []*shard.Subscribers // per loop, loop goroutine only

	deliveries atomic.Uint64
	broadcasts atomic.Uint64
	fanout     *metrics.PrometheusHistogram
	scratch    sync.Pool // *[]byte for encoding messages
}

// client is the per-connection state (conn.Conn.Data).
type client struct {
	subs   shard.Subs
	errors int
}

func newPubSub(s *Server, cfg PubSubConfig) *PubSub {
	cfg = cfg.withDefaults()
	p := &PubSub{s: s, cfg: cfg, table: shard.NewTable(cfg.DedupWindow, cfg.DedupMaxIDs, nil)}
	p.scratch.New = func() any { b := make([]byte, 0, 1024); return &b }
	return p
}

// start creates the per-loop subscriber sets once the loops exist.
func (p *PubSub) start() {
	for i := range p.s.loops {
		p.subs = append(p.subs, shard.NewSubscribers(p.table, i))
	}
	m := p.s.metrics
	p.fanout = m.NewPrometheusHistogramExt("wsgate_fanout_seconds",
		[]float64{1e-6, 5e-6, 10e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 50e-3, 100e-3})
	m.NewGauge("wsgate_channels", func() float64 { return float64(p.table.Channels.Load()) })
	m.NewGauge("wsgate_subscriptions", func() float64 { return float64(p.subscriptions()) })
	m.NewGauge("wsgate_publishes_total", func() float64 { return float64(p.table.Publishes.Load()) })
	m.NewGauge("wsgate_deliveries_total", func() float64 { return float64(p.deliveries.Load()) })
	m.NewGauge("wsgate_duplicates_total", func() float64 { return float64(p.table.Duplicates.Load()) })
	m.NewGauge("wsgate_broadcasts_total", func() float64 { return float64(p.broadcasts.Load()) })
	m.NewGauge("wsgate_dedup_ids", func() float64 { return float64(p.table.DedupIDs.Load()) })
}

func (p *PubSub) subscriptions() int64 {
	var n int64
	for _, l := range p.table.List() {
		n += l.Subscribers
	}
	return n
}

// OnOpen implements conn.Handler.
func (p *PubSub) OnOpen(c *conn.Conn) { c.Data = &client{} }

// OnClose implements conn.Handler: every subscription goes with the connection.
func (p *PubSub) OnClose(c *conn.Conn, _ ws.StatusCode) {
	if cl, ok := c.Data.(*client); ok {
		p.subs[c.Engine().Loop().Index()].UnsubscribeAll(&cl.subs)
	}
	c.Data = nil
}

// request is a client operation. Data stays raw JSON.
type request struct {
	Op      string          `json:"op"`
	Channel string          `json:"channel"`
	ID      string          `json:"id"`
	Data    json.RawMessage `json:"data"`
}

// Error codes of {"op":"error"} replies (docs/protocol.md).
const (
	ErrCodeBadRequest     = 400 // not JSON, unknown op, binary frame, missing field
	ErrCodeForbidden      = 403 // publishing from clients is disabled
	ErrCodeBadChannel     = 422 // invalid channel name or id
	ErrCodeTooMany        = 429 // too many channels on this connection
	ErrCodeNotSubscribed  = 404 // unsubscribe from a channel not subscribed
	maxChannelName        = 128
	maxPublishID          = 128
	closeReasonTooManyErr = "too many invalid requests"
)

// OnMessage implements conn.Handler: one client operation.
func (p *PubSub) OnMessage(c *conn.Conn, op ws.OpCode, payload []byte) {
	cl := c.Data.(*client)
	if op != ws.OpText {
		p.replyError(c, cl, ErrCodeBadRequest, "binary frames are not part of the protocol")
		return
	}
	var req request
	if err := json.Unmarshal(payload, &req); err != nil {
		p.replyError(c, cl, ErrCodeBadRequest, "invalid JSON")
		return
	}
	loop := c.Engine().Loop().Index()
	switch req.Op {
	case "subscribe":
		if !ValidChannel(req.Channel) {
			p.replyError(c, cl, ErrCodeBadChannel, "invalid channel name")
			return
		}
		if cl.subs.Len() >= p.cfg.MaxChannels {
			p.replyError(c, cl, ErrCodeTooMany, "too many channels (limit "+strconv.Itoa(p.cfg.MaxChannels)+")")
			return
		}
		seq, _ := p.subs[loop].Subscribe(c, &cl.subs, req.Channel)
		p.reply(c, func(b []byte) []byte {
			b = append(b, `{"op":"subscribed","channel":"`...)
			b = append(b, req.Channel...)
			b = append(b, `","seq":`...)
			b = strconv.AppendUint(b, seq, 10)
			return append(b, '}')
		})
	case "unsubscribe":
		if !ValidChannel(req.Channel) {
			p.replyError(c, cl, ErrCodeBadChannel, "invalid channel name")
			return
		}
		if !p.subs[loop].Unsubscribe(&cl.subs, req.Channel) {
			p.replyError(c, cl, ErrCodeNotSubscribed, "not subscribed to "+req.Channel)
			return
		}
		p.reply(c, func(b []byte) []byte {
			b = append(b, `{"op":"unsubscribed","channel":"`...)
			b = append(b, req.Channel...)
			return append(b, `"}`...)
		})
	case "publish":
		if !p.cfg.ClientPublish {
			p.replyError(c, cl, ErrCodeForbidden, "publishing from clients is disabled")
			return
		}
		if err := checkPublish(req.Channel, req.ID, req.Data); err != nil {
			code := ErrCodeBadRequest
			if errors.Is(err, errBadChannel) || errors.Is(err, errBadID) {
				code = ErrCodeBadChannel
			}
			p.replyError(c, cl, code, err.Error())
			return
		}
		res := p.Publish(req.Channel, req.ID, req.Data, false)
		p.reply(c, func(b []byte) []byte {
			if res.Duplicate {
				b = append(b, `{"op":"duplicate","channel":"`...)
				b = append(b, req.Channel...)
				b = append(b, `","id":`...)
				b = appendJSONString(b, req.ID)
				return append(b, '}')
			}
			b = append(b, `{"op":"published","channel":"`...)
			b = append(b, req.Channel...)
			b = append(b, `","seq":`...)
			b = strconv.AppendUint(b, res.Seq, 10)
			if req.ID != "" {
				b = append(b, `,"id":`...)
				b = appendJSONString(b, req.ID)
			}
			return append(b, '}')
		})
	default:
		p.replyError(c, cl, ErrCodeBadRequest, "unknown op")
	}
}

// reply encodes a text message with fill into pooled scratch and queues it (copied) on c.
func (p *PubSub) reply(c *conn.Conn, fill func([]byte) []byte) {
	bp := p.scratch.Get().(*[]byte)
	b := fill((*bp)[:0])
	c.WriteMessage(ws.OpText, b)
	*bp = b
	p.scratch.Put(bp)
}

func (p *PubSub) replyError(c *conn.Conn, cl *client, code int, reason string) {
	cl.errors++
	p.reply(c, func(b []byte) []byte {
		b = append(b, `{"op":"error","code":`...)
		b = strconv.AppendInt(b, int64(code), 10)
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, reason)
		return append(b, '}')
	})
	if cl.errors >= p.cfg.MaxErrors {
		c.Close(ws.StatusPolicyViolation, closeReasonTooManyErr)
	}
}

var (
	errBadChannel = errors.New("invalid channel name")
	errBadID      = errors.New("invalid id (at most 128 bytes of UTF-8)")
	errNoData     = errors.New(`"data" is required and must be JSON`)
	errDataUTF8   = errors.New(`"data" is not valid UTF-8 (it is sent in text frames, which clients reject otherwise)`)
)

// checkPublish validates a publish's fields.
func checkPublish(channel, id string, data json.RawMessage) error {
	if !ValidChannel(channel) {
		return errBadChannel
	}
	if len(id) > maxPublishID || !utf8.ValidString(id) {
		return errBadID
	}
	if len(bytes.TrimSpace(data)) == 0 || !json.Valid(data) {
		return errNoData
	}
	// encoding/json accepts invalid UTF-8 inside strings; a text frame carrying it makes every
	// RFC 6455 client fail the connection with 1007, so one bad publish would cut a channel.
	if !utf8.Valid(data) {
		return errDataUTF8
	}
	return nil
}

// ValidChannel reports whether name is a valid channel name: 1 to 128 bytes of ASCII letters,
// digits and _ - . : @ / (no escaping is ever needed to put it in JSON or a URL path).
func ValidChannel(name string) bool {
	if len(name) == 0 || len(name) > maxChannelName {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '-', c == '.', c == ':', c == '@', c == '/':
		default:
			return false
		}
	}
	return true
}

// PublishOutcome is what a publish did.
type PublishOutcome struct {
	Seq       uint64
	Duplicate bool
	Delivered int // subscribers reached (only when the caller waited)
}

// Publish sends data (valid JSON, validated by the caller with checkPublish) to every subscriber
// of channel. The message frame is encoded once and shared by every subscriber's queue. With wait
// it returns after every loop has queued the message, with the number of subscribers reached.
// Any goroutine except a loop goroutine when wait is set (a loop must not wait on itself).
func (p *PubSub) Publish(channel, id string, data []byte, wait bool) PublishOutcome {
	var f []byte
	var done *fanoutWait
	if wait {
		done = &fanoutWait{}
	}
	res := p.table.Publish(channel, id,
		func(seq uint64) { f = encodeMessage(channel, seq, id, data) },
		func(loop int, seq uint64) {
			if done != nil {
				done.wg.Add(1)
			}
			subs, e := p.subs[loop], p.s.engines[loop]
			if !e.Post(func() { p.deliver(subs, channel, seq, f, done) }) && done != nil {
				done.wg.Done() // the loop has stopped
			}
		})
	out := PublishOutcome{Seq: res.Seq, Duplicate: res.Duplicate}
	if done != nil {
		done.wg.Wait()
		out.Delivered = int(done.n.Load())
	}
	return out
}

type fanoutWait struct {
	wg sync.WaitGroup
	n  atomic.Int64
}

// deliver runs on a loop: queue the shared frame on the loop's subscribers.
func (p *PubSub) deliver(subs *shard.Subscribers, channel string, seq uint64, f []byte, done *fanoutWait) {
	start := time.Now()
	n := subs.Deliver(channel, seq, f)
	p.deliveries.Add(uint64(n))
	p.fanout.Update(time.Since(start).Seconds())
	if done != nil {
		done.n.Add(int64(n))
		done.wg.Done()
	}
}

// Broadcast sends data to every open connection as {"op":"broadcast","id":...,"data":...} and,
// with wait, returns how many connections it reached.
func (p *PubSub) Broadcast(id string, data []byte, wait bool) int {
	payload := []byte(`{"op":"broadcast"`)
	if id != "" {
		payload = append(payload, `,"id":`...)
		payload = appendJSONString(payload, id)
	}
	payload = append(payload, `,"data":`...)
	payload = append(payload, data...)
	payload = append(payload, '}')
	f := frame.AppendFrame(make([]byte, 0, frame.HeaderLen(len(payload))+len(payload)), ws.OpText, payload)
	p.broadcasts.Add(1)
	var done fanoutWait
	for _, e := range p.s.engines {
		done.wg.Add(1)
		if !e.Post(func() {
			n := 0
			e.Each(func(c *conn.Conn) {
				if c.WriteFrame(f) == nil {
					n++
				}
			})
			p.deliveries.Add(uint64(n))
			done.n.Add(int64(n))
			done.wg.Done()
		}) {
			done.wg.Done()
		}
	}
	if wait {
		done.wg.Wait()
	}
	return int(done.n.Load())
}

// encodeMessage builds the complete WebSocket frame of a channel message:
// {"op":"message","channel":C,"seq":N,"id":I,"data":D} ("id" omitted when empty).
func encodeMessage(channel string, seq uint64, id string, data []byte) []byte {
	var num [20]byte
	seqStr := strconv.AppendUint(num[:0], seq, 10)
	n := len(`{"op":"message","channel":"","seq":,"data":}`) + len(channel) + len(seqStr) + len(data)
	if id != "" {
		n += len(`,"id":`) + jsonStringLen(id)
	}
	b := make([]byte, 0, frame.HeaderLen(n)+n)
	b = frame.AppendHeader(b, true, ws.OpText, n)
	b = append(b, `{"op":"message","channel":"`...)
	b = append(b, channel...)
	b = append(b, `","seq":`...)
	b = append(b, seqStr...)
	if id != "" {
		b = append(b, `,"id":`...)
		b = appendJSONString(b, id)
	}
	b = append(b, `,"data":`...)
	b = append(b, data...)
	b = append(b, '}')
	if len(b) != cap(b) {
		panic("BUG: encodeMessage: length computed wrongly")
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string (RFC 8259), escaping quotes, backslashes and
// control characters; s must be valid UTF-8.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func jsonStringLen(s string) int {
	n := 2
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			n += 2
		case c < 0x20:
			n += 6
		default:
			n++
		}
	}
	return n
}
