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

// statusCase is a request and the response Upgrade must give it.
type statusCase struct {
	name       string
	req        []byte
	wantStatus int
	wantReason string
	wantHeader map[string]string
}

// checkStatuses runs Upgrade without a check on each case, after a prefix it
// must keep, and checks the request is untouched, the Result and the response
// (checkResponse, plus the wanted header values).
func checkStatuses(t *testing.T, tests []statusCase) {
	t.Helper()
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

// TestUpgradeStatuses: the handshakes gobwas/ws decides (step 5 of Upgrade),
// what it negotiates or ignores, and the order of the steps around it.
func TestUpgradeStatuses(t *testing.T) {
	checkStatuses(t, []statusCase{
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
			name:       "subprotocol offered, server has none",
			req:        request("GET / HTTP/1.1", plus("Sec-WebSocket-Protocol: chat")...),
			wantStatus: 101,
		},
		{
			name:       "extensions offered are ignored",
			req:        request("GET / HTTP/1.1", plus("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")...),
			wantStatus: 101,
		},

		// Missing or bad headers (step 5, gobwas/ws).
		{
			name:       "missing Host",
			req:        request("GET / HTTP/1.1", headersWith("Host")...),
			wantStatus: 400,
			wantReason: ReasonHost,
		},
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

		// Precedence.
		{
			name:       "gobwas order: first bad header in request order",
			req:        request("GET / HTTP/1.1", "Connection: close", "Upgrade: h2c", "Host: a"),
			wantStatus: 400,
			wantReason: ReasonConnection,
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
	})
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

	var gotURI, gotPath, gotHost string
	calls := 0
	accept := func(r *Request) (int, string) {
		calls++
		gotURI, gotPath = string(r.URI), string(r.Path())
		h, _ := r.Header("host")
		gotHost = string(h)
		return 0, ""
	}
	out, res := Upgrade(nil, req, accept)
	if res.Status != 101 || calls != 1 || gotURI != "/room/7?token=abc" || gotPath != "/room/7" || gotHost != "example.com:8080" {
		t.Fatalf(
			"accept: %+v calls=%d uri=%q path=%q host=%q\n%s",
			res, calls, gotURI, gotPath, gotHost, out,
		)
	}

	reject := func(*Request) (int, string) {
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
			Upgrade(nil, req, func(*Request) (int, string) { return status, "" })
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
