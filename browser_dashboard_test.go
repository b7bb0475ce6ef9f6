//go:build browser

package wsgate

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/pubsub"
)

// consoleLog gathers what a page reports as an error: uncaught exceptions, console.error calls
// and browser log entries at level error (CSP violations, failed loads).
type consoleLog struct {
	mu     sync.Mutex
	errors []string
}

func (c *consoleLog) event(method string, params json.RawMessage) {
	var msg string
	switch method {
	case "Runtime.exceptionThrown":
		msg = "exception: " + string(params)
	case "Runtime.consoleAPICalled":
		var p struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(params, &p) == nil && (p.Type == "error" || p.Type == "assert") {
			msg = "console." + p.Type + ": " + string(params)
		}
	case "Log.entryAdded":
		var p struct {
			Entry struct {
				Level  string `json:"level"`
				Source string `json:"source"`
				Text   string `json:"text"`
				URL    string `json:"url"`
			} `json:"entry"`
		}
		if json.Unmarshal(params, &p) == nil && p.Entry.Level == "error" {
			msg = fmt.Sprintf("log (%s) %s %s", p.Entry.Source, p.Entry.Text, p.Entry.URL)
		}
	}
	if msg != "" {
		c.mu.Lock()
		c.errors = append(c.errors, msg)
		c.mu.Unlock()
	}
}

func (c *consoleLog) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.errors
	c.errors = nil
	return e
}

// TestBrowserDashboard: /dashboard in headless chromium against a server with -api-key. The
// page asks for the key (the stats answer 401 without it), then, reloaded with the key it kept,
// loads with no console error, shows the connection count of the real clients connected, and
// shows a message rate that rises from zero when messages are published over HTTP. The
// screenshot is written to $WSGATE_ARTIFACTS/dashboard.png when that directory is given, else
// to the test's temporary directory (logged either way).
func TestBrowserDashboard(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const key = "dash-key"
	s := pubsubServer(t, Config{Loops: 2, APIKey: key}, pubsub.Config{APIKey: key})

	// Three real subscribers, reading everything in the background.
	subs := make([]*sub, 3)
	for i := range subs {
		subs[i] = dialSub(t, s)
		subs[i].subscribe("feed")
		go func(c *sub) {
			for {
				if _, _, err := c.c.ReadMessage(); err != nil {
					return
				}
			}
		}(subs[i])
	}

	page := openPage(t, ctx, startChromium(t, ctx))
	console := &consoleLog{}
	page.onEvents(console.event)
	for _, m := range []string{"Runtime.enable", "Log.enable", "Page.enable"} {
		if err := page.call(ctx, m, map[string]any{}, nil); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
	}
	if err := page.call(ctx, "Emulation.setDeviceMetricsOverride", map[string]any{
		"width": 1400, "height": 1500, "deviceScaleFactor": 1, "mobile": false,
	}, nil); err != nil {
		t.Fatalf("Emulation.setDeviceMetricsOverride: %v", err)
	}
	pageURL := "http://" + s.AdminAddr() + "/dashboard"
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	if err := page.call(ctx, "Page.navigate", map[string]any{"url": pageURL}, &nav); err != nil || nav.ErrorText != "" {
		t.Fatalf("Page.navigate %s: %v %s", pageURL, err, nav.ErrorText)
	}

	// Without the key: 401, the key form shows; the operator types the key.
	page.waitTrue(t, ctx, "the page asks for the API key",
		`window.dash && dash.status === 401 && getComputedStyle(document.getElementById("auth")).display !== "none"`)
	for _, e := range console.take() {
		if !strings.Contains(e, "401") || !strings.Contains(e, "/dashboard/stats") {
			t.Errorf("console error before the key was given: %s", e)
		}
	}
	if !page.evalBool(t, ctx, fmt.Sprintf(`(() => {
		document.getElementById("key").value = %s;
		document.getElementById("key-save").click();
		return true;
	})()`, jsString(key))) {
		t.Fatal("typing the key failed")
	}
	page.waitTrue(t, ctx, "the page shows data with the key", `dash.status === 200 && dash.samples.length >= 1`)

	// Reloaded, the page uses the key it kept for the session: a clean load from here on.
	console.take()
	if err := page.call(ctx, "Page.reload", map[string]any{}, nil); err != nil {
		t.Fatalf("Page.reload: %v", err)
	}
	page.waitTrue(t, ctx, "the reloaded page has samples", `window.dash && dash.status === 200 && dash.samples.length >= 3`)

	page.waitTrue(t, ctx, "the page shows the 3 connected clients", `(() => {
		const cur = dash.samples[dash.samples.length - 1];
		const tile = document.querySelector("#tiles .tile .v");
		return cur.connections.open === 3 && tile !== null && tile.textContent === "3" &&
			document.getElementById("t-loops").textContent.includes("busy");
	})()`)
	page.waitTrue(t, ctx, "no deliveries yet: the delivery rate is 0",
		`dash.rates.deliveries === 0 && dash.samples.length >= 3`)

	// Publishing: 3 subscribers, so 3 deliveries per publish.
	stop := make(chan struct{})
	published := make(chan int, 1)
	go func() {
		n := 0
		defer func() { published <- n }()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			code, out := apiPost(t, s, "/api/publish", key, "", fmt.Sprintf(`{"channel":"feed","data":{"n":%d}}`, n))
			if code != 200 {
				t.Errorf("publish %d: %d %v", n, code, out)
				return
			}
			n++
		}
	}()
	page.waitTrue(t, ctx, "the message rates rise", `(() => {
		const tiles = [...document.querySelectorAll("#tiles .tile")];
		const shown = (label) => {
			const t = tiles.find((el) => el.querySelector(".k").textContent === label);
			return t ? parseFloat(t.querySelector(".v").textContent) : NaN;
		};
		return dash.rates.deliveries > 0 && dash.rates.publishes > 0 && dash.rates.messagesOut > 0 &&
			shown("deliveries/s") > 0 && shown("publishes/s") > 0 &&
			document.getElementById("t-pubs").textContent.includes("feed");
	})()`)
	close(stop)
	if n := <-published; n == 0 {
		t.Fatal("nothing was published")
	}
	if errs := console.take(); len(errs) > 0 {
		t.Errorf("console errors after a clean load:\n%s", strings.Join(errs, "\n"))
	}
	// The verdict is drawn from the data (which one depends on how this machine schedules the
	// loops: a preempted pass is a slow one, so it is not asserted).
	if got := page.evalString(t, ctx, `document.getElementById("verdict").textContent`); got != "healthy" && got != "look" && got != "unhealthy" {
		t.Errorf("verdict %q with data on the page", got)
	}

	var shot struct {
		Data string `json:"data"`
	}
	if err := page.call(ctx, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot); err != nil {
		t.Fatalf("Page.captureScreenshot: %v", err)
	}
	img, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := png.DecodeConfig(bytes.NewReader(img))
	if err != nil || pc.Width == 0 || pc.Height == 0 {
		t.Fatalf("screenshot is not a PNG: %v %+v", err, pc)
	}
	dir := os.Getenv("WSGATE_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "dashboard.png")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("dashboard screenshot (%dx%d) written to %s", pc.Width, pc.Height, path)
}
