package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	wsgate "github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/client"
	"github.com/wsgate/wsgate/pubsub"
)

// wait bounds every wait of these tests: generous for a loaded 2-core machine under -race, and
// never part of a verdict (a test that hits it has failed for another reason).
const wait = time.Minute

// gateway is a real wsgate pub/sub server in this process.
type gateway struct {
	s *wsgate.Server
}

// startGateway runs a gateway on addr ("127.0.0.1:0" for any port) with history, dedup and
// client publishes on; cluster makes it a node of a cluster. It is closed at the test's end.
func startGateway(t testing.TB, addr string, cluster *pubsub.ClusterConfig) *gateway {
	t.Helper()
	app, err := pubsub.New(pubsub.Config{HistorySize: 1000, HistoryTTL: time.Hour, DedupWindow: time.Minute,
		ClientPublish: true, Cluster: cluster, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := wsgate.New(wsgate.Config{Handler: app, Addr: addr, AdminAddr: "127.0.0.1:0", Loops: 2, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &gateway{s: s}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (g *gateway) url() string    { return "ws://" + g.s.Addr().String() + "/" }
func (g *gateway) health() string { return "http://" + g.s.AdminAddr() + "/healthz" }

// publish publishes data (JSON) to channel through the HTTP API and returns the answer's seq.
func (g *gateway) publish(t testing.TB, channel, id, data string) uint64 {
	t.Helper()
	m := map[string]any{"channel": channel, "data": json.RawMessage(data)}
	if id != "" {
		m["id"] = id
	}
	body, _ := json.Marshal(m)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+g.s.AdminAddr()+"/api/publish", bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Seq       uint64 `json:"seq"`
		Duplicate bool   `json:"duplicate"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("publish to %s: %s, %v", channel, resp.Status, err)
	}
	return r.Seq
}

// top returns a channel's seq as the gateway's history API says (0 when it has none).
func (g *gateway) top(t testing.TB, channel string) uint64 {
	t.Helper()
	resp, err := http.Get("http://" + g.s.AdminAddr() + "/api/history?channel=" + channel + "&limit=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Seq uint64 `json:"seq"`
	}
	json.NewDecoder(resp.Body).Decode(&r)
	return r.Seq
}

// inbox collects what a handler receives.
type inbox struct {
	mu     sync.Mutex
	msgs   []client.Message
	failed []string // OnRecoveryFailed calls
	states []client.State
	seen   chan struct{} // capacity 1: something arrived
}

func newInbox() *inbox { return &inbox{seen: make(chan struct{}, 1)} }

func (b *inbox) poke() {
	select {
	case b.seen <- struct{}{}:
	default:
	}
}

func (b *inbox) handle(m client.Message) {
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
	b.poke()
}

func (b *inbox) recoveryFailed(ch string) {
	b.mu.Lock()
	b.failed = append(b.failed, ch)
	b.mu.Unlock()
	b.poke()
}

func (b *inbox) state(s client.State) {
	b.mu.Lock()
	b.states = append(b.states, s)
	b.mu.Unlock()
	b.poke()
}

// options returns Options that report to b, with short backoff delays (no verdict depends on
// them) unless the test sets its own.
func (b *inbox) options() client.Options {
	return client.Options{
		OnState: b.state, OnRecoveryFailed: b.recoveryFailed,
		BackoffInitial: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Jitter: 10 * time.Millisecond,
	}
}

// waitFor waits until cond (called with b locked) holds.
func (b *inbox) waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(wait)
	for {
		b.mu.Lock()
		ok := cond()
		b.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-b.seen:
		case <-deadline:
			b.mu.Lock()
			defer b.mu.Unlock()
			t.Fatalf("waiting for %s: gave up with %d messages %v, states %v, recovery failed %v",
				what, len(b.msgs), seqs(b.msgs), b.states, b.failed)
		}
	}
}

// waitMessages waits for n messages and returns a copy.
func (b *inbox) waitMessages(t testing.TB, n int) []client.Message {
	t.Helper()
	b.waitFor(t, fmt.Sprintf("%d messages", n), func() bool { return len(b.msgs) >= n })
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]client.Message(nil), b.msgs...)
}

// countState returns how many times s was reported.
func (b *inbox) countState(s client.State) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.countLocked(s)
}

func (b *inbox) countLocked(s client.State) int {
	n := 0
	for _, x := range b.states {
		if x == s {
			n++
		}
	}
	return n
}

// checkComplete waits for n messages and fails unless they are seq 1 to n, each once, in
// order, with no recovery reported failed.
func (b *inbox) checkComplete(t testing.TB, n int) {
	t.Helper()
	ms := b.waitMessages(t, n)
	checkSequence(t, ms, 1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.failed) != 0 || len(b.msgs) != n {
		t.Fatalf("recovery failed for %v; %d messages, want %d", b.failed, len(b.msgs), n)
	}
}

func seqs(ms []client.Message) []uint64 {
	out := make([]uint64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

// checkSequence fails unless ms are channel's messages from seq `from` on, by one, each once,
// with data {"n":seq} and the same epoch.
func checkSequence(t testing.TB, ms []client.Message, from uint64) {
	t.Helper()
	for i, m := range ms {
		want := from + uint64(i)
		if m.Seq != want {
			t.Fatalf("message %d has seq %d, want %d (all: %v)", i, m.Seq, want, seqs(ms))
		}
		if string(m.Data) != fmt.Sprintf(`{"n":%d}`, want) {
			t.Fatalf("message seq %d carries %s", m.Seq, m.Data)
		}
		if m.Epoch == "" || m.Epoch != ms[0].Epoch {
			t.Fatalf("message seq %d has epoch %q, the first had %q", m.Seq, m.Epoch, ms[0].Epoch)
		}
	}
}

func dial(t testing.TB, url string, o client.Options) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := client.Dial(ctx, url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// eventually polls cond until it holds; only the giving up is the wall clock's.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sleeper is an injected Options.Sleep: it records each delay asked for and returns when the
// test releases it (or at once once opened), never by the wall clock.
type sleeper struct {
	mu     sync.Mutex
	delays []time.Duration
	asked  chan time.Duration // every delay, as asked (buffered)
	gate   chan struct{}      // one receive releases one sleep
	open   chan struct{}      // closed: every sleep returns at once
}

func newSleeper() *sleeper {
	return &sleeper{asked: make(chan time.Duration, 100000), gate: make(chan struct{}), open: make(chan struct{})}
}

func (s *sleeper) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.delays = append(s.delays, d)
	s.mu.Unlock()
	s.asked <- d
	select {
	case <-s.gate:
		return nil
	case <-s.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// next waits until a sleep is asked for and returns its delay.
func (s *sleeper) next(t testing.TB) time.Duration {
	t.Helper()
	select {
	case d := <-s.asked:
		return d
	case <-time.After(wait):
		t.Fatal("no reconnect delay was asked for")
		return 0
	}
}

func (s *sleeper) release(t testing.TB) {
	t.Helper()
	select {
	case s.gate <- struct{}{}:
	case <-time.After(wait):
		t.Fatal("nothing to release")
	}
}

func (s *sleeper) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.delays)
}

// proxy is a TCP proxy on a loopback port to target, which the test can cut (close every
// connection through it) and hold (stop passing the gateway's bytes to the client).
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	held   bool
	cond   *sync.Cond
	epoch  int // bumped by cut: a held copy from before a cut drops what it holds
	accept int // connections accepted
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.cond = sync.NewCond(&p.mu)
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *proxy) url() string { return "ws://" + p.ln.Addr().String() + "/" }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.accept++
		epoch := p.epoch
		p.mu.Unlock()
		go func() { io.Copy(s, c); s.Close(); c.Close() }()
		go p.down(c, s, epoch)
	}
}

// down copies the gateway's bytes to the client, waiting while held.
func (p *proxy) down(c, s net.Conn, epoch int) {
	defer c.Close()
	defer s.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.held && p.epoch == epoch {
				p.cond.Wait()
			}
			cut := p.epoch != epoch
			p.mu.Unlock()
			if cut {
				return
			}
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// hold stops (true) or resumes (false) the gateway-to-client direction.
func (p *proxy) hold(on bool) {
	p.mu.Lock()
	p.held = on
	p.cond.Broadcast()
	p.mu.Unlock()
}

// cut closes every connection through the proxy, dropping what a hold kept.
func (p *proxy) cut() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.epoch++
	p.cond.Broadcast()
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

func (p *proxy) accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accept
}
