//go:build browser

package wsgate

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/conn"
	"github.com/wsgate/wsgate/pubsub"
)

// TestBrowserEventSource: a test page in Debian's chromium (served from another origin than the
// stream's, so CORS applies) opens an EventSource on the WebSocket listener and receives published
// messages; the server then ends the stream, and while it does three more are published; the
// browser reconnects by itself with Last-Event-ID, gets the three it missed (recovered:true),
// then live ones: every seq exactly once, in order.
func TestBrowserEventSource(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	s := pubsubServer(t, Config{Loops: 1}, pubsub.Config{HistorySize: 100})
	app := s.cfg.Handler.(*pubsub.PubSub)
	devtools := startChromium(t, ctx)
	page := openPage(t, ctx, devtools)
	// The test page comes from a server of its own: another origin than the stream's.
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!doctype html><title>SSE test page</title><p>EventSource test</p>")
	}))
	defer host.Close()
	if err := page.call(ctx, "Page.navigate", map[string]any{"url": host.URL + "/"}, nil); err != nil {
		t.Fatalf("Page.navigate: %v", err)
	}
	page.waitTrue(t, ctx, "the test page is loaded", `document.readyState === "complete" && document.title === "SSE test page"`)
	open := fmt.Sprintf(`(() => {
		window.sse = {subs: [], events: [], errors: 0};
		const es = new EventSource(%s);
		es.addEventListener("subscribed", e => sse.subs.push({id: e.lastEventId, data: JSON.parse(e.data)}));
		es.onmessage = e => sse.events.push({id: e.lastEventId, m: JSON.parse(e.data)});
		es.onerror = () => sse.errors++;
		window.es = es;
		return true;
	})()`, jsString("http://"+s.Addr().String()+"/sse?channel=bt"))
	if !page.evalBool(t, ctx, open) {
		t.Fatal("opening the EventSource failed")
	}
	page.waitTrue(t, ctx, "the stream is subscribed", `sse.subs.length === 1 && sse.subs[0].data.channels[0].channel === "bt"`)
	epoch := page.evalString(t, ctx, `sse.subs[0].data.channels[0].epoch`)
	for i := 1; i <= 3; i++ {
		if code, out := apiPost(t, s, "/api/publish", "", "", fmt.Sprintf(`{"channel":"bt","data":{"n":%d}}`, i)); code != http.StatusOK {
			t.Fatalf("publish: %d %v", code, out)
		}
	}
	page.waitTrue(t, ctx, "the page receives 3 messages", `sse.events.length === 3 &&
		sse.events.every((e, i) => e.m.seq === i+1 && e.m.data.n === i+1 && e.id === "bt:`+epoch+`:" + (i+1))`)

	// The drop: on the stream's loop, in one task, end every stream and publish 4, 5 and 6, so
	// that they are in history before the browser can see the end and come back.
	e := s.Engines()[0]
	dropped := make(chan int, 1)
	e.Post(func() {
		n := 0
		e.Each(func(c *conn.Conn) {
			if c.Stream() {
				c.Close(ws.StatusGoingAway, "test drop")
				n++
			}
		})
		for i := 4; i <= 6; i++ {
			if _, err := app.Publish(context.Background(), "bt", "", []byte(fmt.Sprintf(`{"n":%d}`, i)), false); err != nil {
				t.Errorf("publish %d: %v", i, err)
			}
		}
		dropped <- n
	})
	if n := <-dropped; n != 1 {
		t.Fatalf("%d streams dropped, want 1", n)
	}
	page.waitTrue(t, ctx, "the browser reconnects by itself and resumes", `sse.errors >= 1 && sse.subs.length === 2 &&
		sse.subs[1].data.channels[0].recovered === true && sse.subs[1].data.channels[0].seq === 6 &&
		sse.subs[1].id === "bt:`+epoch+`:3"`)
	if code, out := apiPost(t, s, "/api/publish", "", "", `{"channel":"bt","data":{"n":7}}`); code != http.StatusOK {
		t.Fatalf("publish: %d %v", code, out)
	}
	page.waitTrue(t, ctx, "the page has 1..7 once each, in order", `sse.events.length === 7 &&
		sse.events.every((e, i) => e.m.seq === i+1 && e.m.data.n === i+1 && e.id === "bt:`+epoch+`:" + (i+1))`)
	if got := metricValue(t, s, `wsgate_transport_opened_total{transport="sse"}`); got != 2 {
		t.Fatalf("%v streams opened, want 2 (the first and the reconnect)", got)
	}
}
