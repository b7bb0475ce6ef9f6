package wsgate

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"html/template"
	"net"
	"net/http"
	"strconv"
)

// demoHTML is the demo page: one self-contained HTML file with inline CSS and JS and no external
// resources. It is a html/template so that the WebSocket URL and the CSP nonce are escaped for the
// context they land in.
//
//go:embed demo.html
var demoHTML string

// demoPage is parsed once at package initialisation and never modified afterwards; Execute is
// safe for concurrent use.
var demoPage = template.Must(template.New("demo.html").Parse(demoHTML))

// demoData is what the template receives.
type demoData struct {
	// WS is the absolute ws:// URL of the WebSocket listener, as the browser must dial it.
	WS string
	// Mode is "pubsub" or "echo": the page shows the subscribe/publish panes or the echo pane.
	Mode string
	// Nonce authorises the page's one inline <style> and one inline <script> under the
	// Content-Security-Policy of this response (CSP Level 3, "nonce-source").
	Nonce string
}

// serveDemo answers GET / on the admin listener with the demo page (pub/sub or echo, after the
// server's mode). Any other path is 404; a server with a custom Handler has no demo page (its
// protocol is unknown), so it is 404 too. The page needs no API key: the calls it makes to /api/
// carry the key the user types.
//
// Called by net/http on its own goroutines; it reads only fields that are immutable after Start.
func (s *Server) serveDemo(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	mode := s.mode()
	if mode != ModePubSub && mode != ModeEcho {
		http.Error(w, "no demo page: this server runs a custom handler", http.StatusNotFound)
		return
	}
	d := demoData{WS: s.demoWSURL(r.Host), Mode: mode, Nonce: rand.Text()}
	// Only the nonce'd inline module and style run, plus the module it imports from this origin
	// (/wsgate.js); fetch may reach this origin (the API) and WebSocket URLs (the WS listener is
	// on another port, hence another origin).
	s.servePage(w, r, demoPage, d, d.Nonce, "script-src 'nonce-"+d.Nonce+"' 'self'", "connect-src 'self' ws: wss:")
}

// servePage renders one of the admin listener's self-contained pages (page with data) and
// writes it with the headers they share: no caching, no sniffing, no referrer, and a
// Content-Security-Policy that denies everything but the page's nonce'd inline style, the given
// script and connect sources, and data: images. HEAD gets the headers only. net/http goroutines.
func (s *Server) servePage(w http.ResponseWriter, r *http.Request, page *template.Template, data any, nonce, scriptSrc, connectSrc string) {
	var buf bytes.Buffer
	if err := page.Execute(&buf, data); err != nil {
		s.log.Error("admin page", "page", page.Name(), "err", err)
		http.Error(w, "page failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; "+scriptSrc+"; style-src 'nonce-"+nonce+"'; "+connectSrc+
		"; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// demoWSURL is the URL a browser that loaded the page from reqHost (the request's Host header)
// must dial to reach the WebSocket listener. The listener's own IP is used unless it is the
// unspecified address (0.0.0.0 or ::), which cannot be dialled; then the host name the browser
// used for the admin listener is the best guess, provided it looks like a host name or an IP
// literal (the Host header is client-supplied), else "localhost".
func (s *Server) demoWSURL(reqHost string) string {
	port := strconv.Itoa(s.addr.Port)
	host := s.addr.IP.String()
	if s.addr.IP == nil || s.addr.IP.IsUnspecified() {
		host = "localhost"
		h := reqHost
		if hh, _, err := net.SplitHostPort(reqHost); err == nil {
			h = hh
		}
		if validDemoHost(h) {
			host = h
		}
	}
	return "ws://" + net.JoinHostPort(host, port) + "/"
}

// validDemoHost accepts an IP literal (RFC 4291 / RFC 791 text forms) or a DNS name made of
// letters, digits, '-' and '.' (RFC 1123 section 2.1), at most 253 bytes.
func validDemoHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if ip := net.ParseIP(h); ip != nil {
		return true
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}
