package conn

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"
)

// Heartbeats and deadlines over real loopback TCP, against gorilla/websocket (a client
// implementation independent of ours) and raw clients, with the loop running on its own
// goroutine. The deadlines themselves are checked to the tick on socketpairs in
// heartbeat_test.go; these tests add what only a running loop and real clients show.

// silentPeer is a raw-TCP client that completed the handshake and never answers anything. A
// goroutine of its own reads the server's frames (gobwas/ws's reader), counts the pings and notes
// the close frame and the fake clock's reading when the server closed TCP.
type silentPeer struct {
	done    chan struct{} // closed when the reader has seen EOF or an error
	mu      sync.Mutex    // guards the fields below, written by the reader
	pingAt  []int64
	close   *ws.Frame
	eofAt   int64
	readErr error
}

// dialSilent connects a silentPeer; pings counts the pings every client of the test received.
func (s *tcpServer) dialSilent(t testing.TB, pings *atomic.Int64) *silentPeer {
	t.Helper()
	r := s.dial(t)
	p := &silentPeer{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			f, err := ws.ReadFrame(r.br)
			p.mu.Lock()
			switch {
			case errors.Is(err, io.EOF):
				p.eofAt = s.clock.Now()
			case err != nil:
				p.readErr = err
			case f.Header.OpCode == ws.OpPing:
				p.pingAt = append(p.pingAt, s.clock.Now())
				pings.Add(1)
			case f.Header.OpCode == ws.OpClose:
				p.close = &f
			}
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return p
}

// wantCounts reports every counter, by name, whose value (first) is not the one wanted (second).
func wantCounts(t testing.TB, counts map[string][2]uint64) {
	t.Helper()
	for name, c := range counts {
		if c[0] != c[1] {
			t.Errorf("%s = %d, want %d", name, c[0], c[1])
		}
	}
}

// TestHeartbeatIndependentClient (100 ms x 3): a gorilla/websocket client, which answers pings
// by itself, is pinged once per interval and stays connected, while a raw client that completed
// the handshake but never answers is closed, with 1001 "ping timeout", exactly when three
// intervals have passed since the server last heard from it. Peers that answer pings or only
// send data are followed to the tick on socketpairs (TestPingEveryIntervalSpreadByJitter,
// TestAnyFrameIsLiveness).
func TestHeartbeatIndependentClient(t *testing.T) {
	const (
		interval = 100 * time.Millisecond
		misses   = 3
		rounds   = 50
	)
	clock := newFakeClock()
	s := startTCP(t, Config{PingInterval: interval, PongMisses: misses}, clock, nil)
	st := &s.e.Stats
	var sent, pings atomic.Int64 // frames the clients wrote, pings they received
	dead := s.dialSilent(t, &pings)

	var gorillaMu sync.Mutex
	var gorillaPingAt []int64
	g, _, err := websocket.DefaultDialer.Dial("ws://"+s.addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.SetPingHandler(func(data string) error {
		sent.Add(1)
		err := g.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(10*time.Second))
		gorillaMu.Lock()
		gorillaPingAt = append(gorillaPingAt, clock.Now())
		gorillaMu.Unlock()
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
	waitUntil(t, "2 connections", func() bool { return s.e.Connections() == 2 })
	s.sync(t)
	opened := clock.Now() // the clock has not moved since before the first dial
	wheel0 := s.loop.WheelStats()

	deadline := opened + misses*int64(interval)
	for step := 1; step <= rounds*int(interval/testTick); step++ {
		s.advance(t, testTick)
		waitUntil(t, "every ping to reach its client", func() bool { return uint64(pings.Load()) == st.PingsSent.Load() })
		waitUntil(t, "the server to read every answer", func() bool { return uint64(sent.Load()) == st.FramesIn.Load() })
		want := int64(2)
		if clock.Now() >= deadline {
			want = 1
		}
		if got := s.e.Connections(); got != want {
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

	gorillaMu.Lock()
	if len(gorillaPingAt) != rounds {
		t.Fatalf("gorilla client: %d pings in %d intervals, want one per interval", len(gorillaPingAt), rounds)
	}
	for k := 1; k < len(gorillaPingAt); k++ {
		if d := time.Duration(gorillaPingAt[k] - gorillaPingAt[k-1]); d != interval {
			t.Fatalf("gorilla client: ping %d came %v after the previous one", k, d)
		}
	}
	gorillaMu.Unlock()
	select {
	case err := <-gorillaDone:
		t.Fatalf("gorilla client lost its connection: %v", err)
	default:
	}
	if got := s.e.Connections(); got != 1 {
		t.Fatalf("%d connections at the end, want the live one", got)
	}

	// The counters a metrics scrape sums (metrics_test.go in the root package names them).
	totalPings := uint64(deadPings + rounds)
	for name, c := range map[string]struct{ got, want uint64 }{
		"PingTimeouts":     {st.PingTimeouts.Load(), 1},
		"PingsSent":        {st.PingsSent.Load(), totalPings},
		"CloseSent[1001]":  {st.CloseSent[closeIndex(1001)].Load(), 1},
		"Rejects[timeout]": {st.Rejects[RejectTimeout].Load(), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", name, c.got, c.want)
		}
	}
	// Every ping and the silent client's deadline is a timer firing; each firing re-files it.
	wheel := s.loop.WheelStats()
	if d := wheel.Fired - wheel0.Fired; d < totalPings+1 {
		t.Errorf("the wheel fired %d timers, want at least %d", d, totalPings+1)
	}
	if d := wheel.Scheduled - wheel0.Scheduled; d < totalPings {
		t.Errorf("the wheel scheduled %d timers, want at least %d", d, totalPings)
	}
	// Every tick was processed on time: no lag.
	if wheel.LastLag != 0 {
		t.Errorf("wheel lag %v with the clock moved a tick at a time", wheel.LastLag)
	}
}

// TestHeartbeatRealClock: the silent client on the real clock, where nothing wakes the loop but
// the timing wheel's own deadline. It is closed no earlier than 3 x 100 ms after its handshake,
// with 1001 "ping timeout", after whatever pings the server sent.
func TestHeartbeatRealClock(t *testing.T) {
	const interval, misses = 100 * time.Millisecond, 3
	s := startTCP(t, Config{PingInterval: interval, PongMisses: misses}, nil, nil)
	start := time.Now() // before the request is sent: the server's open time is later
	r := s.dial(t)
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
	// late sends one ping for the intervals it missed); TestHeartbeatIndependentClient counts
	// them to the tick on a fake clock. Here: every ping the server sent came before the close.
	if sent := s.e.Stats.PingsSent.Load(); uint64(pings) != sent {
		t.Fatalf("%d pings received before the close, the server sent %d", pings, sent)
	}
	if got := s.e.Stats.PingTimeouts.Load(); got != 1 {
		t.Fatalf("PingTimeouts = %d", got)
	}
	waitUntil(t, "the connection to be released", func() bool { return s.e.Connections() == 0 })
}

// TestSlowlorisHandshakeDeadline: 2000 clients that send half a request head hold their sockets
// only until the handshake deadline, at which the server closes every one of them, without
// answering, while a gorilla/websocket client is served all along. No timer is left behind.
func TestSlowlorisHandshakeDeadline(t *testing.T) {
	const (
		flood   = 2000
		timeout = 5 * time.Second
	)
	clock := newFakeClock()
	s := startTCP(t, Config{HandshakeTimeout: timeout}, clock, nil) // no pings
	g, _, err := websocket.DefaultDialer.Dial("ws://"+s.addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	waitUntil(t, "the gorilla client", func() bool { return s.e.Connections() == 1 })
	s.sync(t)
	pending0 := s.loop.WheelStats().Pending

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
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		if _, err := c.Write(half); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "the flood to be accepted", func() bool { return s.e.Connections() == flood+1 })
	s.sync(t) // every half request has been read
	echoedDuringFlood := echoed.Load()

	s.advance(t, timeout-testTick)
	if got := s.e.Connections(); got != flood+1 {
		t.Fatalf("a tick before the handshake deadline the server holds %d connections, want %d", got, flood+1)
	}
	if lag := s.loop.WheelStats().LastLag; lag < 100*time.Millisecond {
		t.Fatalf("wheel lag %v after the clock jumped %v past due work", lag, timeout-testTick)
	}
	s.advance(t, testTick)
	if got := s.e.Connections(); got != 1 {
		t.Fatalf("at the handshake deadline the server holds %d connections, want 1", got)
	}
	if lag := s.loop.WheelStats().LastLag; lag != 0 {
		t.Fatalf("wheel lag %v for a tick processed on time", lag)
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		// EOF, or a reset when the server closed before reading all of the half request (a
		// loop handles at most 1024 ready sockets per pass): either way, no answer.
		n, err := c.Read(make([]byte, 64))
		if n != 0 || !(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
			t.Fatalf("half-open client %d: read %d bytes, %v; want the socket closed without an answer", i, n, err)
		}
	}
	waitUntil(t, "more echoes after the flood was cut", func() bool { return echoed.Load() > echoedDuringFlood+10 })
	close(stop)
	select {
	case err := <-echoErr:
		t.Fatalf("the healthy client failed: %v", err)
	case n := <-echoes:
		if n == 0 {
			t.Fatal("no echo")
		}
	}
	// The counters a metrics scrape sums (wsgate_handshake_timeouts_total and the "timeout"
	// reason of wsgate_handshake_rejects_total both read Rejects[RejectTimeout]).
	if got := s.e.Stats.Rejects[RejectTimeout].Load(); got != flood {
		t.Errorf("Rejects[timeout] = %d, want %d", got, flood)
	}
	if got := s.e.Connections(); got != 1 {
		t.Errorf("Connections() = %d, want 1", got)
	}
	if got := s.loop.WheelStats().Pending; got != pending0 {
		t.Errorf("%d timers pending, want the %d from before the flood", got, pending0)
	}
}

// TestIdleCloseAnsweredByIndependentClient: the server closes an idle gorilla/websocket client
// with 1000 "idle timeout" exactly at the idle timeout; gorilla answers the close frame by itself
// and the server closes TCP in the pass that reads the answer, well before the close timeout. A
// peer that never answers is followed to the tick on a socketpair
// (TestIdleTimeoutThenCloseTimeout).
func TestIdleCloseAnsweredByIndependentClient(t *testing.T) {
	const idle, closeTO = time.Second, 3 * time.Second
	clock := newFakeClock()
	s := startTCP(t, Config{IdleTimeout: idle, CloseTimeout: closeTO}, clock, nil) // no pings
	g, _, err := websocket.DefaultDialer.Dial("ws://"+s.addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	gorillaErr := make(chan error, 1)
	go func() {
		_, _, err := g.ReadMessage()
		gorillaErr <- err
	}()
	waitUntil(t, "the connection", func() bool { return s.e.Connections() == 1 })
	s.sync(t)

	s.advance(t, idle-testTick)
	select {
	case err := <-gorillaErr:
		t.Fatalf("before the idle timeout the client got %v", err)
	default:
	}
	if got := s.e.Connections(); got != 1 {
		t.Fatalf("%d connections before the idle timeout", got)
	}
	s.advance(t, testTick)
	err = <-gorillaErr
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 1000 || ce.Text != "idle timeout" {
		t.Fatalf("gorilla: %v, want close 1000 \"idle timeout\"", err)
	}
	waitUntil(t, "the answered close to release its socket", func() bool { return s.e.Connections() == 0 })
	st := &s.e.Stats
	wantCounts(t, map[string][2]uint64{
		"IdleTimeouts":    {st.IdleTimeouts.Load(), 1},
		"CloseTimeouts":   {st.CloseTimeouts.Load(), 0},
		"CloseSent[1000]": {st.CloseSent[closeIndex(1000)].Load(), 1},
		"CloseRecv[1000]": {st.CloseRecv[closeIndex(1000)].Load(), 1},
	})
}
