package frame

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

// The example key of RFC 6455 section 1.3 and its accept value.
const (
	rfcKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	rfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// acceptFor computes Sec-WebSocket-Accept (RFC 6455 section 4.2.2 step 5.4)
// independently of gobwas/ws.
func acceptFor(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

var baseHeaders = []string{
	"Host: example.com:8080",
	"Upgrade: websocket",
	"Connection: Upgrade",
	"Sec-WebSocket-Key: " + rfcKey,
	"Sec-WebSocket-Version: 13",
}

// request builds a request head from a request line and header lines.
func request(line string, headers ...string) []byte {
	var b strings.Builder
	b.WriteString(line + "\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// headersWith returns baseHeaders with the header named name replaced by
// lines (none: removed), keeping its position.
func headersWith(name string, lines ...string) []string {
	var out []string
	for _, h := range baseHeaders {
		if strings.HasPrefix(h, name+":") {
			out = append(out, lines...)
			continue
		}
		out = append(out, h)
	}
	return out
}

// plus returns baseHeaders followed by extra lines.
func plus(extra ...string) []string {
	return append(slices.Clone(baseHeaders), extra...)
}

// parseResponse parses an HTTP response with net/http, checks it is the only
// thing in out, and returns it with its body.
func parseResponse(t *testing.T, out []byte) (*http.Response, string) {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(out))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf(
			"response does not parse: %v\n%s",
			err, out,
		)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf(
			"response body: %v\n%s",
			err, out,
		)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		if _, err := br.Peek(1); err != io.EOF {
			t.Fatalf(
				"bytes after the response:\n%q",
				out,
			)
		}
	}
	return resp, string(body)
}

// checkResponse checks the response text against the Result and the rules
// every response obeys.
func checkResponse(t *testing.T, out []byte, res Result, key string) *http.Response {
	t.Helper()
	resp, body := parseResponse(t, out)
	if resp.StatusCode != res.Status {
		t.Fatalf(
			"written status %d, Result.Status %d",
			resp.StatusCode, res.Status,
		)
	}
	if resp.ProtoMajor != 1 || resp.ProtoMinor != 1 {
		t.Fatalf(
			"response protocol %s",
			resp.Proto,
		)
	}
	if res.Status == http.StatusSwitchingProtocols {
		if res.Reason != "" {
			t.Fatalf(
				"101 with Reason %q",
				res.Reason,
			)
		}
		if got, want := resp.Header.Get("Sec-WebSocket-Accept"), acceptFor(key); got != want {
			t.Fatalf(
				"Sec-WebSocket-Accept %q, want %q",
				got, want,
			)
		}
		if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
			t.Fatalf(
				"101 Upgrade header %q",
				resp.Header.Get("Upgrade"),
			)
		}
		if !headerHasToken(resp.Header, "Connection", "upgrade") {
			t.Fatalf(
				"101 Connection header %q",
				resp.Header.Values("Connection"),
			)
		}
		if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "" {
			t.Fatalf(
				"Sec-WebSocket-Protocol %q, but no subprotocol is negotiated",
				got,
			)
		}
		return resp
	}
	if res.Reason == "" {
		t.Fatalf(
			"status %d without Reason",
			res.Status,
		)
	}
	if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
		t.Fatalf(
			"Content-Length %q, body %d bytes",
			cl, len(body),
		)
	}
	// net/http turns "Connection: close" into resp.Close and drops the header.
	if !resp.Close || !bytes.Contains(out, []byte("\r\nConnection: close\r\n")) {
		t.Fatalf(
			"error response without Connection: close:\n%s",
			out,
		)
	}
	if len(body) == 0 || len(body) > 200 {
		t.Fatalf(
			"error body of %d bytes",
			len(body),
		)
	}
	return resp
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), token) {
				return true
			}
		}
	}
	return false
}

func TestHeaderEnd(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{in: "", want: -1},
		{in: "GET / HTTP/1.1\r\n", want: -1},
		{in: "GET / HTTP/1.1\r\nHost: a\r\n", want: -1},
		{in: "GET / HTTP/1.1\r\nHost: a\r\n\r", want: -1},
		{in: "GET / HTTP/1.1\r\nHost: a\r\n\r\n", want: 27},
		{in: "GET / HTTP/1.1\r\nHost: a\r\n\r\n\x81\x80", want: 27},
		{in: "GET / HTTP/1.1\n\n", want: -1},
		{in: "\r\n\r\n", want: 4},
		{in: "a\r\n\r\nb\r\n\r\n", want: 5},
	}
	for _, tt := range tests {
		if got := HeaderEnd([]byte(tt.in)); got != tt.want {
			t.Errorf(
				"HeaderEnd(%q) = %d, want %d",
				tt.in, got, tt.want,
			)
		}
	}
	// Every split point of a real head: incomplete until the last byte.
	req := request("GET /chat HTTP/1.1", baseHeaders...)
	for k := 0; k < len(req); k++ {
		if got := HeaderEnd(req[:k]); got != -1 {
			t.Fatalf(
				"HeaderEnd of %d/%d bytes = %d",
				k, len(req), got,
			)
		}
	}
	if got := HeaderEnd(req); got != len(req) {
		t.Fatalf(
			"HeaderEnd of the whole head = %d, want %d",
			got, len(req),
		)
	}
}

func TestUpgradeStatuses(t *testing.T) {
	tests := []struct {
		name       string
		req        []byte
		wantStatus int
		wantReason string
		wantHeader map[string]string
	}{
		{
			name:       "valid",
			req:        request("GET /chat HTTP/1.1", baseHeaders...),
			wantStatus: 101,
		},
		{
			name: "valid, lower case names, token lists, mixed case values",
			req: request("GET /a/b?token=x&y=1 HTTP/1.1",
				"host: 127.0.0.1",
				"upgrade: WebSocket",
				"connection: keep-alive, Upgrade",
				"sec-websocket-key:"+rfcKey,
				"sec-websocket-version:   13  ",
				"User-Agent: test",
			),
			wantStatus: 101,
		},
		{
			name:       "valid, IPv6 host",
			req:        request("GET / HTTP/1.1", headersWith("Host", "Host: [::1]:9000")...),
			wantStatus: 101,
		},
		{
			name:       "valid, host without port",
			req:        request("GET / HTTP/1.1", headersWith("Host", "Host: localhost")...),
			wantStatus: 101,
		},
		{
			name:       "valid, HTTP/1.2",
			req:        request("GET / HTTP/1.2", baseHeaders...),
			wantStatus: 101,
		},
		{
			name:       "valid, absolute-form target",
			req:        request("GET ws://example.com:8080/feed?x=1 HTTP/1.1", baseHeaders...),
			wantStatus: 101,
		},
		{
			name:       "valid, absolute-form target without path",
			req:        request("GET https://example.com?x HTTP/1.1", baseHeaders...),
			wantStatus: 101,
		},
		{
			name:       "subprotocol offered, server has none",
			req:        request("GET / HTTP/1.1", plus("Sec-WebSocket-Protocol: chat")...),
			wantStatus: 101,
		},
		{
			name:       "extensions offered are ignored",
			req:        request("GET / HTTP/1.1", plus("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")...),
			wantStatus: 101,
		},

		// Method and HTTP version.
		{
			name:       "POST",
			req:        request("POST /chat HTTP/1.1", baseHeaders...),
			wantStatus: 405,
			wantReason: ReasonMethod,
			wantHeader: map[string]string{"Allow": "GET"},
		},
		{
			name:       "lower case get",
			req:        request("get / HTTP/1.1", baseHeaders...),
			wantStatus: 405,
			wantReason: ReasonMethod,
			wantHeader: map[string]string{"Allow": "GET"},
		},
		{
			name:       "HEAD without upgrade headers",
			req:        request("HEAD / HTTP/1.1", "Host: a"),
			wantStatus: 405,
			wantReason: ReasonMethod,
		},
		{
			name:       "HTTP/1.0",
			req:        request("GET / HTTP/1.0", baseHeaders...),
			wantStatus: 505,
			wantReason: ReasonProto,
		},
		{
			name:       "HTTP/2.0",
			req:        request("GET / HTTP/2.0", baseHeaders...),
			wantStatus: 505,
			wantReason: ReasonProto,
		},
		{
			name:       "HTTP/2 preface",
			req:        []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
			wantStatus: 400,
			wantReason: ReasonMalformed,
		},
		{
			name:       "HTTP/0.9 with POST: version first",
			req:        request("POST / HTTP/0.9"),
			wantStatus: 505,
			wantReason: ReasonProto,
		},

		// Not HTTP, or bad syntax.
		{
			name:       "not HTTP",
			req:        []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),
			wantStatus: 400,
			wantReason: ReasonMalformed,
		},
		{
			name:       "incomplete head",
			req:        []byte("GET / HTTP/1.1\r\nHost: a\r\n"),
			wantStatus: 400,
			wantReason: ReasonMalformed,
		},
		{
			name:       "empty",
			req:        nil,
			wantStatus: 400,
			wantReason: ReasonMalformed,
		},
		{
			name:       "no version",
			req:        request("GET /", baseHeaders...),
			wantStatus: 400,
			wantReason: ReasonMalformed,
		},
		{
			name:       "lower case version",
			req:        request("GET / http/1.1", baseHeaders...),
			wantStatus: 400,
			wantReason: ReasonMalformed,
		},
		{
			name:       "two-digit version",
			req:        request("GET / HTTP/1.11", baseHeaders...),
			wantStatus: 400,
			wantReason: ReasonMalformed,
		},
		{
			name:       "double space",
			req:        request("GET  / HTTP/1.1", baseHeaders...),
			wantStatus: 400,
			wantReason: ReasonMalformed,
		},
		{
			name:       "asterisk target",
			req:        request("GET * HTTP/1.1", baseHeaders...),
			wantStatus: 400,
			wantReason: ReasonMalformed,
		},
		{
			name:       "fragment in target",
			req:        request("GET /a#b HTTP/1.1", baseHeaders...),
			wantStatus: 400,
			wantReason: ReasonMalformed,
		},
		{
			name:       "non-ASCII target",
			req:        request("GET /caf\xc3\xa9 HTTP/1.1", baseHeaders...),
			wantStatus: 400,
			wantReason: ReasonMalformed,
		},
		{
			name:       "unknown scheme",
			req:        request("GET ftp://example.com/ HTTP/1.1", baseHeaders...),
			wantStatus: 400,
			wantReason: ReasonMalformed,
		},
		{
			name:       "empty authority",
			req:        request("GET ws:///x HTTP/1.1", baseHeaders...),
			wantStatus: 400,
			wantReason: ReasonMalformed,
		},
		{
			name:       "scheme only",
			req:        request("GET http:// HTTP/1.1", baseHeaders...),
			wantStatus: 400,
			wantReason: ReasonMalformed,
		},
		{
			name:       "leading empty line",
			req:        append([]byte("\r\n"), request("GET / HTTP/1.1", baseHeaders...)...),
			wantStatus: 400,
			wantReason: ReasonMalformed,
		},
		{
			name:       "header without colon",
			req:        request("GET / HTTP/1.1", plus("NoColon")...),
			wantStatus: 400,
			wantReason: ReasonMalformed,
		},
		{
			name:       "space before colon",
			req:        request("GET / HTTP/1.1", headersWith("Host", "Host : example.com")...),
			wantStatus: 400,
			wantReason: ReasonMalformed,
		},
		{
			name:       "obsolete line folding",
			req:        request("GET / HTTP/1.1", plus("X-A: a", " folded")...),
			wantStatus: 400,
			wantReason: ReasonMalformed,
		},
		{
			name:       "control character in value",
			req:        request("GET / HTTP/1.1", plus("X-A: a\x00b")...),
			wantStatus: 400,
			wantReason: ReasonMalformed,
		},
		{
			name:       "bare LF inside the head",
			req:        []byte("GET / HTTP/1.1\r\nHost: a\nUpgrade: websocket\r\n\r\n"),
			wantStatus: 400,
			wantReason: ReasonMalformed,
		},
		{
			name:       "bare CR inside the head",
			req:        []byte("GET / HTTP/1.1\r\nHost: a\rUpgrade: websocket\r\n\r\n"),
			wantStatus: 400,
			wantReason: ReasonMalformed,
		},
		{
			name:       "syntax error beats missing headers",
			req:        request("GET / HTTP/1.1", "Host: a", "bad line"),
			wantStatus: 400,
			wantReason: ReasonMalformed,
		},

		// Host.
		{
			name:       "missing Host",
			req:        request("GET / HTTP/1.1", headersWith("Host")...),
			wantStatus: 400,
			wantReason: ReasonHost,
		},
		{
			name:       "empty Host",
			req:        request("GET / HTTP/1.1", headersWith("Host", "Host: ")...),
			wantStatus: 400,
			wantReason: ReasonHost,
		},
		{
			name:       "Host with space",
			req:        request("GET / HTTP/1.1", headersWith("Host", "Host: a b")...),
			wantStatus: 400,
			wantReason: ReasonHost,
		},
		{
			name:       "Host with path",
			req:        request("GET / HTTP/1.1", headersWith("Host", "Host: a/b")...),
			wantStatus: 400,
			wantReason: ReasonHost,
		},
		{
			name:       "Host with bad port",
			req:        request("GET / HTTP/1.1", headersWith("Host", "Host: a:8o")...),
			wantStatus: 400,
			wantReason: ReasonHost,
		},
		{
			name:       "Host with unclosed IPv6 literal",
			req:        request("GET / HTTP/1.1", headersWith("Host", "Host: [::1")...),
			wantStatus: 400,
			wantReason: ReasonHost,
		},
		{
			name:       "two Host headers",
			req:        request("GET / HTTP/1.1", plus("Host: evil.example")...),
			wantStatus: 400,
			wantReason: ReasonHost,
		},

		// Upgrade and Connection.
		{
			name:       "missing Upgrade",
			req:        request("GET / HTTP/1.1", headersWith("Upgrade")...),
			wantStatus: 400,
			wantReason: ReasonUpgrade,
		},
		{
			name:       "Upgrade h2c",
			req:        request("GET / HTTP/1.1", headersWith("Upgrade", "Upgrade: h2c")...),
			wantStatus: 400,
			wantReason: ReasonUpgrade,
		},
		{
			name:       "missing Connection",
			req:        request("GET / HTTP/1.1", headersWith("Connection")...),
			wantStatus: 400,
			wantReason: ReasonConnection,
		},
		{
			name:       "Connection without upgrade",
			req:        request("GET / HTTP/1.1", headersWith("Connection", "Connection: keep-alive")...),
			wantStatus: 400,
			wantReason: ReasonConnection,
		},

		// Sec-WebSocket-Key.
		{
			name:       "missing key",
			req:        request("GET / HTTP/1.1", headersWith("Sec-WebSocket-Key")...),
			wantStatus: 400,
			wantReason: ReasonKey,
		},
		{
			name:       "short key",
			req:        request("GET / HTTP/1.1", headersWith("Sec-WebSocket-Key", "Sec-WebSocket-Key: abc")...),
			wantStatus: 400,
			wantReason: ReasonKey,
		},
		{
			name:       "24 characters, not base64",
			req:        request("GET / HTTP/1.1", headersWith("Sec-WebSocket-Key", "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!!!")...),
			wantStatus: 400,
			wantReason: ReasonKey,
		},
		{
			name:       "24 characters of base64 for 18 bytes",
			req:        request("GET / HTTP/1.1", headersWith("Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAA")...),
			wantStatus: 400,
			wantReason: ReasonKey,
		},
		{
			name:       "two keys",
			req:        request("GET / HTTP/1.1", plus("Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==")...),
			wantStatus: 400,
			wantReason: ReasonKey,
		},

		// Sec-WebSocket-Version.
		{
			name:       "version 8",
			req:        request("GET / HTTP/1.1", headersWith("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8")...),
			wantStatus: 426,
			wantReason: ReasonVersion,
			wantHeader: map[string]string{"Sec-WebSocket-Version": "13", "Upgrade": "websocket"},
		},
		{
			name:       "version list",
			req:        request("GET / HTTP/1.1", headersWith("Sec-WebSocket-Version", "Sec-WebSocket-Version: 13, 8")...),
			wantStatus: 426,
			wantReason: ReasonVersion,
			wantHeader: map[string]string{"Sec-WebSocket-Version": "13"},
		},
		{
			name:       "empty version",
			req:        request("GET / HTTP/1.1", headersWith("Sec-WebSocket-Version", "Sec-WebSocket-Version:")...),
			wantStatus: 426,
			wantReason: ReasonVersion,
			wantHeader: map[string]string{"Sec-WebSocket-Version": "13"},
		},
		{
			name:       "missing version",
			req:        request("GET / HTTP/1.1", headersWith("Sec-WebSocket-Version")...),
			wantStatus: 400,
			wantReason: ReasonVersion,
			wantHeader: map[string]string{"Sec-WebSocket-Version": "13"},
		},
		{
			name:       "two version headers",
			req:        request("GET / HTTP/1.1", plus("Sec-WebSocket-Version: 13")...),
			wantStatus: 400,
			wantReason: ReasonVersion,
		},

		// Precedence.
		{
			name:       "gobwas order: first bad header in request order",
			req:        request("GET / HTTP/1.1", "Connection: close", "Upgrade: h2c", "Host: a"),
			wantStatus: 400,
			wantReason: ReasonConnection,
		},
		{
			name:       "method before header syntax",
			req:        []byte("POST /x HTTP/1.1\r\nHost: a\nBad\r\n\r\n"),
			wantStatus: 405,
			wantReason: ReasonMethod,
		},
		{
			name:       "missing headers: Host reported before Upgrade",
			req:        request("GET / HTTP/1.1", "Sec-WebSocket-Version: 13"),
			wantStatus: 400,
			wantReason: ReasonHost,
		},
		{
			name:       "gobwas checks before strict checks",
			req:        request("GET / HTTP/1.1", append(headersWith("Upgrade"), "Host: second")...),
			wantStatus: 400,
			wantReason: ReasonUpgrade,
		},
		{
			name: "strict checks in request order",
			req: request("GET / HTTP/1.1", append(
				headersWith("Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAA"),
				"Host: second")...),
			wantStatus: 400,
			wantReason: ReasonKey,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := slices.Clone(tt.req)
			prefix := []byte("kept")
			out, res := Upgrade(prefix, tt.req, nil)
			if !bytes.Equal(tt.req, orig) {
				t.Fatalf("request modified")
			}
			if string(out[:4]) != "kept" {
				t.Fatalf("dst prefix overwritten")
			}
			out = out[4:]
			if res.Status != tt.wantStatus || res.Reason != tt.wantReason {
				t.Fatalf(
					"Result %+v, want status %d reason %q\n%s",
					res, tt.wantStatus, tt.wantReason, out,
				)
			}
			resp := checkResponse(t, out, res, rfcKey)
			for k, v := range tt.wantHeader {
				if got := resp.Header.Get(k); got != v {
					t.Fatalf(
						"header %s = %q, want %q\n%s",
						k, got, v, out,
					)
				}
			}
		})
	}
}

func TestUpgradeRFCExample(t *testing.T) {
	// RFC 6455 section 1.3's example handshake, answered with its accept
	// and, as no subprotocol is negotiated, without Sec-WebSocket-Protocol.
	req := request("GET /chat HTTP/1.1",
		"Host: server.example.com",
		"Upgrade: websocket",
		"Connection: Upgrade",
		"Sec-WebSocket-Key: "+rfcKey,
		"Origin: http://example.com",
		"Sec-WebSocket-Protocol: chat, superchat",
		"Sec-WebSocket-Version: 13",
	)
	out, res := Upgrade(nil, req, nil)
	want := "HTTP/1.1 101 Switching Protocols\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + rfcAccept + "\r\n" +
		"\r\n"
	if string(out) != want || res != (Result{Status: 101}) {
		t.Fatalf(
			"got %+v\n%q\nwant\n%q",
			res, out, want,
		)
	}
	if acceptFor(rfcKey) != rfcAccept {
		t.Fatal("independent accept computation disagrees with RFC 6455 section 1.3")
	}
}

func TestUpgradeIgnoresBytesAfterHead(t *testing.T) {
	req := request("GET / HTTP/1.1", baseHeaders...)
	withFrame := append(slices.Clone(req), 0x81, 0x85, 1, 2, 3, 4, 'h', 'e', 'l', 'l', 'o')
	out1, res1 := Upgrade(nil, req, nil)
	out2, res2 := Upgrade(nil, withFrame, nil)
	if res1 != res2 || !bytes.Equal(out1, out2) || res1.Status != 101 {
		t.Fatalf(
			"%+v %+v\n%s\n%s",
			res1, res2, out1, out2,
		)
	}
}

func TestUpgradeLongHeaderLine(t *testing.T) {
	// A header line longer than gobwas/ws's 4 KiB read buffer.
	req := request("GET / HTTP/1.1", plus("Cookie: "+strings.Repeat("c", 7000))...)
	out, res := Upgrade(nil, req, nil)
	if res.Status != 101 {
		t.Fatalf(
			"%+v\n%s",
			res, out,
		)
	}
	checkResponse(t, out, res, rfcKey)
}

func TestUpgradeCheck(t *testing.T) {
	req := request("GET /room/7?token=abc HTTP/1.1", baseHeaders...)

	var gotURI string
	calls := 0
	accept := func(uri []byte) (int, string) {
		calls++
		gotURI = string(uri)
		return 0, ""
	}
	out, res := Upgrade(nil, req, accept)
	if res.Status != 101 || calls != 1 || gotURI != "/room/7?token=abc" {
		t.Fatalf(
			"accept: %+v calls=%d uri=%q\n%s",
			res, calls, gotURI, out,
		)
	}

	reject := func(uri []byte) (int, string) {
		calls++
		return http.StatusForbidden, "bad token\n"
	}
	calls = 0
	out, res = Upgrade(nil, req, reject)
	if res.Status != 403 || res.Reason != ReasonRejected || calls != 1 {
		t.Fatalf(
			"reject: %+v calls=%d\n%s",
			res, calls, out,
		)
	}
	resp := checkResponse(t, out, res, rfcKey)
	if resp.StatusCode != 403 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if !bytes.HasSuffix(out, []byte("\r\n\r\nbad token\n")) {
		t.Fatalf("body is not the check's reason:\n%s", out)
	}

	// Not called for a handshake that is invalid anyway.
	calls = 0
	_, res = Upgrade(nil, request("GET / HTTP/1.1", headersWith("Upgrade")...), reject)
	_, res2 := Upgrade(nil, request("GET / HTTP/1.1", plus("Host: b")...), reject)
	if calls != 0 || res.Reason != ReasonUpgrade || res2.Reason != ReasonHost {
		t.Fatalf(
			"check called %d times on invalid handshakes (%+v, %+v)",
			calls, res, res2,
		)
	}

	// A status outside 400..599 is a bug in the callback.
	for _, status := range []int{200, 101, 399, 600, -1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf(
						"check returning %d did not panic",
						status,
					)
				}
			}()
			Upgrade(nil, req, func([]byte) (int, string) { return status, "" })
		}()
	}
}

// TestGobwasUpgraderErrors pins down what gobwas/ws's Upgrader returns and
// writes for each failure, which gobwasFailure maps by identity. If a gobwas
// upgrade changes any of this, this test says where.
func TestGobwasUpgraderErrors(t *testing.T) {
	tests := []struct {
		name       string
		req        []byte
		wantErr    error
		wantStatus int // what gobwas/ws itself writes; 0: nothing
		wantFail   failure
	}{
		{
			name:       "HTTP/1.0",
			req:        request("GET / HTTP/1.0", baseHeaders...),
			wantErr:    ws.ErrHandshakeBadProtocol,
			wantStatus: 505,
			wantFail:   failProto,
		},
		{
			name:       "POST",
			req:        request("POST / HTTP/1.1", baseHeaders...),
			wantErr:    ws.ErrHandshakeBadMethod,
			wantStatus: 405,
			wantFail:   failMethod,
		},
		{
			name:       "missing Host",
			req:        request("GET / HTTP/1.1", headersWith("Host")...),
			wantErr:    ws.ErrHandshakeBadHost,
			wantStatus: 400,
			wantFail:   failHost,
		},
		{
			name:       "bad Upgrade",
			req:        request("GET / HTTP/1.1", headersWith("Upgrade", "Upgrade: x")...),
			wantErr:    ws.ErrHandshakeBadUpgrade,
			wantStatus: 400,
			wantFail:   failUpgrade,
		},
		{
			name:       "bad Connection",
			req:        request("GET / HTTP/1.1", headersWith("Connection", "Connection: x")...),
			wantErr:    ws.ErrHandshakeBadConnection,
			wantStatus: 400,
			wantFail:   failConnection,
		},
		{
			name:       "short key",
			req:        request("GET / HTTP/1.1", headersWith("Sec-WebSocket-Key", "Sec-WebSocket-Key: x")...),
			wantErr:    ws.ErrHandshakeBadSecKey,
			wantStatus: 400,
			wantFail:   failKey,
		},
		{
			name:       "missing version",
			req:        request("GET / HTTP/1.1", headersWith("Sec-WebSocket-Version")...),
			wantErr:    ws.ErrHandshakeBadSecVersion,
			wantStatus: 400,
			wantFail:   failVersionMissing,
		},
		{
			name:       "version 8",
			req:        request("GET / HTTP/1.1", headersWith("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8")...),
			wantErr:    ws.ErrHandshakeUpgradeRequired,
			wantStatus: 426,
			wantFail:   failVersion,
		},
		{
			name:       "header line without colon",
			req:        request("GET / HTTP/1.1", plus("x")...),
			wantErr:    ws.ErrMalformedRequest,
			wantStatus: 400,
			wantFail:   failMalformed,
		},
		{
			name:     "no request line",
			req:      []byte("garbage\r\n\r\n"),
			wantErr:  ws.ErrMalformedRequest,
			wantFail: failMalformed,
		},
		{
			name:     "head cut short",
			req:      []byte("GET / HTTP/1.1\r\nHost: a\r\n"),
			wantErr:  io.EOF,
			wantFail: failMalformed,
		},
	}
	for _, tt := range tests {
		rw := memReadWriter{in: tt.req}
		_, err := ws.Upgrader{}.Upgrade(&rw)
		if err != tt.wantErr {
			t.Errorf(
				"%s: gobwas/ws returned %v, want %v",
				tt.name, err, tt.wantErr,
			)
			continue
		}
		if got := gobwasFailure(err); got != tt.wantFail {
			t.Errorf(
				"%s: gobwasFailure = %d, want %d",
				tt.name, got, tt.wantFail,
			)
		}
		if tt.wantStatus == 0 {
			if len(rw.out) != 0 {
				t.Errorf(
					"%s: gobwas/ws wrote %q, expected nothing",
					tt.name, rw.out,
				)
			}
			continue
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(rw.out)), nil)
		if err != nil || resp.StatusCode != tt.wantStatus {
			t.Errorf(
				"%s: gobwas/ws wrote %q (%v), want status %d",
				tt.name, rw.out, err, tt.wantStatus,
			)
			continue
		}
		// What our own responses add: gobwas/ws sends neither
		// "Connection: close" nor, on 405, "Allow: GET".
		if resp.Close || resp.Header.Get("Allow") != "" {
			t.Errorf(
				"%s: gobwas/ws now writes Connection: close or Allow; revisit the override",
				tt.name,
			)
		}
	}
	if got := gobwasFailure(io.ErrClosedPipe); got != failInternal {
		t.Errorf(
			"unknown error mapped to %d",
			got,
		)
	}
}

func TestAppendHTTPError(t *testing.T) {
	out := AppendHTTPError([]byte("x"), 431, "", "request head too large\n")
	want := "xHTTP/1.1 431 Request Header Fields Too Large\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Length: 23\r\n" +
		"Connection: close\r\n" +
		"\r\n" +
		"request head too large\n"
	if string(out) != want {
		t.Fatalf(
			"got\n%q\nwant\n%q",
			out, want,
		)
	}
	for _, extra := range []string{"Retry-After: 5\r\n", "Retry-After: 5"} {
		out = AppendHTTPError(nil, 503, extra, "busy\n")
		resp, body := parseResponse(t, out)
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "5" || body != "busy\n" || !resp.Close {
			t.Fatalf(
				"extra %q:\n%q",
				extra, out,
			)
		}
	}
	out = AppendHTTPError(nil, 599, "", "")
	if resp, body := parseResponse(t, out); resp.StatusCode != 599 || body != "" {
		t.Fatalf("unknown status:\n%q", out)
	}
	for _, status := range []int{0, 101, 200, 399, 600} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf(
						"AppendHTTPError(%d) did not panic",
						status,
					)
				}
			}()
			AppendHTTPError(nil, status, "", "")
		}()
	}
}
