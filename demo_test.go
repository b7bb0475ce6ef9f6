package wsgate

import (
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/conn"
	"github.com/wsgate/wsgate/pubsub"
)

// customHandler stands for an embedder's own application: no demo page, no API.
type customHandler struct{}

func (customHandler) OnOpen(*conn.Conn)                       {}
func (customHandler) OnMessage(*conn.Conn, ws.OpCode, []byte) {}
func (customHandler) OnClose(*conn.Conn, ws.StatusCode)       {}

var (
	demoWSAttr    = regexp.MustCompile(`data-ws="([^"]*)"`)
	demoModeAttr  = regexp.MustCompile(`data-mode="([^"]*)"`)
	demoScriptTag = regexp.MustCompile(`<script type="module" nonce="([^"]+)">`)
	demoStyleTag  = regexp.MustCompile(`<style nonce="([^"]+)">`)
)

// demoGet runs the handler directly with httptest.
func demoGet(s *Server, method, target, host string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	if host != "" {
		r.Host = host
	}
	w := httptest.NewRecorder()
	s.serveDemo(w, r)
	return w
}

// checkDemoPage checks status, headers and the injected values of a demo page response and
// returns the injected WebSocket URL.
func checkDemoPage(t *testing.T, code int, h http.Header, body, wantMode string) string {
	t.Helper()
	if code != http.StatusOK {
		t.Fatalf("status %d, want 200; body %q", code, body)
	}
	if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	if n, _ := strconv.Atoi(h.Get("Content-Length")); n != len(body) {
		t.Fatalf("Content-Length %q, body is %d bytes", h.Get("Content-Length"), len(body))
	}
	m := demoWSAttr.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no data-ws attribute in the page")
	}
	if mm := demoModeAttr.FindStringSubmatch(body); mm == nil || mm[1] != wantMode {
		t.Fatalf("data-mode %v, want %q", mm, wantMode)
	}
	script, style := demoScriptTag.FindStringSubmatch(body), demoStyleTag.FindStringSubmatch(body)
	if script == nil || style == nil || script[1] != style[1] {
		t.Fatalf("script nonce %v, style nonce %v: want one nonce on both", script, style)
	}
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'nonce-"+script[1]+"' 'self'") || !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("Content-Security-Policy %q does not carry the page's nonce %q", csp, script[1])
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") || strings.Contains(body, " src=") {
		t.Fatal("the page refers to an external resource; it must be self-contained")
	}
	return html.UnescapeString(m[1])
}

// TestDemoPageServedByAdmin: GET / on a real admin listener returns the page with the WebSocket
// listener's address (another port than the admin listener's), without the API key, while /api/
// still demands it and unknown paths are 404.
func TestDemoPageServedByAdmin(t *testing.T) {
	s := pubsubServer(t, Config{}, pubsub.Config{APIKey: "sekret"})
	base := "http://" + s.AdminAddr()

	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ws := checkDemoPage(t, resp.StatusCode, resp.Header, string(body), ModePubSub)
	if want := "ws://" + s.Addr().String() + "/"; ws != want {
		t.Fatalf("injected WebSocket URL %q, want %q", ws, want)
	}
	if _, adminPort, _ := net.SplitHostPort(s.AdminAddr()); strings.HasSuffix(ws, ":"+adminPort+"/") {
		t.Fatalf("injected URL %q points at the admin port", ws)
	}

	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/nope", http.StatusNotFound},
		{"GET", "/demo", http.StatusNotFound},
		{"GET", "/index.html", http.StatusNotFound},
		{"POST", "/", http.StatusMethodNotAllowed},
		{"HEAD", "/", http.StatusOK},
		{"GET", "/api/stats", http.StatusUnauthorized},
		{"GET", "/api/", http.StatusUnauthorized},
		{"GET", "/healthz", http.StatusOK},
	} {
		req, _ := http.NewRequest(c.method, base+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.want)
		}
		if c.path != "/" && strings.Contains(string(b), "data-ws=") {
			t.Errorf("%s %s served the demo page", c.method, c.path)
		}
	}
}

// TestDemoHandler exercises the handler itself with httptest.
func TestDemoHandler(t *testing.T) {
	ws := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}

	t.Run("pubsub", func(t *testing.T) {
		s := &Server{addr: ws, cfg: Config{Handler: &pubsub.PubSub{}}}
		w := demoGet(s, "GET", "/", "127.0.0.1:9090")
		got := checkDemoPage(t, w.Code, w.Header(), w.Body.String(), ModePubSub)
		if got != "ws://127.0.0.1:8080/" {
			t.Fatalf("ws URL %q", got)
		}
		if w2 := demoGet(s, "GET", "/", ""); demoScriptTag.FindStringSubmatch(w2.Body.String())[1] ==
			demoScriptTag.FindStringSubmatch(w.Body.String())[1] {
			t.Fatal("two responses carry the same CSP nonce")
		}
	})
	t.Run("echo", func(t *testing.T) {
		s := &Server{addr: ws, cfg: Config{Handler: Echo{}}}
		w := demoGet(s, "GET", "/", "")
		checkDemoPage(t, w.Code, w.Header(), w.Body.String(), ModeEcho)
	})
	t.Run("custom handler", func(t *testing.T) {
		s := &Server{addr: ws, cfg: Config{Handler: customHandler{}}}
		if w := demoGet(s, "GET", "/", ""); w.Code != http.StatusNotFound {
			t.Fatalf("custom handler: %d, want 404", w.Code)
		}
	})
	t.Run("not found", func(t *testing.T) {
		s := &Server{addr: ws, cfg: Config{Handler: &pubsub.PubSub{}}}
		for _, p := range []string{"/nope", "/api/publish", "/demo.html", "//"} {
			if w := demoGet(s, "GET", p, ""); w.Code != http.StatusNotFound || strings.Contains(w.Body.String(), "data-ws") {
				t.Errorf("GET %s: %d, want 404 without the page", p, w.Code)
			}
		}
	})
	t.Run("method", func(t *testing.T) {
		s := &Server{addr: ws, cfg: Config{Handler: &pubsub.PubSub{}}}
		w := demoGet(s, "DELETE", "/", "")
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
			t.Fatalf("DELETE /: %d Allow %q", w.Code, w.Header().Get("Allow"))
		}
		if w := demoGet(s, "HEAD", "/", ""); w.Code != http.StatusOK || w.Body.Len() != 0 {
			t.Fatalf("HEAD /: %d with %d body bytes", w.Code, w.Body.Len())
		}
	})
}

// TestDemoWSURL: the address the page dials, in particular when the listener is bound to the
// unspecified address and the host must come from the (client-supplied) Host header.
func TestDemoWSURL(t *testing.T) {
	for _, c := range []struct {
		ip   net.IP
		host string
		want string
	}{
		{net.IPv4(127, 0, 0, 1), "evil.example:1", "ws://127.0.0.1:8080/"},
		{net.IPv6loopback, "", "ws://[::1]:8080/"},
		{net.IPv4zero, "gw.example.com:9090", "ws://gw.example.com:8080/"},
		{net.IPv4zero, "gw.example.com", "ws://gw.example.com:8080/"},
		{net.IPv4zero, "10.1.2.3:9090", "ws://10.1.2.3:8080/"},
		{net.IPv6unspecified, "[::1]:9090", "ws://[::1]:8080/"},
		{net.IPv6unspecified, "[fe80::1%25eth0]:9090", "ws://localhost:8080/"},
		{net.IPv4zero, `x"><script>alert(1)</script>:9090`, "ws://localhost:8080/"},
		{net.IPv4zero, "a b:9090", "ws://localhost:8080/"},
		{net.IPv4zero, "", "ws://localhost:8080/"},
		{nil, "h:1", "ws://h:8080/"},
	} {
		s := &Server{addr: &net.TCPAddr{IP: c.ip, Port: 8080}}
		if got := s.demoWSURL(c.host); got != c.want {
			t.Errorf("listen %v, Host %q: %q, want %q", c.ip, c.host, got, c.want)
		}
	}
}

// TestDemoPageEscapesHost: a hostile Host header cannot break out of the data attribute.
func TestDemoPageEscapesHost(t *testing.T) {
	s := &Server{addr: &net.TCPAddr{IP: net.IPv4zero, Port: 8080}, cfg: Config{Handler: &pubsub.PubSub{}}}
	w := demoGet(s, "GET", "/", `x"><img onerror=alert(1)>`)
	body := w.Body.String()
	if strings.Contains(body, "alert(1)") || strings.Contains(body, "<img") {
		t.Fatal("Host header reached the page unescaped")
	}
	if got := checkDemoPage(t, w.Code, w.Header(), body, ModePubSub); got != "ws://localhost:8080/" {
		t.Fatalf("ws URL %q", got)
	}
}

// FuzzDemoWSURL: whatever the Host header, the URL handed to the page is a ws:// URL to the
// listener's port whose host is an IP literal or a plain DNS name.
func FuzzDemoWSURL(f *testing.F) {
	for _, seed := range []string{"", "localhost:9090", "[::1]:9090", "10.0.0.1", "a.b-c.d:1",
		`"><script>`, "[fe80::1%eth0]:1", "h:", ":9", "[::ffff:1.2.3.4]:80", "\x00\r\n"} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, host string, v6 bool) {
		ip := net.IPv4zero
		if v6 {
			ip = net.IPv6unspecified
		}
		s := &Server{addr: &net.TCPAddr{IP: ip, Port: 8080}}
		got := s.demoWSURL(host)
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("Host %q: %q does not parse: %v", host, got, err)
		}
		if u.Scheme != "ws" || u.Port() != "8080" || u.Path != "/" || u.RawQuery != "" || u.User != nil {
			t.Fatalf("Host %q: %q", host, got)
		}
		if !validDemoHost(u.Hostname()) {
			t.Fatalf("Host %q: host %q in %q", host, u.Hostname(), got)
		}
		if strings.ContainsAny(got, "\"'<>& \t\r\n") {
			t.Fatalf("Host %q: %q has characters that need escaping", host, got)
		}
	})
}
