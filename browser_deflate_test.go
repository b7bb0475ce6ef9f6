//go:build browser

package wsgate

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/pubsub"
)

// TestBrowserDeflate: with -compression, Chromium's offer ("permessage-deflate;
// client_max_window_bits") is accepted, the browser sees the extension in the 101 (DevTools'
// Network.webSocketHandshakeResponseReceived), and a large publish reaches the page compressed:
// the server compressed it once, wrote a fraction of its size to the socket, and the page shows
// it whole. The page's own sends (subscribe) arrive compressed or not, as Chromium decides, and
// work either way.
func TestBrowserDeflate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := pubsubServer(t, Config{Conn: deflateConfig(nil)}, pubsub.Config{})
	page := openPage(t, ctx, startChromium(t, ctx))
	var evMu sync.Mutex
	var wsEvents []cdpEvent // DevTools' Network.webSocket* events, in arrival order
	page.onEvents(func(method string, params json.RawMessage) {
		if strings.HasPrefix(method, "Network.webSocket") {
			evMu.Lock()
			wsEvents = append(wsEvents, cdpEvent{method, params})
			evMu.Unlock()
		}
	})
	events := func() []cdpEvent {
		evMu.Lock()
		defer evMu.Unlock()
		return append([]cdpEvent(nil), wsEvents...)
	}
	if err := page.call(ctx, "Network.enable", map[string]any{}, nil); err != nil {
		t.Fatalf("Network.enable: %v", err)
	}
	if err := page.call(ctx, "Page.navigate", map[string]any{"url": "http://" + s.AdminAddr() + "/"}, nil); err != nil {
		t.Fatalf("Page.navigate: %v", err)
	}
	page.waitTrue(t, ctx, "the page subscribes to demo",
		`window.demoState && demoState.state === "subscribed" && demoState.channel === "demo"`)

	// The browser's view of the handshake.
	var offered, answered string
	for _, ev := range events() {
		var p struct {
			Request  struct{ Headers map[string]string } `json:"request"`
			Response struct{ Headers map[string]string } `json:"response"`
		}
		json.Unmarshal(ev.Params, &p)
		switch ev.Method {
		case "Network.webSocketWillSendHandshakeRequest":
			offered = headerCI(p.Request.Headers, "Sec-WebSocket-Extensions")
		case "Network.webSocketHandshakeResponseReceived":
			answered = headerCI(p.Response.Headers, "Sec-WebSocket-Extensions")
		}
	}
	if !strings.Contains(offered, "permessage-deflate") {
		t.Fatalf("Chromium offered %q", offered)
	}
	if answered != deflateAnswer {
		t.Fatalf("Chromium saw the answer %q, want %q", answered, deflateAnswer)
	}
	if st := zStats(s); st.deflate != 1 {
		t.Fatalf("%d handshakes agreed on deflate, want the browser's", st.deflate)
	}

	// A 30 KB publish: compressed once, sent compressed, shown whole.
	text := strings.Repeat("compressible JSON for a browser; ", 1000)
	data := fmt.Sprintf(`{"text":%q,"n":7}`, text)
	before := bytesOut(s)
	zBefore := zStats(s).compressed
	if code, out := apiPost(t, s, "/api/publish", "", "", `{"channel":"demo","data":`+data+`}`); code != http.StatusOK || out["delivered"] != 1.0 {
		t.Fatalf("publish: %d %v", code, out)
	}
	page.waitTrue(t, ctx, "the page shows the large message", fmt.Sprintf(
		`demoState.messages.some(m => m.data && m.data.n === 7 && m.data.text.length === %d)`, len(text)))
	if n := zStats(s).compressed - zBefore; n != 1 {
		t.Fatalf("the publish was compressed %d times, want once", n)
	}
	if sent := bytesOut(s) - before; sent > uint64(len(data))/4 {
		t.Fatalf("%d bytes on the wire for a %d-byte message: not compressed", sent, len(data))
	}
	// The frames the browser received (DevTools shows them inflated) include the message.
	found := false
	for _, ev := range events() {
		if ev.Method == "Network.webSocketFrameReceived" && strings.Contains(string(ev.Params), `\"n\":7`) {
			found = true
		}
	}
	if !found {
		t.Fatal("DevTools reported no received frame with the message")
	}
}

// cdpEvent is a DevTools event.
type cdpEvent struct {
	Method string
	Params json.RawMessage
}

// headerCI returns the header named name from a DevTools header map (case as the browser wrote it).
func headerCI(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func bytesOut(s *Server) uint64 {
	var n uint64
	for _, e := range s.Engines() {
		n += e.Stats.BytesOut.Load()
	}
	return n
}
