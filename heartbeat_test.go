package wsgate

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/conn"
	"github.com/wsgate/wsgate/netpoll"
)

// Integration tests of issue 3: heartbeats, the handshake, idle and close deadlines, and their
// metrics, over real loopback TCP against a running Server. Most of them run the loops on a fake
// clock (Config.Now): the test moves the clock a tick at a time and then wakes every loop, so
// each deadline is checked to the tick and nothing depends on how fast this machine is.

const hbTick = netpoll.DefaultWheelTick

// hbClock is a fake monotonic clock for Config.Now.
type hbClock struct{ ns atomic.Int64 }

func newHBClock() *hbClock {
	c := &hbClock{}
	c.ns.Store(1_000_000_000_000)
	return c
}

func (c *hbClock) Now() int64 { return c.ns.Load() }

// advance moves the clock and returns once every loop has run a complete pass (timers due by
// the new time fired, output flushed) with it.
func (c *hbClock) advance(t testing.TB, s *Server, d time.Duration) {
	t.Helper()
	c.ns.Add(int64(d))
	hbSync(t, s)
}

// hbSync returns once every loop has completed a pass that started after the call. A loop reads
// its clock for the wheel after running its tasks, so the pass that runs a first task posted
// now fires what is due; a second task, posted once the first ran, runs in the next pass, after
// that one ended.
func hbSync(t testing.TB, s *Server) {
	t.Helper()
	for range 2 {
		var wg sync.WaitGroup
		for _, e := range s.Engines() {
			wg.Add(1)
			if !e.Post(wg.Done) {
				t.Fatal("a loop has stopped")
			}
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("loops did not run posted tasks")
		}
	}
}

// hbWait polls cond until it holds; the 20 s bound only ends a test that is failing anyway.
func hbWait(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// hbSum adds up one counter over every engine.
func hbSum(s *Server, f func(st *conn.Stats) uint64) uint64 {
	var n uint64
	for _, e := range s.Engines() {
		n += f(&e.Stats)
	}
	return n
}

func hbPingsSent(s *Server) uint64 {
	return hbSum(s, func(st *conn.Stats) uint64 { return st.PingsSent.Load() })
}

func hbFramesIn(s *Server) uint64 {
	return hbSum(s, func(st *conn.Stats) uint64 { return st.FramesIn.Load() })
}

// hbMetric returns the value of one sample of the server's /metrics output, as a scrape sees it.
func hbMetric(t testing.TB, s *Server, name string) float64 {
	t.Helper()
	var buf bytes.Buffer
	s.Metrics().WritePrometheus(&buf)
	for _, line := range strings.Split(buf.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not exported", name)
	return 0
}

// hbPeer is a raw-TCP client whose frames are read by a goroutine of its own (gobwas/ws's
// reader). It counts the pings it gets, answers them or not, and records the close frame and
// the clock reading when the server closed TCP.
type hbPeer struct {
	r       *rawClient
	answer  bool
	clock   *hbClock
	sent    *atomic.Int64 // frames written by every client of the test
	pings   *atomic.Int64 // pings received by every client of the test
	done    chan struct{}
	mu      sync.Mutex
	pingAt  []int64
	close   *ws.Frame
	eofAt   int64
	readErr error
}

func hbDial(t *testing.T, s *Server, clock *hbClock, sent, pings *atomic.Int64, answer bool) *hbPeer {
	t.Helper()
	p := &hbPeer{r: dialRaw(t, s).handshake(), answer: answer, clock: clock, sent: sent, pings: pings,
		done: make(chan struct{})}
	p.r.c.SetReadDeadline(time.Time{})
	go p.read()
	return p
}

func (p *hbPeer) read() {
	defer close(p.done)
	for {
		f, err := ws.ReadFrame(p.r.br)
		p.mu.Lock()
		switch {
		case errors.Is(err, io.EOF):
			p.eofAt = p.clock.Now()
		case err != nil:
			p.readErr = err
		case f.Header.OpCode == ws.OpPing:
			p.pingAt = append(p.pingAt, p.clock.Now())
			if p.answer {
				p.sent.Add(1)
				p.r.c.Write(clientFrame(ws.OpPong, true, f.Payload))
			}
			p.pings.Add(1)
		case f.Header.OpCode == ws.OpClose:
			p.close = &f
		}
		p.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// send writes a text message from the test goroutine.
func (p *hbPeer) send(msg string) {
	p.sent.Add(1)
	p.r.write(clientFrame(ws.OpText, true, []byte(msg)))
}

// TestHeartbeatDeadAndLiveClients (issue 3, 100 ms x 3): a raw client that completed the
// handshake but never answers pings is closed, with 1001 "ping timeout", exactly when three
// intervals have passed since the server last heard from it; a raw client answering pings, a
// gorilla/websocket client (which answers pings by itself) and a client that only sends data
// are pinged once per interval and stay connected.
func TestHeartbeatDeadAndLiveClients(t *testing.T) {
	const (
		interval = 100 * time.Millisecond
		misses   = 3
		rounds   = 50
	)
	clock := newHBClock()
	s := startServer(t, Config{Handler: Echo{}, Now: clock.Now, Conn: connCfg(func(c *ConnConfig) {
		c.PingInterval = interval
		c.PongMisses = misses
	})})
	var sent, pings atomic.Int64
	dead := hbDial(t, s, clock, &sent, &pings, false)
	ponger := hbDial(t, s, clock, &sent, &pings, true)
	talker := hbDial(t, s, clock, &sent, &pings, false) // sends data, never answers a ping

	var gorillaPings atomic.Int64
	g, _, err := websocket.DefaultDialer.Dial(wsURL(s, "/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.SetPingHandler(func(data string) error {
		sent.Add(1)
		err := g.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(10*time.Second))
		gorillaPings.Add(1)
		pings.Add(1)
		return err
	})
	gorillaDone := make(chan error, 1)
	go func() {
		for {
			if _, _, err := g.ReadMessage(); err != nil {
				gorillaDone <- err
				return
			}
		}
	}()
	hbWait(t, "4 connections", func() bool { return s.Connections() == 4 })
	hbSync(t, s)
	opened := clock.Now() // the clock has not moved since before the first dial
	scheduled0 := hbMetric(t, s, "wsgate_timers_scheduled_total")
	fired0 := hbMetric(t, s, "wsgate_timers_fired_total")

	deadline := opened + misses*int64(interval)
	steps := rounds * int(interval/hbTick)
	for step := 1; step <= steps; step++ {
		clock.advance(t, s, hbTick)
		hbWait(t, "every ping to reach its client", func() bool { return uint64(pings.Load()) == hbPingsSent(s) })
		if step%(2*int(interval/hbTick)) == 0 { // within the 3 intervals allowed
			talker.send("still here")
		}
		hbWait(t, "the server to read every answer", func() bool { return uint64(sent.Load()) == hbFramesIn(s) })
		want := int64(4)
		if clock.Now() >= deadline {
			want = 3
		}
		if got := s.Connections(); got != want {
			t.Fatalf("%v after open: %d connections, want %d (the silent client is due at %v)",
				time.Duration(clock.Now()-opened), got, want, time.Duration(deadline-opened))
		}
		if clock.Now() == deadline {
			<-dead.done // its reader notes the EOF before the clock moves on
		}
	}

	<-dead.done
	dead.mu.Lock()
	if dead.close == nil {
		t.Fatal("the silent client got no close frame")
	}
	if code, reason := ws.ParseCloseFrameData(dead.close.Payload); code != ws.StatusGoingAway || reason != "ping timeout" {
		t.Fatalf("close frame %d %q, want 1001 \"ping timeout\"", code, reason)
	}
	if dead.eofAt != deadline || dead.readErr != nil {
		t.Fatalf("silent client: TCP closed %v after open (read error %v), want %v",
			time.Duration(dead.eofAt-opened), dead.readErr, time.Duration(deadline-opened))
	}
	if len(dead.pingAt) < misses-1 {
		t.Fatalf("the silent client got %d pings before being given up", len(dead.pingAt))
	}
	deadPings := len(dead.pingAt)
	dead.mu.Unlock()

	for name, p := range map[string]*hbPeer{"answering": ponger, "data-only": talker} {
		p.mu.Lock()
		if len(p.pingAt) != rounds {
			t.Fatalf("%s client: %d pings in %d intervals, want one per interval", name, len(p.pingAt), rounds)
		}
		for k := 1; k < len(p.pingAt); k++ {
			if d := time.Duration(p.pingAt[k] - p.pingAt[k-1]); d != interval {
				t.Fatalf("%s client: ping %d came %v after the previous one", name, k, d)
			}
		}
		if p.close != nil || p.eofAt != 0 {
			t.Fatalf("%s client was closed", name)
		}
		p.mu.Unlock()
	}
	if n := gorillaPings.Load(); n != rounds {
		t.Fatalf("gorilla client: %d pings in %d intervals", n, rounds)
	}
	select {
	case err := <-gorillaDone:
		t.Fatalf("gorilla client lost its connection: %v", err)
	default:
	}
	if got := s.Connections(); got != 3 {
		t.Fatalf("%d connections at the end, want the 3 live ones", got)
	}

	// The metrics a scrape sees.
	totalPings := float64(deadPings + 3*rounds)
	for name, want := range map[string]float64{
		"wsgate_ping_timeouts_total":                       1,
		"wsgate_pings_sent_total":                          totalPings,
		`wsgate_close_codes_sent_total{code="1001"}`:       1,
		"wsgate_connections_open":                          3,
		`wsgate_handshake_rejects_total{reason="timeout"}`: 0,
	} {
		if got := hbMetric(t, s, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	// Every ping and the dead client's deadline is a timer firing; each firing re-files it.
	if d := hbMetric(t, s, "wsgate_timers_fired_total") - fired0; d < totalPings+1 {
		t.Errorf("wsgate_timers_fired_total grew by %v, want at least %v", d, totalPings+1)
	}
	if d := hbMetric(t, s, "wsgate_timers_scheduled_total") - scheduled0; d < totalPings {
		t.Errorf("wsgate_timers_scheduled_total grew by %v, want at least %v", d, totalPings)
	}
	// Every tick was processed on time: no lag.
	if lag := hbMetric(t, s, "wsgate_wheel_tick_lag_seconds"); lag != 0 {
		t.Errorf("wsgate_wheel_tick_lag_seconds = %v with the clock moved a tick at a time", lag)
	}
}

// TestHeartbeatRealClock: the same dead client on the real clock, where nothing wakes the loop
// but the timing wheel's own deadline. It is closed no earlier than 3 x 100 ms after its
// handshake, with 1001 "ping timeout", after whatever pings the server sent.
func TestHeartbeatRealClock(t *testing.T) {
	const interval, misses = 100 * time.Millisecond, 3
	s := startServer(t, Config{Handler: Echo{}, Conn: connCfg(func(c *ConnConfig) {
		c.PingInterval = interval
		c.PongMisses = misses
	})})
	start := time.Now() // before the request is sent: the server's open time is later
	r := dialRaw(t, s).handshake()
	pings := 0
	var f ws.Frame
	for {
		f = r.readFrame() // a 10 s deadline: only a failing test waits that long
		if f.Header.OpCode != ws.OpPing {
			break
		}
		pings++
	}
	elapsed := time.Since(start)
	if f.Header.OpCode != ws.OpClose {
		t.Fatalf("got %v, want pings then a close", f.Header.OpCode)
	}
	if code, reason := ws.ParseCloseFrameData(f.Payload); code != ws.StatusGoingAway || reason != "ping timeout" {
		t.Fatalf("close %d %q", code, reason)
	}
	r.expectEOF()
	if elapsed < misses*interval {
		t.Fatalf("closed %v after the handshake started, before %d intervals of %v", elapsed, misses, interval)
	}
	// How many pings fit before the close depends on when this machine ran the loop (a loop woken
	// late sends one ping for the intervals it missed); TestHeartbeatDeadAndLiveClients counts
	// them to the tick on a fake clock. Here: every ping the server sent came before the close.
	if sent := hbPingsSent(s); uint64(pings) != sent {
		t.Fatalf("%d pings received before the close, the server sent %d", pings, sent)
	}
	if got := hbMetric(t, s, "wsgate_ping_timeouts_total"); got != 1 {
		t.Fatalf("wsgate_ping_timeouts_total = %v", got)
	}
	hbWait(t, "the connection to be released", func() bool { return s.Connections() == 0 })
}

// TestSlowlorisHandshakeDeadline: 2000 clients that send half a request head hold their sockets
// only until the handshake deadline, at which the server closes every one of them, without
// answering, while a gorilla/websocket client is served all along. No timer is left behind.
func TestSlowlorisHandshakeDeadline(t *testing.T) {
	const (
		flood   = 2000
		timeout = 5 * time.Second
	)
	clock := newHBClock()
	s := startServer(t, Config{Handler: Echo{}, Now: clock.Now, Conn: connCfg(func(c *ConnConfig) {
		c.HandshakeTimeout = timeout
		c.PingInterval = 0 // no pings
	})})
	g, _, err := websocket.DefaultDialer.Dial(wsURL(s, "/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	hbWait(t, "the gorilla client", func() bool { return s.Connections() == 1 })
	hbSync(t, s)
	pending0 := hbMetric(t, s, "wsgate_timers_pending")

	stop := make(chan struct{})
	echoes := make(chan int, 1)
	echoErr := make(chan error, 1)
	var echoed atomic.Int64
	go func() { // a healthy client, served all along
		n := 0
		defer func() { echoes <- n }()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			msg := []byte("echo " + strconv.Itoa(i))
			if err := g.WriteMessage(websocket.TextMessage, msg); err != nil {
				echoErr <- err
				return
			}
			_, got, err := g.ReadMessage()
			if err != nil || !bytes.Equal(got, msg) {
				echoErr <- errors.Join(err, errors.New("echo differs: "+string(got)))
				return
			}
			n++
			echoed.Store(int64(n))
		}
	}()

	half := []byte("GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n")
	conns := make([]net.Conn, 0, flood)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < flood; i++ {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		if _, err := c.Write(half); err != nil {
			t.Fatal(err)
		}
	}
	hbWait(t, "the flood to be accepted", func() bool { return s.Connections() == flood+1 })
	hbSync(t, s) // every half request has been read
	echoedDuringFlood := echoed.Load()

	clock.advance(t, s, timeout-hbTick)
	if got := s.Connections(); got != flood+1 {
		t.Fatalf("a tick before the handshake deadline the server holds %d connections, want %d", got, flood+1)
	}
	if lag := hbMetric(t, s, "wsgate_wheel_tick_lag_seconds"); lag < 0.1 {
		t.Fatalf("wsgate_wheel_tick_lag_seconds = %v after the clock jumped %v past due work", lag, timeout-hbTick)
	}
	clock.advance(t, s, hbTick)
	if got := s.Connections(); got != 1 {
		t.Fatalf("at the handshake deadline the server holds %d connections, want 1", got)
	}
	if lag := hbMetric(t, s, "wsgate_wheel_tick_lag_seconds"); lag != 0 {
		t.Fatalf("wsgate_wheel_tick_lag_seconds = %v for a tick processed on time", lag)
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		// EOF, or a reset when the server closed before reading all of the half request (a
		// loop reads at most 1024 ready sockets per pass): either way, no answer.
		n, err := c.Read(make([]byte, 64))
		if n != 0 || !(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
			t.Fatalf("half-open client %d: read %d bytes, %v; want the socket closed without an answer", i, n, err)
		}
	}
	hbWait(t, "more echoes after the flood was cut", func() bool { return echoed.Load() > echoedDuringFlood+10 })
	close(stop)
	select {
	case err := <-echoErr:
		t.Fatalf("the healthy client failed: %v", err)
	case n := <-echoes:
		if n == 0 {
			t.Fatal("no echo")
		}
	}
	for name, want := range map[string]float64{
		"wsgate_handshake_timeouts_total":                  flood,
		`wsgate_handshake_rejects_total{reason="timeout"}`: flood,
		"wsgate_connections_open":                          1,
		"wsgate_timers_pending":                            pending0,
	} {
		if got := hbMetric(t, s, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// TestCloseHandshakeTimeout: the server closes idle connections (1000 "idle timeout"); a client
// that answers the close frame has its socket closed at once, a silent one has CloseTimeout to
// answer and then loses its socket, to the tick.
func TestCloseHandshakeTimeout(t *testing.T) {
	const idle, closeTO = time.Second, 3 * time.Second
	clock := newHBClock()
	s := startServer(t, Config{Handler: Echo{}, Now: clock.Now, Conn: connCfg(func(c *ConnConfig) {
		c.IdleTimeout = idle
		c.CloseTimeout = closeTO
		c.PingInterval = 0 // no pings
	})})
	var sent, pings atomic.Int64
	silent := hbDial(t, s, clock, &sent, &pings, false)
	g, _, err := websocket.DefaultDialer.Dial(wsURL(s, "/"), nil) // answers a close by itself
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	gorillaErr := make(chan error, 1)
	go func() {
		_, _, err := g.ReadMessage()
		gorillaErr <- err
	}()
	hbWait(t, "2 connections", func() bool { return s.Connections() == 2 })
	hbSync(t, s)
	opened := clock.Now()

	clock.advance(t, s, idle-hbTick)
	if got := s.Connections(); got != 2 {
		t.Fatalf("%d connections before the idle timeout", got)
	}
	clock.advance(t, s, hbTick)
	// gorilla answers the close frame; the server then closes TCP in the pass that reads it.
	err = <-gorillaErr
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 1000 || ce.Text != "idle timeout" {
		t.Fatalf("gorilla: %v, want close 1000 \"idle timeout\"", err)
	}
	hbWait(t, "the answered close to release its socket", func() bool { return s.Connections() == 1 })
	closeSent := clock.Now()
	for clock.Now() < closeSent+int64(closeTO) {
		if got := s.Connections(); got != 1 {
			t.Fatalf("%v after the close frame: %d connections, want the silent one kept until %v",
				time.Duration(clock.Now()-closeSent), got, closeTO)
		}
		clock.advance(t, s, hbTick)
	}
	if got := s.Connections(); got != 0 {
		t.Fatalf("at the close timeout the server holds %d connections", got)
	}
	<-silent.done
	silent.mu.Lock()
	defer silent.mu.Unlock()
	if silent.close == nil {
		t.Fatal("no close frame")
	}
	if code, reason := ws.ParseCloseFrameData(silent.close.Payload); code != 1000 || reason != "idle timeout" {
		t.Fatalf("close %d %q", code, reason)
	}
	if want := opened + int64(idle+closeTO); silent.eofAt != want {
		t.Fatalf("TCP closed %v after open, want %v", time.Duration(silent.eofAt-opened), idle+closeTO)
	}
	for name, want := range map[string]float64{
		"wsgate_idle_timeouts_total":                     2,
		"wsgate_close_timeouts_total":                    1,
		`wsgate_close_codes_sent_total{code="1000"}`:     2,
		`wsgate_close_codes_received_total{code="1000"}`: 1,
	} {
		if got := hbMetric(t, s, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}
