//go:build browser

// The real-browser end-to-end test: Debian's chromium, headless, loads the demo page from the
// admin listener and talks to the WebSocket listener; the test drives it over the Chrome DevTools
// Protocol (https://chromedevtools.github.io/devtools-protocol/) with gorilla/websocket.
// Run with `make test-browser` (go test -tags browser -race -run Browser -count=1 .).

package wsgate

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/pubsub"
)

const chromiumPath = "/usr/bin/chromium"

// TestBrowserDemo: the demo page in a real browser subscribes (through the browser client served
// at /wsgate.js), shows an HTTP publish with the right seq and data, publishes itself through the
// API (with the API key typed into the page) to the test's own subscriber, and shows close code
// 1001 when the server shuts down, then reconnects.
// With WSGATE_DEMO_SCREENSHOT=/path.png it also saves a screenshot of the page there.
func TestBrowserDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const key = "browser-test-key"
	s := pubsubServer(t, Config{}, pubsub.Config{APIKey: key})
	sub := dialSub(t, s)
	if seq := sub.subscribe("demo"); seq != 0 {
		t.Fatalf("fresh channel at seq %d", seq)
	}

	devtools := startChromium(t, ctx)
	page := openPage(t, ctx, devtools)

	// A viewport that fits the whole page, so that the screenshot shows the messages.
	if err := page.call(ctx, "Emulation.setDeviceMetricsOverride", map[string]any{
		"width": 1000, "height": 900, "deviceScaleFactor": 1, "mobile": false,
	}, nil); err != nil {
		t.Fatalf("Emulation.setDeviceMetricsOverride: %v", err)
	}
	pageURL := "http://" + s.AdminAddr() + "/"
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	if err := page.call(ctx, "Page.navigate", map[string]any{"url": pageURL}, &nav); err != nil {
		t.Fatalf("Page.navigate: %v", err)
	}
	if nav.ErrorText != "" {
		t.Fatalf("Page.navigate %s: %s", pageURL, nav.ErrorText)
	}
	page.waitTrue(t, ctx, "the page subscribes to demo",
		`window.demoState && demoState.state === "subscribed" && demoState.channel === "demo"`)
	if got := page.evalString(t, ctx, `demoState.url`); got != "ws://"+s.Addr().String()+"/" {
		t.Fatalf("page dials %q, want the WS listener %s", got, s.Addr())
	}

	// An HTTP publish from the test reaches the page, and its data (with markup in it) is shown
	// as text, not parsed as HTML.
	data := `{"text":"<b>bold?</b> & done","n":1}`
	code, out := apiPost(t, s, "/api/publish", key, "", `{"channel":"demo","id":"from-test","data":`+data+`}`)
	if code != http.StatusOK || out["seq"] != 1.0 || out["delivered"] != 2.0 {
		t.Fatalf("publish: %d %v", code, out)
	}
	if m := sub.read(); m.Op != "message" || m.Seq != 1 || !jsonEqual(m.Data, []byte(data)) {
		t.Fatalf("test subscriber got %+v", m)
	}
	page.waitTrue(t, ctx, "the page shows message #1", `demoState.messages.some(m => m.seq === 1 && m.id === "from-test" &&
		m.data.text === "<b>bold?</b> & done" && m.data.n === 1)`)
	page.waitTrue(t, ctx, "message #1 is in the DOM as text", `(() => {
		const log = document.getElementById("log");
		return log.textContent.includes("#1") && log.textContent.includes("<b>bold?</b> & done") &&
			log.querySelector("b") === null;
	})()`)

	// The page publishes through POST /api/publish: first with a wrong key (401 shown), then
	// with the right one; the test's subscriber receives it as seq 2.
	pageData := `{"from":"page","ok":true}`
	publishFromPage := func(k string) {
		t.Helper()
		expr := fmt.Sprintf(`(() => {
			document.getElementById("pub-channel").value = "demo";
			document.getElementById("pub-id").value = "from-page";
			document.getElementById("pub-data").value = %s;
			document.getElementById("api-key").value = %s;
			document.getElementById("pub-send").click();
			return true;
		})()`, jsString(pageData), jsString(k))
		if !page.evalBool(t, ctx, expr) {
			t.Fatal("filling the publish form failed")
		}
	}
	publishFromPage("wrong-key")
	page.waitTrue(t, ctx, "the page shows 401 for a wrong key",
		`demoState.publishes.length === 1 && demoState.publishes[0].status === 401 &&
		 document.getElementById("pub-result").textContent.startsWith("401")`)
	publishFromPage(key)
	page.waitTrue(t, ctx, "the page's publish succeeds",
		`demoState.publishes.length === 2 && demoState.publishes[1].status === 200 &&
		 JSON.parse(demoState.publishes[1].body).seq === 2`)
	if m := sub.read(); m.Op != "message" || m.Channel != "demo" || m.Seq != 2 || m.ID != "from-page" ||
		!jsonEqual(m.Data, []byte(pageData)) {
		t.Fatalf("test subscriber got %+v, want the page's publish as seq 2", m)
	}
	page.waitTrue(t, ctx, "the page shows its own message #2",
		`demoState.messages.some(m => m.seq === 2 && m.data.from === "page")`)

	// Shutdown: everyone gets close 1001. The test's subscriber reads so that gorilla answers
	// the close frame; the browser answers by itself.
	subClosed := make(chan error, 1)
	go func() {
		for {
			if _, _, err := sub.c.ReadMessage(); err != nil {
				subClosed <- err
				return
			}
		}
	}()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v (a peer did not finish the close handshake)", err)
	}
	select {
	case err := <-subClosed:
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Fatalf("test subscriber: %v, want close 1001", err)
		}
	case <-ctx.Done():
		t.Fatal("test subscriber never saw the close")
	}
	// The page's client (wsgate.js) shows the close and reconnects with backoff.
	page.waitTrue(t, ctx, "the page shows close code 1001 and reconnects",
		`demoState.state === "reconnecting" && demoState.closeCode === 1001 &&
		 demoState.closeReason === "server shutting down" &&
		 document.getElementById("close").textContent.includes("1001")`)

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
	if path := os.Getenv("WSGATE_DEMO_SCREENSHOT"); path != "" {
		if err := os.WriteFile(path, img, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot (%dx%d) saved to %s", pc.Width, pc.Height, path)
	}
}

// TestBrowserDemoEcho: in echo mode the page connects, sends what is typed and shows the echo.
func TestBrowserDemoEcho(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := startServer(t, Config{Handler: Echo{}, AdminAddr: "127.0.0.1:0"})
	page := openPage(t, ctx, startChromium(t, ctx))
	if err := page.call(ctx, "Page.navigate", map[string]any{"url": "http://" + s.AdminAddr() + "/"}, nil); err != nil {
		t.Fatalf("Page.navigate: %v", err)
	}
	page.waitTrue(t, ctx, "the page connects", `window.demoState && demoState.mode === "echo" && demoState.state === "open"`)
	text := `<i>echo</i> "quoted" ünïcode`
	if !page.evalBool(t, ctx, fmt.Sprintf(`(() => {
		document.getElementById("echo-data").value = %s;
		document.getElementById("echo-send").click();
		return true;
	})()`, jsString(text))) {
		t.Fatal("filling the echo form failed")
	}
	page.waitTrue(t, ctx, "the page shows the echo", fmt.Sprintf(`demoState.messages.some(m => m.data === %s) &&
		document.getElementById("log").textContent.includes(%s) && document.querySelector("#log i") === null`,
		jsString(text), jsString(text)))
	page.evalBool(t, ctx, `document.getElementById("disconnect").click(), true`)
	page.waitTrue(t, ctx, "the page shows its own close 1000",
		`demoState.state === "closed" && demoState.closeCode === 1000 && demoState.wasClean === true`)
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return bytes.Equal(ja, jb)
}

// jsString is s as a JavaScript string literal (JSON strings are valid JS literals).
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// startChromium runs headless chromium in its own process group and returns the DevTools
// host:port it reports on stderr. t.Cleanup kills the group by its id (the browser's PID) and
// reaps the browser.
func startChromium(t *testing.T, ctx context.Context) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing (%v): the browser test needs Debian's chromium; install it with "+
			"`apt-get update && apt-get install -y --no-install-recommends chromium` (.ci/run does this)",
			chromiumPath, err)
	}
	cmd := exec.Command(chromiumPath, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--remote-debugging-port=0", "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	errLog := &stderrWatch{found: make(chan string, 1)}
	cmd.Stderr = errLog
	cmd.WaitDelay = 10 * time.Second // children holding stderr must not hang Wait
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		syscall.Kill(-pid, syscall.SIGKILL) // the group we created: the browser and its children
		<-exited
	})
	select {
	case u := <-errLog.found:
		pu, err := url.Parse(u)
		if err != nil || pu.Host == "" {
			t.Fatalf("DevTools URL %q: %v", u, err)
		}
		return pu.Host
	case <-exited:
		t.Fatalf("chromium exited before DevTools was ready; stderr:\n%s", errLog.tail())
	case <-ctx.Done():
		t.Fatalf("no DevTools URL from chromium; stderr:\n%s", errLog.tail())
	}
	return ""
}

// stderrWatch receives chromium's stderr (written by os/exec's copying goroutine), reports the
// first "DevTools listening on ws://..." URL and keeps the last lines for failure messages.
type stderrWatch struct {
	found chan string
	mu    sync.Mutex
	buf   []byte
	lines []string
	sent  bool
}

func (w *stderrWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSpace(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
		if u, ok := strings.CutPrefix(line, "DevTools listening on "); ok && !w.sent {
			w.sent = true
			w.found <- u
		}
		w.lines = append(w.lines, line)
		if len(w.lines) > 40 {
			w.lines = w.lines[1:]
		}
	}
	return len(p), nil
}

func (w *stderrWatch) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n") + "\n" + string(w.buf)
}

// openPage finds the browser's page target through /json/list and connects to it.
func openPage(t *testing.T, ctx context.Context, devtools string) *cdpConn {
	t.Helper()
	var wsURL string
	for wsURL == "" {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+devtools+"/json/list", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("DevTools /json/list: %v", err)
		}
		var targets []struct {
			Type                 string `json:"type"`
			URL                  string `json:"url"`
			WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
		}
		err = json.NewDecoder(resp.Body).Decode(&targets)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("DevTools /json/list: %v", err)
		}
		for _, tg := range targets {
			if tg.Type == "page" && tg.WebSocketDebuggerURL != "" {
				wsURL = tg.WebSocketDebuggerURL
				break
			}
		}
		if wsURL == "" {
			select {
			case <-ctx.Done():
				t.Fatalf("no page target in %+v", targets)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	c, _, err := websocket.DefaultDialer.DialContext(ctx, wsURL, nil)
	if err != nil {
		t.Fatalf("DevTools page %s: %v", wsURL, err)
	}
	p := &cdpConn{c: c, pending: map[int64]chan cdpReply{}, done: make(chan struct{})}
	go p.readLoop()
	t.Cleanup(func() {
		c.Close()
		<-p.done
	})
	return p
}

// cdpConn is a minimal Chrome DevTools Protocol client: calls with ids, replies matched by id;
// events go to the function given to onEvents, if any, else they are dropped.
type cdpConn struct {
	c      *websocket.Conn
	wmu    sync.Mutex // gorilla allows one concurrent writer
	lastID atomic.Int64

	mu      sync.Mutex
	pending map[int64]chan cdpReply
	events  func(method string, params json.RawMessage) // called on the read goroutine
	err     error                                       // set before done is closed
	done    chan struct{}                               // closed when readLoop ends
}

type cdpReply struct {
	ID     int64           `json:"id"`
	Method string          `json:"method"` // events
	Params json.RawMessage `json:"params"` // events
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (p *cdpConn) readLoop() {
	defer close(p.done)
	for {
		_, b, err := p.c.ReadMessage()
		if err != nil {
			p.mu.Lock()
			p.err = err
			p.mu.Unlock()
			return
		}
		var r cdpReply
		if json.Unmarshal(b, &r) != nil {
			continue
		}
		if r.ID == 0 { // an event
			p.mu.Lock()
			fn := p.events
			p.mu.Unlock()
			if fn != nil && r.Method != "" {
				fn(r.Method, r.Params)
			}
			continue
		}
		p.mu.Lock()
		ch := p.pending[r.ID]
		delete(p.pending, r.ID)
		p.mu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
}

// onEvents has fn receive every event from now on (on the read goroutine).
func (p *cdpConn) onEvents(fn func(method string, params json.RawMessage)) {
	p.mu.Lock()
	p.events = fn
	p.mu.Unlock()
}

// call sends method with params and decodes the reply's result into out (when not nil).
func (p *cdpConn) call(ctx context.Context, method string, params any, out any) error {
	id := p.lastID.Add(1)
	ch := make(chan cdpReply, 1)
	p.mu.Lock()
	p.pending[id] = ch
	p.mu.Unlock()
	msg, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		return err
	}
	p.wmu.Lock()
	err = p.c.WriteMessage(websocket.TextMessage, msg)
	p.wmu.Unlock()
	if err != nil {
		return err
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			return fmt.Errorf("%s: CDP error %d: %s", method, r.Error.Code, r.Error.Message)
		}
		if out != nil {
			return json.Unmarshal(r.Result, out)
		}
		return nil
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return fmt.Errorf("%s: DevTools connection ended: %w", method, p.err)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// eval runs expr in the page (Runtime.evaluate, by value, awaiting promises) and returns its
// JSON value.
func (p *cdpConn) eval(ctx context.Context, expr string) (json.RawMessage, error) {
	var r struct {
		Result struct {
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	err := p.call(ctx, "Runtime.evaluate", map[string]any{
		"expression": expr, "returnByValue": true, "awaitPromise": true,
	}, &r)
	if err != nil {
		return nil, err
	}
	if r.ExceptionDetails != nil {
		return nil, errors.New("JS exception: " + r.ExceptionDetails.Text + " " + r.ExceptionDetails.Exception.Description)
	}
	return r.Result.Value, nil
}

func (p *cdpConn) evalBool(t *testing.T, ctx context.Context, expr string) bool {
	t.Helper()
	v, err := p.eval(ctx, expr)
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return string(v) == "true"
}

func (p *cdpConn) evalString(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	v, err := p.eval(ctx, expr)
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		t.Fatalf("evaluate %s: %s is not a string", expr, v)
	}
	return s
}

// waitTrue polls expr until it is true. Exceptions while polling (the page may still be
// loading) are retried; at ctx's end the test fails with the page's state.
func (p *cdpConn) waitTrue(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		v, err := p.eval(ctx, expr)
		if err == nil && string(v) == "true" {
			return
		}
		last = err
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			state, _ := p.eval(sctx, `JSON.stringify(window.demoState)`)
			cancel()
			t.Fatalf("waiting until %s: %v (last error %v)\ndemoState: %s", what, ctx.Err(), last, state)
		case <-tick.C:
		}
	}
}
