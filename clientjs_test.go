package wsgate

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/wsgate/wsgate/pubsub"
)

// TestClientJSServed: the admin listener serves the browser client at /wsgate.js, byte for byte
// the file in client/js, as a JavaScript module that browsers revalidate (ETag, 304), in every
// mode; other methods are refused.
func TestClientJSServed(t *testing.T) {
	want, err := os.ReadFile("client/js/wsgate.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Server{
		pubsubServer(t, Config{}, pubsub.Config{}),
		startServer(t, Config{Handler: Echo{}, AdminAddr: "127.0.0.1:0"}),
	} {
		url := "http://" + s.AdminAddr() + "/wsgate.js"
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != 200 || !bytes.Equal(body, want) {
			t.Fatalf("GET /wsgate.js: %d, %d bytes (want the %d bytes of client/js/wsgate.js)", resp.StatusCode, len(body), len(want))
		}
		if h.Get("Content-Type") != "text/javascript; charset=utf-8" || h.Get("X-Content-Type-Options") != "nosniff" ||
			h.Get("Cache-Control") != "no-cache" || h.Get("ETag") == "" {
			t.Fatalf("headers %v", h)
		}

		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("If-None-Match", h.Get("ETag"))
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Fatalf("revalidation with the ETag: %d, want 304", resp.StatusCode)
		}

		for method, status := range map[string]int{"HEAD": 200, "POST": 405, "DELETE": 405} {
			req, _ := http.NewRequest(method, url, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != status {
				t.Errorf("%s /wsgate.js: %d, want %d", method, resp.StatusCode, status)
			}
		}
	}
}
