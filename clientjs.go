package wsgate

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
	"time"
)

// clientJS is the browser client (client/js/wsgate.js), served at /wsgate.js so that a page on
// any origin can import the client that matches this server's protocol. Immutable.
//
//go:embed client/js/wsgate.js
var clientJS []byte

// clientJSTag is clientJS's entity tag: a strong validator of its content (RFC 9110 section
// 8.8.3), computed once.
var clientJSTag = func() string {
	sum := sha256.Sum256(clientJS)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
}()

// serveClientJS answers GET and HEAD /wsgate.js with the browser client as a JavaScript module.
// "no-cache" makes browsers revalidate it on every load (a 304 when unchanged), so a page never
// runs a client older than the server it talks to. Any goroutine (net/http's).
func serveClientJS(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", clientJSTag)
	// Pages served from other origins may import it (module scripts are fetched with CORS).
	h.Set("Access-Control-Allow-Origin", "*")
	http.ServeContent(w, r, "wsgate.js", time.Time{}, bytes.NewReader(clientJS))
}
