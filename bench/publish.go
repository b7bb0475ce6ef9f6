package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// The pubsub publisher runs in the coordinator, so exactly one publisher
// exists however many worker processes hold the subscribers. Message n goes
// to channel n % Channels with id "<run>-<n>" and data {"t":T,"n":n}, where T
// is the wall-clock publish time in Unix nanoseconds that subscribers turn
// into publish-to-delivery latency.

// pubCounts are the publisher's totals.
type pubCounts struct {
	Published       int64
	Acked           int64
	Duplicates      int64
	Errors          int64
	ServerDelivered int64
	Final           []int64          // highest seq acknowledged per channel
	ErrorReasons    map[string]int64 // Errors by cause
	Closed          string           // why the publisher's connection closed, "" if it did not
	// CallLatency is how long an HTTP publish took from the request to its answer (HTTP
	// publishes only: zero Count for WebSocket publishes).
	CallLatency Percentiles
}

type publisher interface {
	// connect prepares the publisher before the measured phase.
	connect(ctx context.Context) error
	// start begins publishing at rate messages per second.
	start(rate float64)
	// stop ends publishing and waits up to drain for outstanding acks.
	stop(drain time.Duration)
	// published returns the number sent so far; any goroutine.
	published() int64
	counts() pubCounts
	close()
}

// appendPublishData appends the data object {"t":T,"n":N}, padded to size bytes with a
// ,"p":"…" member when size leaves room for it. The padding reads like market data (ticker
// symbols with prices and volumes drawn from a generator seeded by N), so that it compresses
// about as well as real JSON does (2-4x with permessage-deflate), not like one repeated byte.
func appendPublishData(dst []byte, t, n int64, size int) []byte {
	start := len(dst)
	dst = append(dst, `{"t":`...)
	dst = strconv.AppendInt(dst, t, 10)
	dst = append(dst, `,"n":`...)
	dst = strconv.AppendInt(dst, n, 10)
	if pad := size - (len(dst) - start) - len(`,"p":""}`); pad > 0 {
		dst = append(dst, `,"p":"`...)
		end := len(dst) + pad
		x := uint64(n)*0x9e3779b97f4a7c15 | 1
		for len(dst) < end {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			dst = append(dst, padSymbols[x%uint64(len(padSymbols))]...)
			dst = append(dst, ' ')
			dst = strconv.AppendUint(dst, 10+x>>8%990, 10)
			dst = append(dst, '.')
			dst = strconv.AppendUint(dst, 10+x>>20%90, 10)
			dst = append(dst, ' ')
			dst = strconv.AppendUint(dst, x>>32%5000, 10)
			dst = append(dst, ';', ' ')
		}
		dst = append(dst[:end], '"')
	}
	return append(dst, '}')
}

// padSymbols are the ticker symbols of appendPublishData's padding.
var padSymbols = [...]string{"AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "META", "TSLA", "NFLX",
	"ORCL", "INTC", "AMD", "IBM", "CSCO", "ADBE", "CRM", "QCOM"}

// ------------------------------------------------------------ WebSocket

// wsPublisher publishes with the protocol's publish op over one WebSocket
// connection driven by a one-slot Engine; the server must allow client
// publishes (wsgate: -client-publish) and acknowledges each with
// "published" (carrying the seq) or "duplicate".
type wsPublisher struct {
	cfg   *Config
	run   string
	e     *Engine
	names map[string]int
	open  chan error
	once  sync.Once

	// Loop goroutine only.
	measuring bool
	t0        int64
	rate      float64
	buf       []byte
	msg       serverMsg
	final     []int64
	conn      *Conn
	reasons   map[string]int64 // errs by cause
	closed    string           // why the connection closed after opening

	sent  atomic.Int64
	acked atomic.Int64
	dups  atomic.Int64
	errs  atomic.Int64
	down  atomic.Bool // the connection closed: no more answers will come
}

func newWSPublisher(cfg *Config, run string) *wsPublisher {
	p := &wsPublisher{cfg: cfg, run: run, names: make(map[string]int, cfg.Channels), open: make(chan error, 1), final: make([]int64, cfg.Channels)}
	for i := range cfg.Channels {
		p.names[cfg.channelName(i)] = i
	}
	return p
}

func (p *wsPublisher) connect(ctx context.Context) error {
	tg, err := resolveTarget(ctx, p.cfg.URL)
	if err != nil {
		return err
	}
	p.e, err = NewEngine(EngineConfig{
		Addr: tg.addr, Port: tg.port, Host: tg.host, Path: tg.path,
		Loops: 1, Slots: 1, HandshakeTimeout: p.cfg.Timeout, Tick: time.Millisecond, Tokens: p.cfg.Tokens,
	}, p)
	if err != nil {
		return err
	}
	p.e.Start()
	p.e.DialAll(0)
	select {
	case err := <-p.open:
		if err != nil {
			return fmt.Errorf("publisher: %w", err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *wsPublisher) OnOpen(c *Conn) {
	p.conn = c
	p.once.Do(func() { p.open <- nil })
}

func (p *wsPublisher) OnClose(c *Conn, ev CloseEvent) {
	p.conn = nil
	p.once.Do(func() {
		p.open <- fmt.Errorf("connection failed: %s", describeReason(reasonKey(ev)))
	})
	if ev.Opened {
		// Publishes still unanswered will never be: they count as
		// errors. Every counter changes on this goroutine only.
		p.closed = describeReason(reasonKey(ev))
		if n := p.sent.Load() - p.acked.Load() - p.dups.Load() - p.errs.Load(); n > 0 {
			addReason(&p.reasons, "unanswered when the connection closed", n)
			p.errs.Add(n)
		}
		p.down.Store(true)
	}
}

func (p *wsPublisher) OnMessage(c *Conn, op ws.OpCode, b []byte) {
	if op != ws.OpText || parseServerMsg(b, &p.msg) != nil {
		countReason(&p.reasons, "unreadable answer: "+truncate(string(b), 60))
		p.errs.Add(1)
		return
	}
	m := &p.msg
	switch string(m.op) {
	case "published":
		p.acked.Add(1)
		if i, ok := p.names[string(m.channel)]; ok && m.hasSeq && m.seq > p.final[i] {
			p.final[i] = m.seq
		}
	case "duplicate":
		p.dups.Add(1)
	case "error":
		countReason(&p.reasons, serverErrorKey(m))
		p.errs.Add(1)
	}
}

func (p *wsPublisher) OnTimer(*Conn, uint8) {}

func (p *wsPublisher) OnTick(l *Loop) {
	if !p.measuring || p.conn == nil {
		return
	}
	now := l.Now()
	due := int64(float64(now-p.t0)*p.rate/1e9) - p.sent.Load()
	for ; due > 0 && p.conn != nil; due-- {
		n := p.sent.Load()
		ch := int(n % int64(p.cfg.Channels))
		b := append(p.buf[:0], `{"op":"publish","channel":"`...)
		b = append(b, p.cfg.ChannelPrefix...)
		b = strconv.AppendInt(b, int64(ch), 10)
		b = append(b, `","id":"`...)
		b = append(b, p.run...)
		b = append(b, '-')
		b = strconv.AppendInt(b, n, 10)
		b = append(b, `","data":`...)
		b = appendPublishData(b, time.Now().UnixNano(), n, p.cfg.Size)
		b = append(b, '}')
		p.buf = b
		if !p.conn.Send(ws.OpText, b) {
			return
		}
		p.sent.Add(1)
	}
}

func (p *wsPublisher) start(rate float64) {
	p.e.Sync(func(l *Loop) {
		p.measuring, p.rate, p.t0 = true, rate, l.Now()
	})
}

func (p *wsPublisher) stop(drain time.Duration) {
	p.e.Sync(func(*Loop) { p.measuring = false })
	deadline := time.Now().Add(drain)
	for p.acked.Load()+p.dups.Load()+p.errs.Load() < p.sent.Load() && !p.down.Load() && time.Now().Before(deadline) {
		time.Sleep(drainPoll)
	}
}

func (p *wsPublisher) published() int64 { return p.sent.Load() }

func (p *wsPublisher) counts() pubCounts {
	c := pubCounts{Published: p.sent.Load(), Acked: p.acked.Load(), Duplicates: p.dups.Load(), Errors: p.errs.Load()}
	p.e.Sync(func(*Loop) {
		c.Final = append([]int64(nil), p.final...)
		c.ErrorReasons = maps.Clone(p.reasons)
		c.Closed = p.closed
	})
	return c
}

func (p *wsPublisher) close() {
	if p.e != nil {
		p.e.Stop()
	}
}

// ------------------------------------------------------------ HTTP

// httpPublishers is the number of concurrent HTTP publish requests.
const httpPublishers = 16

// httpPublisher POSTs {"channel","id","data"} to PublishURL and reads
// {"delivered":K,"seq":N}; 208 means the id was a duplicate.
type httpPublisher struct {
	cfg    *Config
	run    string
	client *http.Client
	jobs   chan int64
	wg     sync.WaitGroup
	cancel context.CancelFunc
	pacer  sync.WaitGroup

	sent, acked, dups, errs, delivered atomic.Int64

	mu      sync.Mutex
	final   []int64
	reasons map[string]int64 // errs by cause
	rtt     Histogram        // POST to answer read, ns, answered publishes (200 and 208); under mu
}

func newHTTPPublisher(cfg *Config, run string) *httpPublisher {
	tr := &http.Transport{MaxIdleConns: httpPublishers, MaxIdleConnsPerHost: httpPublishers, IdleConnTimeout: time.Minute}
	return &httpPublisher{
		cfg:    cfg,
		run:    run,
		client: &http.Client{Transport: tr, Timeout: cfg.Timeout},
		jobs:   make(chan int64, httpPublishers),
		final:  make([]int64, cfg.Channels),
	}
}

func (p *httpPublisher) connect(context.Context) error {
	for range httpPublishers {
		p.wg.Add(1)
		go p.worker()
	}
	return nil
}

func (p *httpPublisher) worker() {
	defer p.wg.Done()
	var body []byte
	for n := range p.jobs {
		ch := int(n % int64(p.cfg.Channels))
		body = append(body[:0], `{"channel":"`...)
		body = append(body, p.cfg.ChannelPrefix...)
		body = strconv.AppendInt(body, int64(ch), 10)
		body = append(body, `","id":"`...)
		body = append(body, p.run...)
		body = append(body, '-')
		body = strconv.AppendInt(body, n, 10)
		body = append(body, `","data":`...)
		body = appendPublishData(body, time.Now().UnixNano(), n, p.cfg.Size)
		body = append(body, '}')
		p.post(ch, body)
	}
}

func (p *httpPublisher) post(ch int, body []byte) {
	req, err := http.NewRequest(http.MethodPost, p.cfg.PublishURL, bytes.NewReader(body))
	if err != nil {
		p.fail("bad request: " + err.Error())
		return
	}
	req.Header.Set("Content-Type", "application/json")
	if p.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+p.cfg.APIKey)
	}
	t0 := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		p.fail("POST failed: " + transportReason(err))
		return
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		p.fail(fmt.Sprintf("HTTP %d, reading the body failed: %s", resp.StatusCode, transportReason(err)))
		return
	}
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusAlreadyReported {
		rtt := time.Since(t0).Nanoseconds()
		p.mu.Lock()
		p.rtt.Record(rtt)
		p.mu.Unlock()
	}
	switch resp.StatusCode {
	case http.StatusOK:
		var r struct {
			Delivered int64 `json:"delivered"`
			Seq       int64 `json:"seq"`
		}
		if json.Unmarshal(rb, &r) != nil {
			p.fail("HTTP 200 with an unreadable body: " + bodyText(rb))
			return
		}
		p.acked.Add(1)
		p.delivered.Add(r.Delivered)
		p.mu.Lock()
		p.final[ch] = max(p.final[ch], r.Seq)
		p.mu.Unlock()
	case http.StatusAlreadyReported:
		p.dups.Add(1)
	default:
		p.fail(fmt.Sprintf("HTTP %d: %s", resp.StatusCode, bodyText(rb)))
	}
}

// fail counts a publish error and its cause.
func (p *httpPublisher) fail(reason string) {
	p.mu.Lock()
	countReason(&p.reasons, reason)
	p.mu.Unlock()
	p.errs.Add(1)
}

// transportReason says why a request failed without an HTTP answer: the
// socket error in words ("connection refused"), a timeout, or the error.
func transportReason(err error) string {
	if errno := new(unix.Errno); errors.As(err, errno) {
		if r := errnoReason(*errno); r != ReasonOtherErrno {
			return describeReason(r)
		}
		return errno.Error()
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return "no answer within -timeout"
	}
	return truncate(err.Error(), maxDetail)
}

// bodyText is an HTTP error body for people: the "error" member of a JSON
// body like wsgate's {"error":"..."}, otherwise the body with its
// whitespace collapsed, cut to maxDetail bytes.
func bodyText(b []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return truncate(e.Error, maxDetail)
	}
	s := strings.Join(strings.Fields(string(b)), " ")
	if s == "" {
		return "(empty body)"
	}
	return truncate(s, maxDetail)
}

func (p *httpPublisher) start(rate float64) {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.pacer.Add(1)
	go func() {
		defer p.pacer.Done()
		t0 := time.Now()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			due := int64(time.Since(t0).Seconds()*rate) - p.sent.Load()
			for ; due > 0; due-- {
				select {
				case p.jobs <- p.sent.Load():
					p.sent.Add(1)
				case <-ctx.Done():
					return
				}
			}
		}
	}()
}

func (p *httpPublisher) stop(drain time.Duration) {
	if p.cancel != nil {
		p.cancel()
		p.pacer.Wait()
	}
	close(p.jobs)
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drain + p.client.Timeout):
	}
}

func (p *httpPublisher) published() int64 { return p.sent.Load() }

func (p *httpPublisher) counts() pubCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return pubCounts{
		Published: p.sent.Load(), Acked: p.acked.Load(), Duplicates: p.dups.Load(),
		Errors: p.errs.Load(), ServerDelivered: p.delivered.Load(),
		Final: append([]int64(nil), p.final...), ErrorReasons: maps.Clone(p.reasons),
		CallLatency: p.rtt.Summary(),
	}
}

func (p *httpPublisher) close() { p.client.CloseIdleConnections() }
