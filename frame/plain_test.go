package frame

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func TestIsUpgrade(t *testing.T) {
	for _, tc := range []struct {
		head string
		want bool
	}{
		{"GET /sse?channel=a HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n", false},
		{"GET /sse HTTP/1.0\r\n\r\n", false},
		{"POST /sse HTTP/1.1\r\nContent-Length: 0\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: x\r\nupgrade: websocket\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nUPGRADE: h2c\r\n\r\n", true},   // Upgrade decides (and refuses) it
		{"GET / HTTP/1.1\r\nX-Upgrade: no\r\n\r\n", false}, // another field
		{"GET / HTTP/1.1\r\nbroken line\r\n\r\n", true},    // malformed: Upgrade answers 400
		{"GET / HTTP/1.1\r\nHost: x\r\n", true},            // incomplete
	} {
		if got := IsUpgrade([]byte(tc.head)); got != tc.want {
			t.Errorf("IsUpgrade(%q) = %v, want %v", tc.head, got, tc.want)
		}
	}
}

func TestReadRequest(t *testing.T) {
	r, resp, res := ReadRequest(nil, []byte("POST /sse?channel=a HTTP/1.0\r\nLast-Event-ID:  x:y:1 \r\n\r\n"))
	if res.Status != 0 || resp != nil || string(r.Method) != "POST" || r.Minor != 0 ||
		string(r.Path()) != "/sse" || string(r.RawQuery()) != "channel=a" {
		t.Fatalf("ReadRequest: %+v %q %+v", r, resp, res)
	}
	if v, ok := r.Header("last-event-id"); !ok || string(v) != "x:y:1" {
		t.Fatalf("Last-Event-ID %q %v", v, ok)
	}
	for _, tc := range []struct {
		head   string
		status int
		body   string
	}{
		{"GET /sse HTTP/2.0\r\n\r\n", 505, "HTTP/1.0 and HTTP/1.1"},
		{"GET /sse HTTP/0.9\r\n\r\n", 505, "HTTP/1.0 and HTTP/1.1"},
		{"GET /sse\r\n\r\n", 400, "malformed"},
		{"GET /s#f HTTP/1.1\r\n\r\n", 400, "malformed"},
		{"GET /sse HTTP/1.1\r\nA : b\r\n\r\n", 400, "malformed"},
		{"GET /sse HTTP/1.1\r\nA: \x01\r\n\r\n", 400, "malformed"},
	} {
		_, resp, res := ReadRequest([]byte("keep"), []byte(tc.head))
		if res.Status != tc.status || !bytes.HasPrefix(resp, []byte("keepHTTP/1.1 ")) || !bytes.Contains(resp, []byte(tc.body)) {
			t.Errorf("ReadRequest(%q): %d %q", tc.head, res.Status, resp)
		}
	}
}

// FuzzReadRequest: IsUpgrade and ReadRequest never panic nor modify their input; a head
// ReadRequest accepts is HTTP/1.0 or 1.x that net/http parses to the same method and target,
// and a refusal is a complete 400 or 505 response.
func FuzzReadRequest(f *testing.F) {
	f.Add([]byte("GET /sse?channel=a HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("GET /sse HTTP/1.0\r\nLast-Event-ID: a:b:1\r\n\r\n"))
	f.Add([]byte("POST http://h/sse HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"))
	f.Add([]byte("GET / HTTP/3.0\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nA: b\nC: d\r\n\r\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		up := IsUpgrade(data)
		r, resp, res := ReadRequest(nil, data)
		if !bytes.Equal(data, orig) {
			t.Fatal("input modified")
		}
		if res.Status != 0 {
			if (res.Status != 400 && res.Status != 505) || !bytes.HasPrefix(resp, []byte("HTTP/1.1 ")) {
				t.Fatalf("refusal %d %q", res.Status, resp)
			}
			return
		}
		if up && HeaderEnd(data) < 0 {
			t.Fatal("an incomplete head was read")
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data[:HeaderEnd(data)])))
		if err != nil {
			// net/http is stricter about some things we pass to the handler (which then
			// decides): only the request line must agree.
			if strings.Contains(err.Error(), "malformed HTTP request") || strings.Contains(err.Error(), "malformed HTTP version") {
				t.Fatalf("accepted a request line net/http refuses (%v): %q", err, data)
			}
			return
		}
		if req.Method != string(r.Method) || req.RequestURI != string(r.URI) || req.ProtoMinor != r.Minor || req.ProtoMajor != 1 {
			t.Fatalf("read %s %q 1.%d, net/http %s %q %s", r.Method, r.URI, r.Minor, req.Method, req.RequestURI, req.Proto)
		}
	})
}
