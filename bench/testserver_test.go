package bench

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"
)

// testServer is an independent WebSocket server built on gorilla/websocket
// for the driver's tests. It implements echo (path /echo) and the pub/sub
// protocol subset of docs/protocol.md (any other path), including HTTP
// publishing at /api/publish, so the driver is tested against code it does
// not share.
type testServer struct {
	srv       *httptest.Server
	up        websocket.Upgrader
	apiKey    string
	pingEvery time.Duration
	reject    int // when non-zero, answer upgrades with this status
	// noClientPublish answers the publish op as wsgate without
	// -client-publish does: error 403, and after three of them a close
	// with 1008 "too many errors".
	noClientPublish bool
	// onSubscribe, when set, replaces the answer to a subscribe request:
	// "close" sends a close frame 1008 "bye from the test", "reset" resets
	// the TCP connection.
	onSubscribe string
	// epochNotice follows every subscribed answer with a second one at the
	// same seq carrying an epoch, as a wsgate cluster node does for a channel
	// that gets its first epoch.
	epochNotice bool

	mu       sync.Mutex
	channels map[string]*tsChannel
	sources  map[string]int // remote IP -> connections

	conns  atomic.Int64 // currently open
	total  atomic.Int64 // ever accepted
	pongs  atomic.Int64
	echoed atomic.Int64

	// Hijacked WebSocket handlers outlive httptest's bookkeeping, so the
	// server counts them itself and refuses new ones once closing.
	hmu      sync.Mutex
	hcond    *sync.Cond
	handlers int
	closing  bool
}

type tsChannel struct {
	seq  int64
	subs map[*tsConn]bool
	ids  map[string]bool
}

type tsConn struct {
	ws  *websocket.Conn
	wmu sync.Mutex
}

func (c *tsConn) send(v any) {
	b, _ := json.Marshal(v)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	c.ws.WriteMessage(websocket.TextMessage, b)
}

func newTestServer(t testing.TB, opts ...func(*testServer)) *testServer {
	t.Helper()
	s := &testServer{channels: map[string]*tsChannel{}, sources: map[string]int{}}
	s.hcond = sync.NewCond(&s.hmu)
	for _, o := range opts {
		o(s)
	}
	s.up.CheckOrigin = func(*http.Request) bool { return true }
	mux := http.NewServeMux()
	mux.HandleFunc("/api/publish", s.httpPublish)
	mux.HandleFunc("/", s.serveWS)
	s.srv = httptest.NewUnstartedServer(mux)
	// Plenty of backlog for connection bursts from the driver.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.srv.Listener = ln
	s.srv.Start()
	t.Cleanup(func() {
		s.hmu.Lock()
		s.closing = true
		s.hmu.Unlock()
		s.srv.CloseClientConnections()
		s.srv.Close()
		s.hmu.Lock()
		for s.handlers > 0 {
			s.hcond.Wait()
		}
		s.hmu.Unlock()
	})
	return s
}

func (s *testServer) wsURL(path string) string {
	return "ws://" + s.srv.Listener.Addr().String() + path
}

func (s *testServer) httpURL(path string) string { return s.srv.URL + path }

func (s *testServer) serveWS(w http.ResponseWriter, r *http.Request) {
	if s.reject != 0 {
		http.Error(w, "rejected by test", s.reject)
		return
	}
	s.hmu.Lock()
	if s.closing {
		s.hmu.Unlock()
		http.Error(w, "closing", http.StatusServiceUnavailable)
		return
	}
	s.handlers++
	s.hmu.Unlock()
	defer func() {
		s.hmu.Lock()
		s.handlers--
		s.hcond.Broadcast()
		s.hmu.Unlock()
	}()
	ws, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	s.mu.Lock()
	s.sources[host]++
	s.mu.Unlock()
	s.conns.Add(1)
	s.total.Add(1)
	defer s.conns.Add(-1)
	c := &tsConn{ws: ws}
	defer ws.Close()
	ws.SetPongHandler(func(string) error { s.pongs.Add(1); return nil })
	if s.pingEvery > 0 {
		done := make(chan struct{})
		defer close(done)
		go func() {
			t := time.NewTicker(s.pingEvery)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					c.wmu.Lock()
					err := ws.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(5*time.Second))
					c.wmu.Unlock()
					if err != nil {
						return
					}
				}
			}
		}()
	}
	if r.URL.Path == "/echo" {
		for {
			op, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			c.wmu.Lock()
			err = ws.WriteMessage(op, msg)
			c.wmu.Unlock()
			if err != nil {
				return
			}
			s.echoed.Add(1)
		}
	}
	defer s.unsubscribeAll(c)
	refused := 0
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var req struct {
			Op      string          `json:"op"`
			Channel string          `json:"channel"`
			ID      string          `json:"id"`
			Data    json.RawMessage `json:"data"`
		}
		if json.Unmarshal(msg, &req) != nil {
			c.send(map[string]any{"op": "error", "code": 400, "reason": "bad json"})
			continue
		}
		switch req.Op {
		case "subscribe":
			switch s.onSubscribe {
			case "close":
				c.wmu.Lock()
				ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1008, "bye from the test"), time.Now().Add(5*time.Second))
				c.wmu.Unlock()
				// Read until the client's close frame (or EOF), as
				// the closing handshake wants (RFC 6455 7.1.1).
				for {
					if _, _, err := ws.ReadMessage(); err != nil {
						return
					}
				}
			case "reset":
				tc := ws.UnderlyingConn().(*net.TCPConn)
				tc.SetLinger(0) // close(2) sends RST (tcp(7), SO_LINGER 0)
				tc.Close()
				return
			}
			s.mu.Lock()
			ch := s.channel(req.Channel)
			ch.subs[c] = true
			c.send(map[string]any{"op": "subscribed", "channel": req.Channel, "seq": ch.seq})
			if s.epochNotice {
				c.send(map[string]any{"op": "subscribed", "channel": req.Channel, "seq": ch.seq, "epoch": "E1"})
			}
			s.mu.Unlock()
		case "unsubscribe":
			s.mu.Lock()
			delete(s.channel(req.Channel).subs, c)
			s.mu.Unlock()
			c.send(map[string]any{"op": "unsubscribed", "channel": req.Channel})
		case "publish":
			if s.noClientPublish {
				c.send(map[string]any{"op": "error", "code": 403, "reason": "publishing from clients is disabled"})
				if refused++; refused == 3 {
					c.wmu.Lock()
					ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1008, "too many errors"), time.Now().Add(5*time.Second))
					c.wmu.Unlock()
				}
				continue
			}
			seq, _, dup := s.publish(req.Channel, req.ID, req.Data)
			if dup {
				c.send(map[string]any{"op": "duplicate", "channel": req.Channel, "id": req.ID})
			} else {
				c.send(map[string]any{"op": "published", "channel": req.Channel, "seq": seq, "id": req.ID})
			}
		default:
			c.send(map[string]any{"op": "error", "code": 400, "reason": "unknown op"})
		}
	}
}

// channel returns the named channel; s.mu held.
func (s *testServer) channel(name string) *tsChannel {
	ch := s.channels[name]
	if ch == nil {
		ch = &tsChannel{subs: map[*tsConn]bool{}, ids: map[string]bool{}}
		s.channels[name] = ch
	}
	return ch
}

func (s *testServer) unsubscribeAll(c *tsConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.channels {
		delete(ch.subs, c)
	}
}

// publish fans a message out in seq order (the lock orders it against
// subscriptions too, so "subscribed" seq N is followed by N+1).
func (s *testServer) publish(channel, id string, data json.RawMessage) (seq int64, delivered int, dup bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channel(channel)
	if id != "" {
		if ch.ids[id] {
			return ch.seq, 0, true
		}
		ch.ids[id] = true
	}
	ch.seq++
	m := map[string]any{"op": "message", "channel": channel, "seq": ch.seq, "data": data}
	if id != "" {
		m["id"] = id
	}
	b, _ := json.Marshal(m)
	for c := range ch.subs {
		c.wmu.Lock()
		c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
		c.ws.WriteMessage(websocket.TextMessage, b)
		c.wmu.Unlock()
	}
	return ch.seq, len(ch.subs), false
}

func (s *testServer) httpPublish(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if s.apiKey != "" && r.Header.Get("Authorization") != "Bearer "+s.apiKey {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	var req struct {
		Channel string          `json:"channel"`
		ID      string          `json:"id"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Channel == "" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	seq, n, dup := s.publish(req.Channel, req.ID, req.Data)
	w.Header().Set("Content-Type", "application/json")
	if dup {
		w.WriteHeader(http.StatusAlreadyReported)
	}
	json.NewEncoder(w).Encode(map[string]any{"delivered": n, "seq": seq})
}

func (s *testServer) sourceIPs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ips []string
	for ip := range s.sources {
		ips = append(ips, ip)
	}
	return ips
}

// closedAddr returns a loopback host:port on which connections are refused:
// a socket is bound to it, so no other socket can take the port while the
// test runs, but it never listens. A port taken from a closed listener
// instead could be reused meanwhile, e.g. as the source port of a client
// socket (it lies in ip_local_port_range).
func closedAddr(t testing.TB) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(sa.(*unix.SockaddrInet4).Port)
}

// waitFor polls cond without a time bound on the test's outcome: it fails
// only if cond never holds before the test binary's own -timeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if t.Context().Err() != nil {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
