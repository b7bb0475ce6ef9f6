package bench

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// The example of RFC 6455 section 1.3.
const (
	rfcKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	rfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

func TestAcceptForRFCExample(t *testing.T) {
	if got := acceptFor([]byte(rfcKey)); string(got[:]) != rfcAccept {
		t.Fatalf("accept %s, want %s", got, rfcAccept)
	}
	k := makeKey([16]byte{'t', 'h', 'e', ' ', 's', 'a', 'm', 'p', 'l', 'e', ' ', 'n', 'o', 'n', 'c', 'e'})
	if string(k[:]) != rfcKey {
		t.Fatalf("key %s, want %s", k, rfcKey)
	}
}

// TestUpgradeRequestIsValidHTTP reads the request back with net/http.
func TestUpgradeRequestIsValidHTTP(t *testing.T) {
	b := appendUpgradeRequest(nil, "example.com:8080", "/chat?x=1", []byte(rfcKey), "X-Extra: 1\r\n", "k")
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]string{
		"Upgrade": "websocket", "Connection": "Upgrade", "Sec-Websocket-Version": "13",
		"Sec-Websocket-Key": rfcKey, "Authorization": "Bearer k", "X-Extra": "1",
	}
	for k, v := range checks {
		if got := req.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if req.Method != "GET" || req.Host != "example.com:8080" || req.RequestURI != "/chat?x=1" || req.ProtoMinor != 1 {
		t.Errorf("request line: %s %s %s host %s", req.Method, req.RequestURI, req.Proto, req.Host)
	}
}

func goodResponse(extra string) string {
	return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + rfcAccept + "\r\n" + extra + "\r\n"
}

func TestParseUpgradeResponse(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		n      int
		status int
		err    error
	}{
		{name: "ok", in: goodResponse(""), n: len(goodResponse("")), status: 101},
		{name: "ok with frame bytes after", in: goodResponse("") + "\x81\x02hi", n: len(goodResponse("")), status: 101},
		{name: "case and token lists", in: "HTTP/1.1 101 x\r\nupgrade: WebSocket\r\nconnection: keep-alive, UPGRADE\r\nsec-websocket-accept: " + rfcAccept + "\r\n\r\n", n: -1, status: 101},
		{name: "incomplete", in: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n", n: 0},
		{name: "403", in: "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", n: -1, status: 403, err: errStatus},
		{name: "503 no reason", in: "HTTP/1.1 503\r\n\r\n", n: -1, status: 503, err: errStatus},
		{name: "bad accept", in: strings.Replace(goodResponse(""), rfcAccept, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", 1), n: -1, status: 101, err: errBadAccept},
		{name: "no accept", in: "HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", n: -1, status: 101, err: errBadAccept},
		{name: "no upgrade", in: "HTTP/1.1 101 x\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + rfcAccept + "\r\n\r\n", n: -1, status: 101, err: errNotUpgraded},
		{name: "no connection", in: "HTTP/1.1 101 x\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " + rfcAccept + "\r\n\r\n", n: -1, status: 101, err: errNoConnUpgrade},
		{name: "extension", in: goodResponse("Sec-WebSocket-Extensions: permessage-deflate\r\n"), n: -1, status: 101, err: errUnrequestedExt},
		{name: "protocol", in: goodResponse("Sec-WebSocket-Protocol: chat\r\n"), n: -1, status: 101, err: errUnrequestedExt},
		{name: "bad status line", in: "HTTP/2 101\r\n\r\n", n: -1, err: errBadStatusLine},
		{name: "bad status code", in: "HTTP/1.1 1x1 Switching\r\n\r\n", n: -1, err: errBadStatusLine},
		{name: "bad header", in: "HTTP/1.1 101 x\r\nno colon here\r\n\r\n", n: -1, status: 101, err: errBadHeaderLine},
		{name: "space in name", in: "HTTP/1.1 101 x\r\nUpgrade : websocket\r\n\r\n", n: -1, status: 101, err: errBadHeaderLine},
		{name: "too large", in: "HTTP/1.1 101 x\r\n" + strings.Repeat("X-Pad: y\r\n", 2000), n: 0, err: errHeadTooLarge},
	}
	for _, c := range cases {
		n, status, err := parseUpgradeResponse([]byte(c.in), []byte(rfcKey))
		if !errors.Is(err, c.err) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.err)
		}
		wantN := c.n
		if wantN == -1 {
			wantN = strings.Index(c.in, "\r\n\r\n") + 4
		}
		if n != wantN || status != c.status {
			t.Errorf("%s: n %d status %d, want %d %d", c.name, n, status, wantN, c.status)
		}
	}
}

// TestParseUpgradeResponseIncremental feeds a response byte by byte, as
// short reads would.
func TestParseUpgradeResponseIncremental(t *testing.T) {
	full := goodResponse("Server: test\r\n")
	for i := range len(full) - 1 {
		if n, _, err := parseUpgradeResponse([]byte(full[:i]), []byte(rfcKey)); n != 0 || err != nil {
			t.Fatalf("prefix %d: n %d err %v", i, n, err)
		}
	}
	if n, _, err := parseUpgradeResponse([]byte(full), []byte(rfcKey)); n != len(full) || err != nil {
		t.Fatalf("full: n %d err %v", n, err)
	}
}

func FuzzParseUpgradeResponse(f *testing.F) {
	f.Add([]byte(goodResponse("")))
	f.Add([]byte("HTTP/1.1 403 Forbidden\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 101 x\r\nupgrade: websocket\r\nconnection: a, upgrade\r\nsec-websocket-accept: " + rfcAccept + "\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 101\r\n:\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, status, err := parseUpgradeResponse(b, []byte(rfcKey))
		if n < 0 || n > len(b) {
			t.Fatalf("n %d out of range", n)
		}
		if err == nil && n > 0 {
			if status != 101 || !bytes.Contains(b[:n], []byte(rfcAccept)) || !bytes.HasSuffix(b[:n], []byte("\r\n\r\n")) {
				t.Fatalf("accepted %q", b[:n])
			}
		}
		if err != nil && n == 0 && !errors.Is(err, errHeadTooLarge) {
			t.Fatalf("error %v without a complete head", err)
		}
	})
}

func BenchmarkParseUpgradeResponse(b *testing.B) {
	resp := []byte(goodResponse("Server: bench\r\n"))
	b.ReportAllocs()
	for b.Loop() {
		parseUpgradeResponse(resp, []byte(rfcKey))
	}
}
