package wsgate

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/auth"
	"github.com/wsgate/wsgate/pubsub"
)

// TestSSEAuth: a stream presents the same token as a WebSocket, in ?token= or Authorization:
// Bearer; without one it is refused with 401, a channel the token does not allow with 403; an
// admitted stream also carries its user's personal channel, and ends when the token expires.
func TestSSEAuth(t *testing.T) {
	clk := newAuthClock()
	s, _ := authServer(t, clk, auth.Config{Secret: authSecret}, pubsub.Config{HistorySize: 10})
	now := clk.wall()
	tok := mint(t, authSecret, auth.Mint{Sub: "42", Channels: []string{"news"}, IssuedAt: now,
		Expires: now.Add(time.Hour)})
	for _, tc := range []struct{ req, body string }{
		{sseRequest("/sse?channel=news"), "no token"},
		{sseRequest("/sse?channel=news&token=abc.def"), "malformed"},
	} {
		c := dialSSE(t, s, tc.req)
		status, h := c.head()
		if body := c.body(h); status != 401 || !strings.Contains(body, tc.body) {
			t.Fatalf("%q: %d %q, want 401 (%s)", tc.req, status, body, tc.body)
		}
		if got := h["www-authenticate"]; got != `Bearer realm="wsgate"` {
			t.Fatalf("%q: 401 with WWW-Authenticate %q, want the Bearer challenge", tc.req, got)
		}
	}
	c := dialSSE(t, s, sseRequest("/sse?channel=news&channel=secret&token="+tok))
	status, h := c.head()
	if body := c.body(h); status != 403 || !strings.Contains(body, "secret") {
		t.Fatalf("forbidden channel: %d %q", status, body)
	}
	if got := metricValue(t, s, "wsgate_auth_forbidden_total"); got != 1 {
		t.Fatalf("forbidden counted %v times", got)
	}

	_, byQuery := sseGet(t, s, "/sse?channel=news&token="+tok, nil)
	_, byHeader := sseGet(t, s, "/events?channel=news", http.Header{"Authorization": {"Bearer " + tok}})
	for _, r := range []*sseReader{byQuery, byHeader} {
		_, sub := r.subscribed()
		if len(sub.Channels) != 2 || sub.Channels[0].Channel != "news" || sub.Channels[1].Channel != "#42" {
			t.Fatalf("subscribed %+v, want news and the personal #42", sub)
		}
	}
	code, out := apiPost(t, s, "/api/publish", "", "", `{"user":"42","data":{"hi":1}}`)
	if code != 200 || out["delivered"] != float64(2) {
		t.Fatalf("user publish: %d %v", code, out)
	}
	for _, r := range []*sseReader{byQuery, byHeader} {
		if ev, m := r.message(); m.Channel != "#42" || string(m.Data) != `{"hi":1}` || !strings.Contains(ev.ID, ",#42:") {
			t.Fatalf("personal message %+v %+v", ev, m)
		}
	}
	// The token expires: the stream ends (EventSource comes back with a fresh token).
	clk.advance(s, time.Hour+time.Second)
	for _, r := range []*sseReader{byQuery, byHeader} {
		for {
			ev, err := r.next()
			if err != nil {
				break // the end of the body
			}
			if ev.Event == "message" {
				t.Fatalf("message after expiry: %+v", ev)
			}
		}
	}
	if got := metricValue(t, s, "wsgate_expired_total"); got != 2 {
		t.Fatalf("%v expired, want 2", got)
	}
}

// TestSSECORS: an EventSource of another origin may read the stream as -allowed-origins says:
// "*" without a list; with one, its own origin named (and Vary: Origin), and an origin off the
// list refused with 403 like a WebSocket.
func TestSSECORS(t *testing.T) {
	open := pubsubServer(t, Config{Loops: 1}, pubsub.Config{})
	c := dialSSE(t, open, "GET /sse?channel=a HTTP/1.1\r\nHost: x\r\nOrigin: https://any.example\r\n\r\n")
	if status, h := c.head(); status != 200 || h["access-control-allow-origin"] != "*" {
		t.Fatalf("no allow-list: %d %v", status, h)
	}
	c = dialSSE(t, open, sseRequest("/sse?channel=a"))
	if status, h := c.head(); status != 200 || h["access-control-allow-origin"] != "" {
		t.Fatalf("no Origin: %d %v", status, h)
	}

	origins, err := auth.ParseOrigins("https://app.example", false)
	if err != nil {
		t.Fatal(err)
	}
	s := pubsubServer(t, Config{Loops: 1}, pubsub.Config{Origins: origins})
	c = dialSSE(t, s, "GET /sse?channel=a HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n\r\n")
	if status, h := c.head(); status != 200 || h["access-control-allow-origin"] != "https://app.example" || h["vary"] != "Origin" {
		t.Fatalf("listed origin: %d %v", status, h)
	}
	c = dialSSE(t, s, "GET /sse?channel=a HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\r\n")
	status, h := c.head()
	if body := c.body(h); status != 403 || !strings.Contains(body, "origin not allowed") || h["access-control-allow-origin"] != "" {
		t.Fatalf("unlisted origin: %d %v %q", status, h, body)
	}
}
