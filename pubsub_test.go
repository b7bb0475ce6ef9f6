package wsgate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/pubsub"
)

// pubsubServer runs the pub/sub gateway with pc (dedup on for 30 minutes unless pc says
// otherwise, as the command line's default is) and an admin listener for its API.
func pubsubServer(t testing.TB, cfg Config, pc pubsub.Config) *Server {
	t.Helper()
	if pc.DedupWindow == 0 {
		pc.DedupWindow = 30 * time.Minute
	}
	app, err := pubsub.New(pc)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Handler = app
	if cfg.AdminAddr == "" {
		cfg.AdminAddr = "127.0.0.1:0"
	}
	return startServer(t, cfg)
}

// msg is any server -> client message.
type msg struct {
	Op      string          `json:"op"`
	Channel string          `json:"channel"`
	Seq     uint64          `json:"seq"`
	ID      string          `json:"id"`
	Data    json.RawMessage `json:"data"`
	Code    int             `json:"code"`
	Reason  string          `json:"reason"`
}

type sub struct {
	t testing.TB
	c *websocket.Conn
}

func dialSub(t testing.TB, s *Server) *sub {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(wsURL(s, "/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &sub{t: t, c: c}
}

func (s *sub) send(v string) {
	s.t.Helper()
	if err := s.c.WriteMessage(websocket.TextMessage, []byte(v)); err != nil {
		s.t.Fatal(err)
	}
}

func (s *sub) read() msg {
	s.t.Helper()
	s.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := s.c.ReadMessage()
	if err != nil {
		s.t.Fatalf("read: %v", err)
	}
	var m msg
	if err := json.Unmarshal(b, &m); err != nil {
		s.t.Fatalf("server sent invalid JSON %q: %v", b, err)
	}
	return m
}

// readRaw reads one server message as a generic JSON object.
func (s *sub) readRaw() map[string]any {
	s.t.Helper()
	s.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := s.c.ReadMessage()
	if err != nil {
		s.t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		s.t.Fatalf("server sent invalid JSON %q: %v", b, err)
	}
	return m
}

func (s *sub) subscribe(ch string) uint64 {
	s.t.Helper()
	s.send(`{"op":"subscribe","channel":"` + ch + `"}`)
	m := s.read()
	if m.Op != "subscribed" || m.Channel != ch {
		s.t.Fatalf("subscribe reply %+v", m)
	}
	return m.Seq
}

func apiPost(t testing.TB, s *Server, path, key, ctype, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+s.AdminAddr()+path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: non-JSON reply %q", path, b)
	}
	return resp.StatusCode, out
}

func apiGet(t testing.TB, s *Server, path, key string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+s.AdminAddr()+path, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestPubSubDeliveryAcrossLoops: subscribers spread over three loops all receive an HTTP publish,
// the reply counts them, unsubscribed clients stop receiving, and /api/channels lists the channel.
func TestPubSubDeliveryAcrossLoops(t *testing.T) {
	s := pubsubServer(t, Config{Loops: 3}, pubsub.Config{})
	var subs []*sub
	for i := 0; i < 12; i++ {
		c := dialSub(t, s)
		if seq := c.subscribe("news"); seq != 0 {
			t.Fatalf("first subscribe seq %d, want 0", seq)
		}
		subs = append(subs, c)
	}
	st, rep := apiPost(t, s, "/api/publish", "", "", `{"channel":"news","data":{"headline":"hi"}}`)
	if st != 200 || rep["delivered"] != float64(12) || rep["seq"] != float64(1) {
		t.Fatalf("publish: %d %v", st, rep)
	}
	for i, c := range subs {
		m := c.read()
		if m.Op != "message" || m.Channel != "news" || m.Seq != 1 || string(m.Data) != `{"headline":"hi"}` {
			t.Fatalf("sub %d got %+v", i, m)
		}
	}
	subs[0].send(`{"op":"unsubscribe","channel":"news"}`)
	if m := subs[0].read(); m.Op != "unsubscribed" {
		t.Fatalf("unsubscribe reply %+v", m)
	}
	_, rep = apiPost(t, s, "/api/publish", "", "", `{"channel":"news","id":"m2","data":2}`)
	if rep["delivered"] != float64(11) {
		t.Fatalf("after unsubscribe delivered %v, want 11", rep["delivered"])
	}
	for _, c := range subs[1:] {
		if m := c.read(); m.Seq != 2 || m.ID != "m2" || string(m.Data) != "2" {
			t.Fatalf("got %+v", m)
		}
	}
	_, ch := apiGet(t, s, "/api/channels", "")
	list := ch["channels"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["subscribers"] != float64(11) {
		t.Fatalf("channels %v", ch)
	}
	// A late subscriber is told the current seq and gets only what follows.
	late := dialSub(t, s)
	if seq := late.subscribe("news"); seq != 2 {
		t.Fatalf("late subscriber seq %d, want 2", seq)
	}
}

// TestPubSubPublishAnswersBeforeTheFlush: a loop that has queued an HTTP publish's fan-out
// passes through the Go scheduler before it writes the fan-out (the publish's goroutine, readied
// on the loop's P, answers first instead of waiting for the writes), once per delivery task of
// a waiting publish on every loop that delivered, and not for a publish that waits for nobody
// (a client's publish over its WebSocket).
func TestPubSubPublishAnswersBeforeTheFlush(t *testing.T) {
	s := pubsubServer(t, Config{Loops: 2}, pubsub.Config{ClientPublish: true})
	var subs []*sub
	for range 6 {
		c := dialSub(t, s)
		c.subscribe("news")
		subs = append(subs, c)
	}
	yields := func() (n uint64) {
		for _, l := range s.loops {
			n += l.Stats.TaskYields.Load()
		}
		return n
	}
	loopsWithSubs := 0
	for _, e := range s.engines {
		if e.Connections() > 0 {
			loopsWithSubs++
		}
	}
	before := yields()
	for i := 1; i <= 3; i++ {
		st, rep := apiPost(t, s, "/api/publish", "", "", `{"channel":"news","data":1}`)
		if st != 200 || rep["delivered"] != float64(6) {
			t.Fatalf("publish %d: %d %v", i, st, rep)
		}
		// Delivered counts are summed after every loop's task ran, so the yields are counted.
		if got, want := yields()-before, uint64(i*loopsWithSubs); got != want {
			t.Fatalf("after %d publishes to subscribers on %d loops: %d task yields, want %d", i, loopsWithSubs, got, want)
		}
		for _, c := range subs {
			if m := c.read(); m.Seq != uint64(i) {
				t.Fatalf("got %+v, want seq %d", m, i)
			}
		}
	}
	before = yields()
	subs[0].send(`{"op":"publish","channel":"news","data":2}`)
	for i, c := range subs {
		m := c.read()
		if i == 0 && m.Op == "published" { // the publisher's answer may come before its message
			m = c.read()
		}
		if m.Op != "message" || m.Seq != 4 {
			t.Fatalf("got %+v, want the client's publish as seq 4", m)
		}
	}
	if got := yields() - before; got != 0 {
		t.Fatalf("a publish nobody waits for made the loops yield %d times", got)
	}
}

// TestPubSubOrderUnderConcurrentPublishes: concurrent publishers on one channel; every subscriber
// sees seq 1..N contiguous and in order, and each publisher's messages in its own order.
func TestPubSubOrderUnderConcurrentPublishes(t *testing.T) {
	s := pubsubServer(t, Config{Loops: 3}, pubsub.Config{})
	var subs []*sub
	for i := 0; i < 9; i++ {
		c := dialSub(t, s)
		c.subscribe("ticks")
		subs = append(subs, c)
	}
	const publishers, each = 4, 100
	var wg sync.WaitGroup
	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				body := fmt.Sprintf(`{"channel":"ticks","data":{"p":%d,"i":%d}}`, p, i)
				resp, err := http.Post("http://"+s.AdminAddr()+"/api/publish", "application/json", strings.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}
		}(p)
	}
	wg.Wait()
	for si, c := range subs {
		last := map[int]int{}
		for want := uint64(1); want <= publishers*each; want++ {
			m := c.read()
			if m.Seq != want {
				t.Fatalf("sub %d: seq %d, want %d (gap or reorder)", si, m.Seq, want)
			}
			var d struct{ P, I int }
			json.Unmarshal(m.Data, &d)
			if prev, ok := last[d.P]; ok && d.I != prev+1 {
				t.Fatalf("sub %d: publisher %d message %d after %d", si, d.P, d.I, prev)
			}
			last[d.P] = d.I
		}
	}
}

// TestPubSubBatchAndDedup: NDJSON batches, duplicate ids over HTTP (208) and WebSocket.
func TestPubSubBatchAndDedup(t *testing.T) {
	s := pubsubServer(t, Config{}, pubsub.Config{ClientPublish: true})
	c := dialSub(t, s)
	c.subscribe("a")
	st, rep := apiPost(t, s, "/api/publish", "", "application/x-ndjson",
		"{\"channel\":\"a\",\"id\":\"x1\",\"data\":1}\n{\"channel\":\"a\",\"id\":\"x2\",\"data\":2}\n\n{\"channel\":\"a\",\"id\":\"x1\",\"data\":1}\n")
	if st != 200 || rep["delivered"] != float64(2) {
		t.Fatalf("batch: %d %v", st, rep)
	}
	res := rep["results"].([]any)
	if res[2].(map[string]any)["duplicate"] != true {
		t.Fatalf("third line not a duplicate: %v", res)
	}
	st, rep = apiPost(t, s, "/api/publish", "", "", `{"channel":"a","id":"x2","data":2}`)
	if st != http.StatusAlreadyReported || rep["duplicate"] != true {
		t.Fatalf("duplicate publish: %d %v", st, rep)
	}
	// The same id on another channel is not a duplicate.
	if st, _ = apiPost(t, s, "/api/publish", "", "", `{"channel":"b","id":"x2","data":2}`); st != 200 {
		t.Fatalf("same id, other channel: %d", st)
	}
	// From a client: ack, then duplicate.
	p := dialSub(t, s)
	p.send(`{"op":"publish","channel":"a","id":"w1","data":"hello"}`)
	if m := p.read(); m.Op != "published" || m.Seq != 3 || m.ID != "w1" {
		t.Fatalf("publish ack %+v", m)
	}
	p.send(`{"op":"publish","channel":"a","id":"w1","data":"hello"}`)
	if m := p.read(); m.Op != "duplicate" || m.ID != "w1" {
		t.Fatalf("duplicate reply %+v", m)
	}
	for want := uint64(1); want <= 3; want++ {
		if m := c.read(); m.Seq != want {
			t.Fatalf("subscriber got seq %d, want %d", m.Seq, want)
		}
	}
	// Nothing else arrives: the next message is a fresh publish with seq 4.
	apiPost(t, s, "/api/publish", "", "", `{"channel":"a","data":"last"}`)
	if m := c.read(); m.Seq != 4 || string(m.Data) != `"last"` {
		t.Fatalf("after duplicates got %+v", m)
	}
}

// TestPubSubAPIAuthAndErrors: the API key, malformed requests and method errors.
func TestPubSubAPIAuthAndErrors(t *testing.T) {
	s := pubsubServer(t, Config{}, pubsub.Config{APIKey: "s3cret"})
	if st, _ := apiPost(t, s, "/api/publish", "", "", `{"channel":"a","data":1}`); st != 401 {
		t.Fatalf("no key: %d", st)
	}
	if st, _ := apiPost(t, s, "/api/publish", "wrong", "", `{"channel":"a","data":1}`); st != 401 {
		t.Fatalf("wrong key: %d", st)
	}
	if st, _ := apiGet(t, s, "/api/stats", ""); st != 401 {
		t.Fatalf("stats without key: %d", st)
	}
	if st, _ := apiPost(t, s, "/api/publish", "s3cret", "", `{"channel":"a","data":1}`); st != 200 {
		t.Fatalf("right key: %d", st)
	}
	for _, body := range []string{`not json`, `{"channel":"a"}`, `{"channel":"bad name","data":1}`, `{"channel":"a","data":1,"extra":2}`, `{"channel":"a","data":{}} {"channel":"a","data":{}}`} {
		if st, rep := apiPost(t, s, "/api/publish", "s3cret", "", body); st != 400 || rep["error"] == "" {
			t.Fatalf("body %q: %d %v", body, st, rep)
		}
	}
	if st, rep := apiPost(t, s, "/api/publish", "s3cret", "application/x-ndjson", "{\"channel\":\"a\",\"data\":1}\nnope\n"); st != 400 || !strings.Contains(rep["error"].(string), "line 2") {
		t.Fatalf("bad batch line: %d %v", st, rep)
	}
	if st, _ := apiGet(t, s, "/api/publish", "s3cret"); st != 405 {
		t.Fatalf("GET publish: %d", st)
	}
	if st, rep := apiGet(t, s, "/api/stats", "s3cret"); st != 200 || rep["publishes"] != float64(1) {
		t.Fatalf("stats: %d %v", st, rep)
	}
	// /metrics and /healthz stay open without the key.
	resp, err := http.Get("http://" + s.AdminAddr() + "/metrics")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("metrics: %v %v", err, resp)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"wsgate_publishes_total 1", "wsgate_connections_open", "wsgate_fanout_seconds_bucket", "wsgate_loop_pass_seconds_bucket", `wsgate_handshake_rejects_total{reason="version"}`} {
		if !bytes.Contains(b, []byte(name)) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	// Every POST /api/publish that reached the handler is timed: the one accepted, the five bad
	// bodies and the bad batch (the wrong key is refused before it).
	if !bytes.Contains(b, []byte("\nwsgate_api_publish_seconds_count 7\n")) {
		t.Errorf("/metrics: wsgate_api_publish_seconds_count is not 7:\n%s", b)
	}
}

// TestPubSubBroadcast reaches every connection, subscribed or not.
func TestPubSubBroadcast(t *testing.T) {
	s := pubsubServer(t, Config{Loops: 2}, pubsub.Config{})
	var cs []*sub
	for i := 0; i < 6; i++ {
		cs = append(cs, dialSub(t, s))
	}
	cs[0].subscribe("x") // make sure every connection is open before broadcasting
	for _, c := range cs[1:] {
		c.subscribe("y")
	}
	st, rep := apiPost(t, s, "/api/broadcast", "", "", `{"id":"b1","data":{"maintenance":true}}`)
	if st != 200 || rep["delivered"] != float64(6) {
		t.Fatalf("broadcast: %d %v", st, rep)
	}
	for _, c := range cs {
		if m := c.read(); m.Op != "broadcast" || m.ID != "b1" || string(m.Data) != `{"maintenance":true}` {
			t.Fatalf("got %+v", m)
		}
	}
}

// TestPubSubInvalidInput: every bad request gets an error reply; repeated abuse is closed 1008.
func TestPubSubInvalidInput(t *testing.T) {
	s := pubsubServer(t, Config{}, pubsub.Config{MaxChannels: 2, MaxErrors: 7})
	c := dialSub(t, s)
	cases := []struct {
		send string
		code int
	}{
		{`{oops`, 400},
		{`{"op":"dance"}`, 400},
		{`{"op":"subscribe","channel":"has space"}`, 422},
		{`{"op":"subscribe","channel":""}`, 422},
		{`{"op":"publish","channel":"a","data":1}`, 403},
		{`{"op":"unsubscribe","channel":"never"}`, 404},
	}
	for _, tc := range cases {
		c.send(tc.send)
		if m := c.read(); m.Op != "error" || m.Code != tc.code || m.Reason == "" {
			t.Fatalf("%s: got %+v, want error %d", tc.send, m, tc.code)
		}
	}
	c.subscribe("one")
	c.subscribe("two")
	c.send(`{"op":"subscribe","channel":"three"}`)
	if m := c.read(); m.Code != 429 {
		t.Fatalf("third channel: %+v", m)
	}
	// That was the 7th error: the connection is closed with 1008.
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := c.c.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 1008 {
		t.Fatalf("after repeated errors: %v, want close 1008", err)
	}
	// Binary frames are refused with an error, not a crash.
	d := dialSub(t, s)
	d.c.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
	if m := d.read(); m.Code != 400 {
		t.Fatalf("binary: %+v", m)
	}
}

// TestPubSubAPIRefusesBadBodies: data that is not valid UTF-8 is refused on every publish path
// (a text frame carrying it would make every conforming client fail with 1007), and every body
// over the limit gets 413, with nothing numbered or delivered for either.
func TestPubSubAPIRefusesBadBodies(t *testing.T) {
	s := pubsubServer(t, Config{}, pubsub.Config{})
	c := dialSub(t, s)
	c.subscribe("news")
	bad := "{\"channel\":\"news\",\"data\":\"\xff\xfe\"}"
	for _, tc := range []struct{ path, ctype, body string }{
		{"/api/publish", "", bad},
		{"/api/publish", "application/x-ndjson", "{\"channel\":\"news\",\"data\":1}\n" + bad + "\n"},
		{"/api/broadcast", "", "{\"data\":\"\xff\xfe\"}"},
		{"/api/broadcast", "", "{\"id\":\"\xff\",\"data\":1}"},
	} {
		st, rep := apiPost(t, s, tc.path, "", tc.ctype, tc.body)
		if msg, _ := rep["error"].(string); st != 400 || !strings.Contains(msg, "UTF-8") {
			t.Errorf("%s %q: %d %v, want 400 naming UTF-8", tc.path, tc.body, st, rep)
		}
	}
	huge := `{"channel":"news","data":"` + strings.Repeat("x", 16<<20) + `"}`
	for _, tc := range []struct{ path, ctype string }{
		{"/api/publish", ""}, {"/api/publish", "application/x-ndjson"}, {"/api/broadcast", ""},
	} {
		if st, rep := apiPost(t, s, tc.path, "", tc.ctype, huge); st != 413 || rep["error"] == "" {
			t.Errorf("%s %s with %d bytes: %d %v, want 413", tc.path, tc.ctype, len(huge), st, rep)
		}
	}
	// Nothing above was numbered or sent: the next good publish is seq 1 and the first frame.
	if st, rep := apiPost(t, s, "/api/publish", "", "", `{"channel":"news","data":"ok"}`); st != 200 || rep["seq"] != float64(1) {
		t.Fatalf("good publish: %d %v", st, rep)
	}
	if m := c.read(); m.Op != "message" || m.Seq != 1 || string(m.Data) != `"ok"` {
		t.Fatalf("first frame after the refused publishes: %+v", m)
	}
}

// TestAPIErrorBodiesReadable: error bodies print < and > as such (not \u003c), and echo mode
// answers /api/ with a JSON 404 that says where the API is.
func TestAPIErrorBodiesReadable(t *testing.T) {
	s := pubsubServer(t, Config{}, pubsub.Config{APIKey: "k"})
	resp, err := http.Post("http://"+s.AdminAddr()+"/api/publish", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !bytes.Contains(b, []byte("Bearer <key>")) {
		t.Fatalf("401 body %q", b)
	}

	e := startServer(t, Config{Handler: Echo{}, AdminAddr: "127.0.0.1:0"})
	for _, path := range []string{"/api/publish", "/api/stats", "/api/"} {
		st, rep := apiPost(t, e, path, "", "", `{"channel":"a","data":1}`)
		if st != 404 || rep["error"] != "the publish API exists in pubsub mode (-mode pubsub)" {
			t.Errorf("echo mode POST %s: %d %v", path, st, rep)
		}
	}
}

// TestRecoveryOnSubscribe: a client that comes back with since gets exactly what it missed, then
// live messages, with no gap or duplicate; with a stale epoch, a position older than the history
// or one ahead of the channel it gets recovered:false and nothing replayed.
func TestRecoveryOnSubscribe(t *testing.T) {
	s := pubsubServer(t, Config{Loops: 2}, pubsub.Config{HistorySize: 5, HistoryTTL: time.Hour})
	publish := func(n int) {
		for i := 0; i < n; i++ {
			if st, rep := apiPost(t, s, "/api/publish", "", "", `{"channel":"news","data":"x"}`); st != 200 {
				t.Fatalf("publish: %d %v", st, rep)
			}
		}
	}
	// Published before anyone subscribed: numbered and kept all the same.
	if st, rep := apiPost(t, s, "/api/publish", "", "", `{"channel":"news","data":"first"}`); st != 200 || rep["seq"] != float64(1) {
		t.Fatalf("publish without subscribers: %d %v", st, rep)
	}
	a := dialSub(t, s)
	a.send(`{"op":"subscribe","channel":"news"}`)
	sub := a.readRaw()
	if sub["op"] != "subscribed" || sub["seq"] != float64(1) || sub["epoch"] == "" || sub["recovered"] != nil {
		t.Fatalf("plain subscribe: %v", sub)
	}
	epoch := sub["epoch"].(string)
	publish(2) // a sees 2 and 3
	for want := uint64(2); want <= 3; want++ {
		if m := a.read(); m.Seq != want {
			t.Fatalf("live seq %d, want %d", m.Seq, want)
		}
	}
	a.c.Close()
	publish(3) // missed: 4, 5, 6

	// Back with since: 4..6 replayed, then live from 7.
	b := dialSub(t, s)
	b.send(`{"op":"subscribe","channel":"news","since":{"seq":3,"epoch":"` + epoch + `"}}`)
	if r := b.readRaw(); r["seq"] != float64(6) || r["epoch"] != epoch || r["recovered"] != true {
		t.Fatalf("recovering subscribe: %v", r)
	}
	publish(1)
	for want := uint64(4); want <= 7; want++ {
		if m := b.read(); m.Op != "message" || m.Seq != want {
			t.Fatalf("after recovery: %+v, want seq %d", m, want)
		}
	}
	top := 7
	for _, tc := range []struct{ since, why string }{
		{`{"seq":3,"epoch":"STALE"}`, "another epoch"},
		{`{"seq":2,"epoch":"` + epoch + `"}`, "older than the 5 kept"},
		{`{"seq":99,"epoch":"` + epoch + `"}`, "ahead of the channel"},
	} {
		top++ // each case publishes one more
		c := dialSub(t, s)
		c.send(`{"op":"subscribe","channel":"news","since":` + tc.since + `}`)
		if r := c.readRaw(); r["op"] != "subscribed" || r["recovered"] != false || r["seq"] != float64(top-1) {
			t.Fatalf("%s: %v, want recovered:false at seq %d", tc.why, r, top-1)
		}
		publish(1) // the next frame is live, nothing was replayed
		if m := c.read(); m.Op != "message" || m.Seq < 8 {
			t.Fatalf("%s: first frame after the reply %+v, want a live message", tc.why, m)
		}
	}
	// Malformed since: a clear error, the connection stays.
	c := dialSub(t, s)
	for _, bad := range []string{`"3"`, `{"seq":-1,"epoch":"x"}`, `{"seq":3}`, `{"seq":3,"epoch":"x","extra":1}`} {
		c.send(`{"op":"subscribe","channel":"news","since":` + bad + `}`)
		if m := c.read(); m.Op != "error" || m.Code != 400 || !strings.Contains(m.Reason, "since") {
			t.Fatalf("since %s: %+v", bad, m)
		}
	}
}

// TestRecoveryRacesPublishes: publishers run while clients resubscribe with since; each client
// sees a contiguous run of seq from its position on, with no gap and no duplicate.
func TestRecoveryRacesPublishes(t *testing.T) {
	s := pubsubServer(t, Config{Loops: 2}, pubsub.Config{HistorySize: 10000, HistoryTTL: time.Hour})
	first := dialSub(t, s)
	first.send(`{"op":"subscribe","channel":"hot"}`)
	epoch := first.readRaw()["epoch"].(string)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for p := 0; p < 2; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 150; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Post("http://"+s.AdminAddr()+"/api/publish", "application/json", strings.NewReader(`{"channel":"hot","data":1}`))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	var last uint64
	for round := 0; round < 10; round++ {
		c := dialSub(t, s)
		c.send(fmt.Sprintf(`{"op":"subscribe","channel":"hot","since":{"seq":%d,"epoch":"%s"}}`, last, epoch))
		r := c.readRaw()
		if r["recovered"] != true {
			t.Fatalf("round %d from %d: %v", round, last, r)
		}
		top := uint64(r["seq"].(float64))
		// Read through the replay and a few live messages: every seq follows the previous one.
		for want := last + 1; want <= top+3; want++ {
			m := c.read()
			if m.Op != "message" || m.Seq != want {
				t.Fatalf("round %d: got %+v, want seq %d (position %d, top %d)", round, m, want, last, top)
			}
			last = want
		}
		c.c.Close()
	}
}

// TestHistoryAPI: GET /api/history answers a channel's position and messages, oldest first, and
// refuses bad parameters and unknown channels clearly.
func TestHistoryAPI(t *testing.T) {
	s := pubsubServer(t, Config{}, pubsub.Config{HistorySize: 100, HistoryTTL: time.Hour})
	for i := 1; i <= 5; i++ {
		apiPost(t, s, "/api/publish", "", "", fmt.Sprintf(`{"channel":"a.b/c:d@e","id":"m%d","data":{"n":%d}}`, i, i))
	}
	st, h := apiGet(t, s, "/api/history?channel=a.b/c:d@e&since=2&limit=2", "")
	msgs, _ := h["messages"].([]any)
	if st != 200 || h["seq"] != float64(5) || h["epoch"] == "" || h["channel"] != "a.b/c:d@e" || len(msgs) != 2 {
		t.Fatalf("history since 2: %d %v", st, h)
	}
	m0 := msgs[0].(map[string]any)
	if m0["seq"] != float64(3) || m0["id"] != "m3" || m0["data"].(map[string]any)["n"] != float64(3) {
		t.Fatalf("first message %v", m0)
	}
	if _, h := apiGet(t, s, "/api/history?channel=a.b/c:d@e&limit=2", ""); len(h["messages"].([]any)) != 2 ||
		h["messages"].([]any)[1].(map[string]any)["seq"] != float64(5) {
		t.Fatalf("newest 2: %v", h)
	}
	if st, h := apiGet(t, s, "/api/history?channel=never", ""); st != 404 || h["error"] != "unknown channel" {
		t.Fatalf("unknown channel: %d %v", st, h)
	}
	for _, q := range []string{"", "?channel=bad%20name", "?channel=a&since=x", "?channel=a&limit=0", "?channel=a&limit=1001", "?channel=a&since=-1"} {
		if st, h := apiGet(t, s, "/api/history"+q, ""); st != 400 || h["error"] == "" {
			t.Errorf("GET /api/history%s: %d %v, want 400", q, st, h)
		}
	}
}
