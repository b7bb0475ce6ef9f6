package frame

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// baseHeaders are the header lines of a valid handshake request, with the
// example key of RFC 6455 section 1.3.
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

// TestRequestStatuses: the handshakes the request parser decides (steps 1
// to 4 and 6 of Upgrade) and the request forms it lets through.
func TestRequestStatuses(t *testing.T) {
	checkStatuses(t, []statusCase{
		// Accepted forms of the request line and Host.
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

		// Method and HTTP version (steps 2 and 3).
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

		// Not HTTP, or bad syntax (steps 1 and 4).
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

		// Stricter rules (step 6).
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
		{
			name:       "two version headers",
			req:        request("GET / HTTP/1.1", plus("Sec-WebSocket-Version: 13")...),
			wantStatus: 400,
			wantReason: ReasonVersion,
		},

		// Precedence.
		{
			name:       "method before header syntax",
			req:        []byte("POST /x HTTP/1.1\r\nHost: a\nBad\r\n\r\n"),
			wantStatus: 405,
			wantReason: ReasonMethod,
		},
		{
			name: "strict checks in request order",
			req: request("GET / HTTP/1.1", append(
				headersWith("Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAA"),
				"Host: second")...),
			wantStatus: 400,
			wantReason: ReasonKey,
		},
	})
}

// TestParseRequest checks what parseRequest hands to the rest of Upgrade: the
// head without the bytes after it, the target as sent, and step 6's verdict
// kept apart from the failure of steps 1 to 4.
func TestParseRequest(t *testing.T) {
	head := request("GET /room/7?token=abc HTTP/1.1", baseHeaders...)
	withFrame := append(slices.Clone(head), 0x81, 0x80, 1, 2, 3, 4)
	r, f := parseRequest(withFrame)
	if f != failNone || r.strict != failNone || !bytes.Equal(r.head, head) || string(r.uri) != "/room/7?token=abc" {
		t.Fatalf(
			"valid head: failure %d, %+v",
			f, r,
		)
	}
	if &r.head[0] != &withFrame[0] {
		t.Fatal("head does not alias the input")
	}

	tests := []struct {
		name       string
		req        []byte
		wantFail   failure
		wantStrict failure
	}{
		{name: "incomplete", req: head[:len(head)-1], wantFail: failMalformed},
		{name: "bad request line", req: request("GET /a#b HTTP/1.1", baseHeaders...), wantFail: failMalformed},
		{name: "HTTP/1.0", req: request("GET / HTTP/1.0", baseHeaders...), wantFail: failProto},
		{name: "POST", req: request("POST / HTTP/1.1", baseHeaders...), wantFail: failMethod},
		{name: "header syntax", req: request("GET / HTTP/1.1", plus("NoColon")...), wantFail: failMalformed},
		{name: "two Host headers", req: request("GET / HTTP/1.1", plus("Host: b")...), wantStrict: failHost},
		{name: "bad key", req: request("GET / HTTP/1.1", headersWith("Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAA")...), wantStrict: failKey},
		{name: "two versions", req: request("GET / HTTP/1.1", plus("Sec-WebSocket-Version: 13")...), wantStrict: failVersionMissing},
		{name: "first strict violation wins", req: request("GET / HTTP/1.1", plus("Sec-WebSocket-Version: 13", "Host: b")...), wantStrict: failVersionMissing},
		{name: "missing headers are not its business", req: request("GET / HTTP/1.1")},
	}
	for _, tt := range tests {
		r, f := parseRequest(tt.req)
		if f != tt.wantFail || r.strict != tt.wantStrict {
			t.Errorf(
				"%s: failure %d strict %d, want %d and %d",
				tt.name, f, r.strict, tt.wantFail, tt.wantStrict,
			)
		}
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
	// A 401 carries a challenge (RFC 9110 section 11.6.1), once, the caller's own if it gave one.
	out = AppendHTTPError(nil, 401, "", "no token\n")
	if resp, body := parseResponse(t, out); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="wsgate"` || body != "no token\n" {
		t.Fatalf("401:\n%q", out)
	}
	out = AppendHTTPError(nil, 401, "www-authenticate: Bearer error=\"invalid_token\"\r\n", "")
	if resp, _ := parseResponse(t, out); len(resp.Header.Values("WWW-Authenticate")) != 1 || resp.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
		t.Fatalf("401 with its own challenge:\n%q", out)
	}
	for _, status := range []int{400, 403, 503} {
		if resp, _ := parseResponse(t, AppendHTTPError(nil, status, "", "")); resp.Header.Get("WWW-Authenticate") != "" {
			t.Fatalf("%d carries a challenge", status)
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
