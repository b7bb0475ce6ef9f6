package wsgate

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/pubsub"
)

func publishNews(t testing.TB, s *Server, channel, data string) uint64 {
	t.Helper()
	st, rep := apiPost(t, s, "/api/publish", "", "", `{"channel":"`+channel+`","data":`+data+`}`)
	if st != 200 {
		t.Fatalf("publish: %d %v", st, rep)
	}
	return uint64(rep["seq"].(float64))
}

// TestSSEEventFormat: a net/http client gets 200 with the SSE headers, a first subscribed event
// with retry and the channel's position, then each message as id/event/data whose data is the
// very JSON object a WebSocket subscriber receives; /events is the same stream.
func TestSSEEventFormat(t *testing.T) {
	s := pubsubServer(t, Config{Loops: 2}, pubsub.Config{HistorySize: 10})
	publishNews(t, s, "news", `"before"`)
	ws := dialSub(t, s)
	ws.subscribe("news")
	for _, path := range []string{"/sse", "/events"} {
		resp, r := sseGet(t, s, path+"?channel=news", nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" ||
			resp.Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, resp.Header)
		}
		if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
			t.Fatalf("%s: transfer encoding %v, want chunked", path, resp.TransferEncoding)
		}
		ev, sub := r.subscribed()
		if ev.Retry != "2000" || len(sub.Channels) != 1 || sub.Channels[0].Channel != "news" ||
			sub.Channels[0].Recovered != nil || sub.Channels[0].Epoch == "" {
			t.Fatalf("%s: first event %+v %+v", path, ev, sub)
		}
		top := sub.Channels[0].Seq
		epoch := sub.Channels[0].Epoch
		if want := fmt.Sprintf("news:%s:%d", epoch, top); ev.ID != want {
			t.Fatalf("%s: subscribed id %q, want %q", path, ev.ID, want)
		}
		seq := publishNews(t, s, "news", `{"headline":"hi","n":[1,2]}`)
		ev, m := r.message()
		if want := fmt.Sprintf("news:%s:%d", epoch, seq); ev.ID != want {
			t.Fatalf("%s: id %q, want %q", path, ev.ID, want)
		}
		if m.Op != "message" || m.Channel != "news" || m.Seq != seq || string(m.Data) != `{"headline":"hi","n":[1,2]}` {
			t.Fatalf("%s: message %+v", path, m)
		}
		// Byte for byte what the WebSocket subscriber got.
		ws.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, wb, err := ws.c.ReadMessage()
		if err != nil || string(wb) != ev.Data {
			t.Fatalf("%s: SSE data %q, WebSocket payload %q (%v)", path, ev.Data, wb, err)
		}
		// JSON whitespace with line breaks stays one data value (EventSource joins data lines).
		publishNews(t, s, "news", "{\"a\":\n1,\r\n\"b\":2}")
		_, m = r.message()
		var v map[string]int
		if json.Unmarshal(m.Data, &v) != nil || v["a"] != 1 || v["b"] != 2 {
			t.Fatalf("%s: multi-line data %q", path, m.Data)
		}
		ws.c.ReadMessage()
		resp.Body.Close()
	}
}

// TestSSEMultipleChannels: one stream of two channels gets both; every id names both positions,
// and each message's channel moves only its own.
func TestSSEMultipleChannels(t *testing.T) {
	s := pubsubServer(t, Config{Loops: 2}, pubsub.Config{HistorySize: 10})
	publishNews(t, s, "prices:EURUSD", `1`)
	_, r := sseGet(t, s, "/sse?channel=news&channel=prices%3AEURUSD&channel=news", nil)
	ev, sub := r.subscribed()
	if len(sub.Channels) != 2 || sub.Channels[0].Channel != "news" || sub.Channels[1].Channel != "prices:EURUSD" ||
		sub.Channels[1].Seq != 1 {
		t.Fatalf("subscribed %+v", sub)
	}
	en, ep := sub.Channels[0].Epoch, sub.Channels[1].Epoch
	if want := fmt.Sprintf("news:%s:0,prices:EURUSD:%s:1", en, ep); ev.ID != want {
		t.Fatalf("subscribed id %q, want %q", ev.ID, want)
	}
	for i, tc := range []struct {
		channel string
		id      string
	}{
		{"news", fmt.Sprintf("news:%s:1,prices:EURUSD:%s:1", en, ep)},
		{"prices:EURUSD", fmt.Sprintf("news:%s:1,prices:EURUSD:%s:2", en, ep)},
		{"prices:EURUSD", fmt.Sprintf("news:%s:1,prices:EURUSD:%s:3", en, ep)},
		{"news", fmt.Sprintf("news:%s:2,prices:EURUSD:%s:3", en, ep)},
	} {
		publishNews(t, s, tc.channel, fmt.Sprint(i))
		ev, m := r.message()
		if ev.ID != tc.id || m.Channel != tc.channel || string(m.Data) != fmt.Sprint(i) {
			t.Fatalf("event %d: id %q data %q, want id %q on %s", i, ev.ID, ev.Data, tc.id, tc.channel)
		}
	}
}

// TestSSEResume: a stream dropped and reopened with Last-Event-ID (the header, or lastEventId
// in the query) gets the messages it missed, then live ones, without gap or duplicate; one that
// cannot be recovered says recovered:false.
func TestSSEResume(t *testing.T) {
	s := pubsubServer(t, Config{Loops: 2}, pubsub.Config{HistorySize: 5, HistoryTTL: time.Hour})
	resp, r := sseGet(t, s, "/sse?channel=a&channel=b", nil)
	_, sub := r.subscribed()
	ea, eb := sub.Channels[0].Epoch, sub.Channels[1].Epoch
	publishNews(t, s, "a", `1`)
	publishNews(t, s, "b", `1`)
	r.message()
	last, _ := r.message()
	resp.Body.Close()
	// Missed while away: a 2, 3 and b 2.
	publishNews(t, s, "a", `2`)
	publishNews(t, s, "b", `2`)
	publishNews(t, s, "a", `3`)

	for _, how := range []string{"header", "query"} {
		target, h := "/sse?channel=a&channel=b", http.Header{}
		if how == "header" {
			h.Set("Last-Event-ID", last.ID)
			target += "&lastEventId=a:STALE:0" // the header wins
		} else {
			target += "&lastEventId=" + strings.ReplaceAll(last.ID, ",", "%2C")
		}
		resp, r := sseGet(t, s, target, h)
		ev, sub := r.subscribed()
		for i, c := range sub.Channels {
			if c.Recovered == nil || !*c.Recovered {
				t.Fatalf("%s: channel %d not recovered: %+v", how, i, sub)
			}
		}
		if sub.Channels[0].Seq != 3 || sub.Channels[1].Seq != 2 || ev.ID != last.ID {
			t.Fatalf("%s: subscribed %+v id %q, want seqs 3 and 2 and id %q", how, sub, ev.ID, last.ID)
		}
		want := []string{
			fmt.Sprintf("a:%s:2,b:%s:1", ea, eb),
			fmt.Sprintf("a:%s:3,b:%s:1", ea, eb),
			fmt.Sprintf("a:%s:3,b:%s:2", ea, eb),
		}
		for _, id := range want {
			if ev, _ := r.message(); ev.ID != id {
				t.Fatalf("%s: replayed id %q, want %q", how, ev.ID, id)
			}
		}
		resp.Body.Close()
	}
	// The live message after a replay follows it directly.
	h := http.Header{}
	h.Set("Last-Event-ID", fmt.Sprintf("a:%s:2,b:%s:2", ea, eb))
	_, r = sseGet(t, s, "/sse?channel=a&channel=b", h)
	r.subscribed()
	publishNews(t, s, "b", `3`)
	if ev, m := r.message(); m.Channel != "a" || m.Seq != 3 || ev.ID != fmt.Sprintf("a:%s:3,b:%s:2", ea, eb) {
		t.Fatalf("replay %+v %+v", ev, m)
	}
	if ev, m := r.message(); m.Channel != "b" || m.Seq != 3 || ev.ID != fmt.Sprintf("a:%s:3,b:%s:3", ea, eb) {
		t.Fatalf("live %+v %+v", ev, m)
	}
	// Impossible: another epoch, or older than history keeps. recovered:false, the current
	// position as id, nothing replayed.
	for _, id := range []string{"a:STALE:1", fmt.Sprintf("a:%s:0", ea)} {
		for i := 0; i < 5; i++ {
			publishNews(t, s, "a", `"fill"`)
		}
		h := http.Header{}
		h.Set("Last-Event-ID", id)
		_, r := sseGet(t, s, "/sse?channel=a", h)
		ev, sub := r.subscribed()
		c := sub.Channels[0]
		if c.Recovered == nil || *c.Recovered || ev.ID != fmt.Sprintf("a:%s:%d", ea, c.Seq) {
			t.Fatalf("resume from %s: %+v id %q", id, sub, ev.ID)
		}
		seq := publishNews(t, s, "a", `"live"`)
		if _, m := r.message(); m.Seq != seq {
			t.Fatalf("resume from %s: first message seq %d, want the live %d", id, m.Seq, seq)
		}
	}
}

// TestSSEBadRequests: every refusal has its status and a body that says why, over raw TCP.
func TestSSEBadRequests(t *testing.T) {
	s := pubsubServer(t, Config{Loops: 1}, pubsub.Config{MaxChannels: 2})
	for _, tc := range []struct {
		req    string
		status int
		body   string
		header string
	}{
		{sseRequest("/nope?channel=a"), 404, "Server-Sent Events are at /sse", ""},
		{sseRequest("/"), 404, "Upgrade: websocket", ""},
		{sseRequest("/sse"), 400, "missing channel", ""},
		{sseRequest("/sse?other=1"), 400, "missing channel", ""},
		{sseRequest("/sse?channel="), 400, "invalid channel name", ""},
		{sseRequest("/sse?channel=a%20b"), 400, "invalid channel name", ""},
		{sseRequest("/sse?channel=%zz"), 400, "malformed query", ""},
		{sseRequest("/sse?channel=a&channel=b&channel=c"), 429, "too many channels (limit 2)", ""},
		{sseRequest("/sse?channel=a&lastEventId=garbage"), 400, "invalid Last-Event-ID", ""},
		{"GET /sse?channel=a HTTP/1.1\r\nHost: x\r\nLast-Event-ID: a:E:notanumber\r\n\r\n", 400, "invalid Last-Event-ID", ""},
		{"POST /sse?channel=a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405, "need GET", "allow"},
		{"HEAD /events?channel=a HTTP/1.1\r\nHost: x\r\n\r\n", 405, "need GET", "allow"},
		{"GET /sse?channel=a HTTP/2.0\r\nHost: x\r\n\r\n", 505, "HTTP/1.0 and HTTP/1.1", ""},
		{"GET /sse?channel=a HTTP/1.1\r\nBad Header\r\n\r\n", 400, "malformed", ""},
	} {
		c := dialSSE(t, s, tc.req)
		status, h := c.head()
		body := c.body(h)
		if status != tc.status || !strings.Contains(body, tc.body) {
			t.Errorf("%q: %d %q, want %d with %q", tc.req, status, body, tc.status, tc.body)
		}
		if tc.header != "" && h[tc.header] != "GET" {
			t.Errorf("%q: %s header %q", tc.req, tc.header, h[tc.header])
		}
	}
	// Refusals are counted as such.
	if got := metricValue(t, s, `wsgate_handshake_rejects_total{reason="stream"}`); got < 11 {
		t.Fatalf("stream rejects %v, want 11", got)
	}
}

// TestSSEHTTP10: an HTTP/1.0 client gets its events without chunked coding; the body ends with
// the connection.
func TestSSEHTTP10(t *testing.T) {
	s := pubsubServer(t, Config{Loops: 1}, pubsub.Config{})
	c := dialSSE(t, s, "GET /sse?channel=n HTTP/1.0\r\n\r\n")
	status, h := c.head()
	if status != 200 || h["transfer-encoding"] != "" || h["content-type"] != "text/event-stream" {
		t.Fatalf("HTTP/1.0: %d %v", status, h)
	}
	r := c.plainEvents()
	r.subscribed()
	publishNews(t, s, "n", `{"x":1}`)
	if ev, m := r.message(); m.Seq != 1 || !strings.HasSuffix(ev.ID, ":1") {
		t.Fatalf("HTTP/1.0 event %+v", ev)
	}
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctxT(t)) }()
	if _, err := r.next(); err == nil || err.Error() != "EOF" {
		t.Fatalf("HTTP/1.0 stream at shutdown: %v, want its end (EOF)", err)
	}
	c.c.Close()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// TestSSEShutdown: shutdown ends a stream cleanly: the last chunk, then the end of the
// connection, after any event already queued.
func TestSSEShutdown(t *testing.T) {
	s := pubsubServer(t, Config{Loops: 1}, pubsub.Config{})
	c := dialSSE(t, s, sseRequest("/sse?channel=n"))
	c.head()
	r := c.events()
	r.subscribed()
	publishNews(t, s, "n", `1`)
	r.message()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctxT(t)) }()
	if _, err := r.next(); err == nil || err.Error() != "EOF" {
		t.Fatalf("after shutdown: %v, want the end of the chunked body (EOF)", err)
	}
	// The chunked reader saw "0\r\n"; the trailer's CRLF ends the message.
	if rest, err := c.br.ReadString('\n'); rest != "\r\n" {
		t.Fatalf("after the last chunk %q %v", rest, err)
	}
	c.c.Close() // the client closes its side: the server is done
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// TestSSESlowReader: a stream client that stops reading is closed at -max-queue as a slow
// consumer; what it then reads is whole events up to the end of the body, never a torn one.
func TestSSESlowReader(t *testing.T) {
	s := pubsubServer(t, Config{Loops: 1, Conn: connCfg(func(c *ConnConfig) { c.MaxQueue = 256 << 10 })},
		pubsub.Config{})
	c := dialSSE(t, s, sseRequest("/sse?channel=firehose"))
	c.head()
	r := c.events()
	r.subscribed()
	big := `"` + strings.Repeat("x", 20000) + `"`
	for i := 0; metricValue(t, s, "wsgate_slow_consumers_total") == 0; i++ {
		if i > 100000 {
			t.Fatal("the non-reading stream was never closed")
		}
		publishNews(t, s, "firehose", big)
	}
	last := uint64(0)
	for {
		ev, err := r.next()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("after %d events: %v, want the end of the chunked body", last, err)
			}
			break
		}
		var m msg
		if ev.Event != "message" || json.Unmarshal([]byte(ev.Data), &m) != nil || string(m.Data) != big || m.Seq != last+1 {
			t.Fatalf("event after seq %d is not a whole next message: %.80q", last, ev.Data)
		}
		last = m.Seq
	}
	if last == 0 {
		t.Fatal("no event before the close")
	}
}

// TestSSEMetricsByTransport: connections and deliveries are counted per transport.
func TestSSEMetricsByTransport(t *testing.T) {
	s := pubsubServer(t, Config{Loops: 2}, pubsub.Config{})
	w := dialSub(t, s)
	w.subscribe("m")
	_, r := sseGet(t, s, "/sse?channel=m", nil)
	r.subscribed()
	_, r2 := sseGet(t, s, "/events?channel=m", nil)
	r2.subscribed()
	publishNews(t, s, "m", `1`)
	r.message()
	r2.message()
	w.read()
	for name, want := range map[string]float64{
		`wsgate_transport_opened_total{transport="sse"}`:           2,
		`wsgate_transport_deliveries_total{transport="sse"}`:       2,
		`wsgate_transport_deliveries_total{transport="websocket"}`: 1,
		`wsgate_sse_streams`: 2,
	} {
		if got := metricValue(t, s, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if ws, sse := openByTransport(t, s, "websocket"), openByTransport(t, s, "sse"); ws != 1 || sse != 2 {
		t.Errorf("open by transport: %v websocket, %v sse; want 1 and 2", ws, sse)
	}
}

// openByTransport sums wsgate_loop_connections{transport} over the loops.
func openByTransport(t testing.TB, s *Server, transport string) float64 {
	t.Helper()
	var n float64
	for i := range s.Engines() {
		n += metricValue(t, s, fmt.Sprintf(`wsgate_loop_connections{loop="%d",transport=%q}`, i, transport))
	}
	return n
}

// TestSSEIdleStreamsNoGoroutines: 5,000 idle SSE streams add no goroutine to the server.
func TestSSEIdleStreamsNoGoroutines(t *testing.T) {
	s := pubsubServer(t, Config{Loops: 2}, pubsub.Config{})
	before := runtime.NumGoroutine()
	const n = 5000
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, sseRequest(fmt.Sprintf("/sse?channel=idle%d", i%50))); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 512)
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		k, err := c.Read(buf)
		if err != nil || !strings.HasPrefix(string(buf[:k]), "HTTP/1.1 200") {
			t.Fatalf("stream %d: response %q, %v", i, buf[:k], err)
		}
	}
	if got := openByTransport(t, s, "sse"); got != n {
		t.Fatalf("server holds %v streams, want %d", got, n)
	}
	if after := runtime.NumGoroutine(); after > before+10 {
		t.Fatalf("goroutines grew from %d to %d with %d idle streams", before, after, n)
	}
}
