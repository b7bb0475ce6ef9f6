package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
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
	Final           []int64 // highest seq acknowledged per channel
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
// ,"p":"xxx…" member when size leaves room for it.
func appendPublishData(dst []byte, t, n int64, size int) []byte {
	start := len(dst)
	dst = append(dst, `{"t":`...)
	dst = strconv.AppendInt(dst, t, 10)
	dst = append(dst, `,"n":`...)
	dst = strconv.AppendInt(dst, n, 10)
	if pad := size - (len(dst) - start) - len(`,"p":""}`); pad > 0 {
		dst = append(dst, `,"p":"`...)
		for ; pad > 0; pad-- {
			dst = append(dst, 'x')
		}
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

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

	sent  atomic.Int64
	acked atomic.Int64
	dups  atomic.Int64
	errs  atomic.Int64
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
		Loops: 1, Slots: 1, HandshakeTimeout: p.cfg.Timeout, Tick: time.Millisecond,
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
		p.open <- fmt.Errorf("connection failed: %s (status %d): %v", ev.Reason, ev.Status, ev.Err)
	})
	if ev.Opened {
		p.errs.Add(1)
	}
}

func (p *wsPublisher) OnMessage(c *Conn, op ws.OpCode, b []byte) {
	if op != ws.OpText || parseServerMsg(b, &p.msg) != nil {
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
	for p.acked.Load()+p.dups.Load()+p.errs.Load() < p.sent.Load() && time.Now().Before(deadline) {
		time.Sleep(drainPoll)
	}
}

func (p *wsPublisher) published() int64 { return p.sent.Load() }

func (p *wsPublisher) counts() pubCounts {
	c := pubCounts{Published: p.sent.Load(), Acked: p.acked.Load(), Duplicates: p.dups.Load(), Errors: p.errs.Load()}
	p.e.Sync(func(*Loop) { c.Final = append([]int64(nil), p.final...) })
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

	mu    sync.Mutex
	final []int64
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
		p.errs.Add(1)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	if p.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+p.cfg.APIKey)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		p.errs.Add(1)
		return
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		p.errs.Add(1)
		return
	}
	switch resp.StatusCode {
	case http.StatusOK:
		var r struct {
			Delivered int64 `json:"delivered"`
			Seq       int64 `json:"seq"`
		}
		if json.Unmarshal(rb, &r) != nil {
			p.errs.Add(1)
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
		p.errs.Add(1)
	}
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
		Final: append([]int64(nil), p.final...),
	}
}

func (p *httpPublisher) close() { p.client.CloseIdleConnections() }

var errNoAcks = errors.New("the publisher received no acknowledgements: lost messages cannot be computed from seq")
