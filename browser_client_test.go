//go:build browser

package wsgate

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/wsgate/wsgate/auth"
	"github.com/wsgate/wsgate/pubsub"
)

// TestBrowserClientRecovers: the browser client (client/js/wsgate.js, served at /wsgate.js and
// used by the demo page) in headless chromium subscribes to a channel on a cluster node; the node
// restarts (close 1001, then nothing listens for a while) while another node of the gateway takes
// publishes; the client reconnects by itself with backoff, resubscribes with `since`, recovers
// the messages it missed from the cluster's history and then receives new ones: the page shows
// seq 1 to 7 once each, in order, without a gap and without a recovery failure.
func TestBrowserClientRecovers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	b := startNATS(t)
	nodeConfig := pubsub.Config{
		DedupWindow: 30 * time.Minute, HistorySize: 1000, HistoryTTL: time.Hour,
		Cluster: &pubsub.ClusterConfig{URLs: b.url(), NodeID: "a", ConnectTimeout: 20 * time.Second},
	}
	startA := func(addr, admin string) *Server {
		t.Helper()
		app, err := pubsub.New(nodeConfig)
		if err != nil {
			t.Fatal(err)
		}
		return startServer(t, Config{Loops: 2, Addr: addr, AdminAddr: admin, Handler: app,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}
	a := startA("127.0.0.1:0", "127.0.0.1:0")
	other := clusterNode(t, b, "b", pubsub.Config{})

	page := openPage(t, ctx, startChromium(t, ctx))
	if err := page.call(ctx, "Page.navigate", map[string]any{"url": "http://" + a.AdminAddr() + "/"}, nil); err != nil {
		t.Fatalf("Page.navigate: %v", err)
	}
	page.waitTrue(t, ctx, "the page subscribes to demo through wsgate.js",
		`window.demoState && demoState.state === "subscribed" && demoState.channel === "demo"`)

	publish := func(s *Server, n int) {
		t.Helper()
		code, out := publishOn(t, s, "demo", fmt.Sprintf("m%d", n), fmt.Sprintf(`{"n":%d}`, n))
		if code != http.StatusOK || out["seq"] != float64(n) {
			t.Fatalf("publish %d: %d %v", n, code, out)
		}
	}
	for n := 1; n <= 3; n++ {
		publish(a, n)
	}
	page.waitTrue(t, ctx, "the page shows seq 1 to 3", `demoState.messages.map(m => m.seq).join() === "1,2,3"`)

	// Restart node a on the same addresses. Meanwhile 4 to 6 are published through node b.
	wsAddr, adminAddr := a.Addr().String(), a.AdminAddr()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	page.waitTrue(t, ctx, "the page saw 1001 and is reconnecting",
		`demoState.state === "reconnecting" && demoState.closeCode === 1001`)
	for n := 4; n <= 6; n++ {
		publish(other, n)
	}
	a = startA(wsAddr, adminAddr)
	page.waitTrue(t, ctx, "the page reconnects and recovers seq 4 to 6",
		`demoState.state === "subscribed" && demoState.reconnects >= 1 &&
		 demoState.messages.map(m => m.seq).join() === "1,2,3,4,5,6"`)
	publish(a, 7)
	page.waitTrue(t, ctx, "the page shows seq 1 to 7 once each, in order, without a gap",
		`demoState.messages.map(m => m.seq).join() === "1,2,3,4,5,6,7" &&
		 demoState.messages.every(m => m.id === "m" + m.seq && m.data.n === m.seq) &&
		 demoState.recoveryFailed.length === 0 && document.querySelector("#log .gap") === null`)
}

// TestBrowserDemoToken: with tokens required (HS256), the demo page's first attempts are refused
// with 401 and its client keeps retrying with backoff; once a token is typed into the page, the
// next attempt carries it as ?token=, the page subscribes to a channel the token allows and
// shows what is published there.
func TestBrowserDemoToken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, _ := authServer(t, nil, auth.Config{Secret: authSecret}, pubsub.Config{})
	tok := mint(t, authSecret, auth.Mint{Sub: "42", Channels: []string{"demo"}, Expires: time.Now().Add(time.Hour)})

	page := openPage(t, ctx, startChromium(t, ctx))
	if err := page.call(ctx, "Page.navigate", map[string]any{"url": "http://" + s.AdminAddr() + "/"}, nil); err != nil {
		t.Fatalf("Page.navigate: %v", err)
	}
	page.waitTrue(t, ctx, "the page is refused without a token and retries",
		`window.demoState && demoState.state === "connecting" &&
		 document.getElementById("log").textContent.includes("could not connect")`)
	if !page.evalBool(t, ctx, fmt.Sprintf(`(document.getElementById("token").value = %s, true)`, jsString(tok))) {
		t.Fatal("typing the token failed")
	}
	page.waitTrue(t, ctx, "the page connects with the token and subscribes",
		`demoState.state === "subscribed" && demoState.channel === "demo"`)
	code, out := publishOn(t, s, "demo", "with-token", `{"ok":true}`)
	if code != http.StatusOK || out["delivered"] != 1.0 {
		t.Fatalf("publish: %d %v", code, out)
	}
	page.waitTrue(t, ctx, "the page shows the message", `demoState.messages.some(m => m.id === "with-token" && m.data.ok === true)`)
}
