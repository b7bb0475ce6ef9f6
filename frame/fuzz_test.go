package frame

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// maxHeaderLen is the longest frame header: 2 fixed bytes, 8 bytes of
// extended length, 4 bytes of masking key (RFC 6455 section 5.2).
const maxHeaderLen = 14

// FuzzParse runs ParseHeader, CheckHeader and Unmask on arbitrary bytes. It
// must never panic, and it must agree with gobwas/ws's ws.ReadHeader: same
// header and same length consumed when both succeed, "need more" exactly when
// gobwas/ws runs out of bytes, and an error only for an encoding gobwas/ws
// rejects too or one that is not minimal.
func FuzzParse(f *testing.F) {
	seeds := [][]byte{
		{},
		{0x81},
		{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}, // RFC 6455 5.7 masked "Hello"
		{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'},                              // unmasked
		{0x01, 0x83, 1, 2, 3, 4, 'H', 'e', 'l'},                            // first fragment
		{0x80, 0x82, 1, 2, 3, 4, 'l', 'o'},                                 // last fragment
		{0x89, 0x85, 1, 2, 3, 4, 'H', 'e', 'l', 'l', 'o'},                  // ping
		{0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8},                               // close 1000
		{0x82, 0xfe, 0x01, 0x00, 9, 9, 9, 9},                               // 16-bit length 256
		{0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 9, 9, 9, 9},                   // 64-bit length 65536
		{0x82, 0xfe, 0x00, 0x05, 9, 9, 9, 9},                               // non-minimal 16
		{0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 5, 9, 9, 9, 9},                   // non-minimal 64
		{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9},                // MSB set
		{0xc1, 0x80, 0, 0, 0, 0},                                           // RSV1
		{0x83, 0x80, 0, 0, 0, 0},                                           // reserved opcode
		{0x09, 0x80, 0, 0, 0, 0},                                           // fragmented ping
		{0x89, 0xfe, 0x00, 0x7e, 0, 0, 0, 0},                               // ping 126
	}
	for _, s := range seeds {
		f.Add(s, false, uint8(0))
		f.Add(s, true, uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, fragmented bool, cut uint8) {
		orig := bytes.Clone(data)
		h, n, err := ParseHeader(data)
		if !bytes.Equal(data, orig) {
			t.Fatal("ParseHeader modified its input")
		}
		r := bytes.NewReader(data)
		gh, gerr := ws.ReadHeader(r)
		consumed := len(data) - r.Len()

		switch {
		case err != nil:
			if err != ErrBadLength || n != 0 || h != (ws.Header{}) {
				t.Fatalf(
					"error %v with n=%d h=%+v",
					err, n, h,
				)
			}
			// gobwas/ws rejects the MSB; it accepts non-minimal lengths.
			if gerr == nil {
				l7 := data[1] & 0x7f
				if (l7 == 126 && gh.Length > 125) || (l7 == 127 && gh.Length > 0xffff) {
					t.Fatalf(
						"ErrBadLength on a minimal length %d (7-bit field %d)",
						gh.Length, l7,
					)
				}
			} else if gerr != ws.ErrHeaderLengthMSB {
				t.Fatalf(
					"ErrBadLength, gobwas/ws: %v",
					gerr,
				)
			}
			return
		case n == 0:
			if gerr != io.EOF && gerr != io.ErrUnexpectedEOF {
				t.Fatalf(
					"need-more on %x, gobwas/ws: %+v %v",
					data, gh, gerr,
				)
			}
			if len(data) >= maxHeaderLen {
				t.Fatalf(
					"need-more with %d bytes",
					len(data),
				)
			}
			return
		}
		if gerr != nil || gh != h || consumed != n {
			t.Fatalf(
				"ours %+v n=%d; gobwas/ws %+v consumed=%d err=%v",
				h, n, gh, consumed, gerr,
			)
		}
		if n < 2 || n > maxHeaderLen {
			t.Fatalf("header length %d", n)
		}
		for k := 0; k < n; k++ {
			if _, m, e := ParseHeader(data[:k]); m != 0 || e != nil {
				t.Fatalf(
					"prefix %d of a %d-byte header: n=%d err=%v",
					k, n, m, e,
				)
			}
		}

		cerr := CheckHeader(h, fragmented)
		state := ws.StateServerSide
		if fragmented {
			state = state.Set(ws.StateFragmented)
		}
		if gcerr := ws.CheckHeader(h, state); (cerr == nil) != (gcerr == nil) {
			t.Fatalf(
				"CheckHeader(%+v, %v) = %v, gobwas/ws %v",
				h, fragmented, cerr, gcerr,
			)
		}

		// Unmask what is there of the payload, whole and in two pieces.
		payload := data[n:]
		if int64(len(payload)) > h.Length {
			payload = payload[:h.Length]
		}
		whole := bytes.Clone(payload)
		Unmask(whole, h.Mask, 0)
		split := bytes.Clone(payload)
		c := int(cut) % (len(split) + 1)
		Unmask(split[:c], h.Mask, 0)
		Unmask(split[c:], h.Mask, c)
		if !bytes.Equal(whole, split) {
			t.Fatal("split unmask differs from whole unmask")
		}
		for i := range whole {
			if whole[i] != payload[i]^h.Mask[i%4] {
				t.Fatalf("byte %d unmasked wrong", i)
			}
		}
		if h.OpCode == ws.OpClose && cerr == nil {
			code, reason, perr := ParseClose(whole)
			if perr == nil && len(whole) >= 2 && (!ValidCloseCode(code) || !utf8.Valid(reason)) {
				t.Fatalf(
					"ParseClose accepted %x",
					whole,
				)
			}
		}
	})
}

// handshakeStatuses are the statuses Upgrade documents, plus 403 from the
// check used by FuzzHandshake.
var handshakeStatuses = map[int][]string{
	101: {""},
	400: {ReasonMalformed, ReasonHost, ReasonUpgrade, ReasonConnection, ReasonKey, ReasonVersion},
	403: {ReasonRejected},
	405: {ReasonMethod},
	426: {ReasonVersion},
	505: {ReasonProto},
}

// FuzzHandshake runs Upgrade on arbitrary bytes. It must never panic, never
// modify the request, write exactly one well-formed HTTP response whose
// status is one of the documented ones and matches the Result, and on 101
// answer with the accept value for the key net/http finds in the request.
func FuzzHandshake(f *testing.F) {
	f.Add(request("GET /chat HTTP/1.1", baseHeaders...))
	f.Add(request("GET /deny HTTP/1.1", baseHeaders...))
	f.Add(request("GET /a?b HTTP/1.1", plus("Sec-WebSocket-Protocol: chat, x")...))
	f.Add(request("GET ws://h/p HTTP/1.1", baseHeaders...))
	f.Add(request("POST / HTTP/1.1", baseHeaders...))
	f.Add(request("GET / HTTP/1.0", baseHeaders...))
	f.Add(request("GET / HTTP/1.1", headersWith("Host")...))
	f.Add(request("GET / HTTP/1.1", headersWith("Host", "Host: [::1]:80")...))
	f.Add(request("GET / HTTP/1.1", headersWith("Upgrade", "Upgrade: h2c")...))
	f.Add(request("GET / HTTP/1.1", headersWith("Connection")...))
	f.Add(request("GET / HTTP/1.1", headersWith("Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAA")...))
	f.Add(request("GET / HTTP/1.1", headersWith("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8")...))
	f.Add(request("GET / HTTP/1.1", headersWith("Sec-WebSocket-Version")...))
	f.Add(request("GET / HTTP/1.1", plus("X: a\x00")...))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\nUpgrade: websocket\r\n\r\n"))
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	f.Add([]byte("\x16\x03\x01\x00\x05hello\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add([]byte{})
	check := func(r *Request) (int, string) {
		if bytes.Contains(r.URI, []byte("deny")) {
			return http.StatusForbidden, "denied\n"
		}
		return 0, ""
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		out, res := Upgrade(nil, data, check)
		if !bytes.Equal(data, orig) {
			t.Fatal("Upgrade modified the request")
		}
		reasons, ok := handshakeStatuses[res.Status]
		if !ok || !contains(reasons, res.Reason) {
			t.Fatalf(
				"undocumented status %d reason %q for %q",
				res.Status, res.Reason, data,
			)
		}
		br := bufio.NewReader(bytes.NewReader(out))
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != res.Status {
			t.Fatalf(
				"response %q: %v",
				out, err,
			)
		}
		if res.Status != http.StatusSwitchingProtocols {
			body, err := io.ReadAll(resp.Body)
			if err != nil || resp.Header.Get("Content-Length") != strconv.Itoa(len(body)) || !resp.Close {
				t.Fatalf(
					"error response %q",
					out,
				)
			}
			if _, err := br.Peek(1); err != io.EOF {
				t.Fatalf(
					"bytes after the response %q",
					out,
				)
			}
			return
		}
		if !strings.HasSuffix(string(out), "\r\n\r\n") {
			t.Fatalf(
				"101 response not terminated: %q",
				out,
			)
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			t.Fatalf(
				"accepted a request net/http cannot parse (%v): %q",
				err, data,
			)
		}
		keys := req.Header.Values("Sec-WebSocket-Key")
		if len(keys) != 1 || resp.Header.Get("Sec-WebSocket-Accept") != acceptFor(keys[0]) {
			t.Fatalf(
				"accept %q for keys %q",
				resp.Header.Get("Sec-WebSocket-Accept"), keys,
			)
		}
		if req.Method != http.MethodGet || !req.ProtoAtLeast(1, 1) {
			t.Fatalf(
				"accepted %s %s",
				req.Method, req.Proto,
			)
		}
		if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "" {
			t.Fatalf(
				"negotiated %q",
				p,
			)
		}
	})
}

// FuzzParseRequest runs the request parser on arbitrary bytes. It must never
// panic or modify its input, must fail only with the failures of steps 1 to 4
// of Upgrade and report only step 6's, and a head it passes with no stricter
// rule broken must be a GET of HTTP/1.1 or later that net/http parses to the
// same target.
func FuzzParseRequest(f *testing.F) {
	f.Add(request("GET /chat?x=1 HTTP/1.1", baseHeaders...))
	f.Add(request("GET ws://h:1/p HTTP/1.2", plus("X: a\tb")...))
	f.Add(request("GET / HTTP/1.1", plus("Host: b", "Sec-WebSocket-Version: 13")...))
	f.Add(request("GET / HTTP/1.1", headersWith("Host", "Host: [::1]:80")...))
	f.Add(request("POST / HTTP/1.0", "a : b"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\nB: c\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n\x81\x80"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		r, fail := parseRequest(data)
		if !bytes.Equal(data, orig) {
			t.Fatal("parseRequest modified its input")
		}
		switch fail {
		case failNone, failMalformed, failProto, failMethod:
		default:
			t.Fatalf("failure %d for %q", fail, data)
		}
		switch r.strict {
		case failNone, failHost, failKey, failVersionMissing:
		default:
			t.Fatalf("strict failure %d for %q", r.strict, data)
		}
		if fail != failNone {
			return
		}
		if HeaderEnd(data) != len(r.head) || !bytes.HasPrefix(data, r.head) {
			t.Fatalf("head %q of %q", r.head, data)
		}
		if r.strict != failNone {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(r.head)))
		if err != nil {
			t.Fatalf(
				"passed a head net/http cannot parse (%v): %q",
				err, r.head,
			)
		}
		if req.Method != http.MethodGet || !req.ProtoAtLeast(1, 1) || req.RequestURI != string(r.uri) {
			t.Fatalf(
				"passed %s %q %s as target %q",
				req.Method, req.RequestURI, req.Proto, r.uri,
			)
		}
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// FuzzUTF8 compares the incremental validator, fed in three pieces, with
// unicode/utf8, and checks it fails exactly at the first byte that makes the
// input invalid.
func FuzzUTF8(f *testing.F) {
	for _, s := range utf8Edges {
		f.Add([]byte(s), uint8(1), uint8(2))
	}
	f.Fuzz(func(t *testing.T, data []byte, a, b uint8) {
		i := int(a) % (len(data) + 1)
		j := i + int(b)%(len(data)-i+1)
		ok, done := feed(data[:i], data[i:j], data[j:])
		if (ok && done) != utf8.Valid(data) {
			t.Fatalf(
				"%x split %d,%d: ok=%v done=%v, utf8.Valid=%v",
				data, i, j, ok, done, utf8.Valid(data),
			)
		}
		if len(data) <= 64 {
			checkFailsFast(t, data)
		}
	})
}

// FuzzParseClose checks ParseClose against the rules it documents.
func FuzzParseClose(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x03})
	f.Add([]byte{0x03, 0xe8})
	f.Add([]byte{0x03, 0xe8, 'o', 'k'})
	f.Add([]byte{0x03, 0xed})
	f.Add([]byte{0x03, 0xe8, 0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		code, reason, err := ParseClose(p)
		var want *Error
		switch {
		case len(p) == 0:
		case len(p) == 1:
			want = ErrCloseLength
		case len(p) > 125:
			want = ErrControlTooLong
		case !ValidCloseCode(ws.StatusCode(binary.BigEndian.Uint16(p))):
			want = ErrCloseCode
		case !utf8.Valid(p[2:]):
			want = ErrCloseReasonUTF8
		}
		if err != want {
			t.Fatalf(
				"ParseClose(%x) error %v, want %v",
				p, err, want,
			)
		}
		switch {
		case err != nil:
			if code != 0 || reason != nil {
				t.Fatal("values returned with an error")
			}
		case len(p) == 0:
			if code != ws.StatusNoStatusRcvd || reason != nil {
				t.Fatalf("empty payload gave %d %q", code, reason)
			}
		default:
			if int(code) != int(binary.BigEndian.Uint16(p)) || !bytes.Equal(reason, p[2:]) {
				t.Fatalf("ParseClose(%x) = %d %q", p, code, reason)
			}
			// What we parse, we can send back unchanged.
			frame := AppendClose(nil, code, string(reason))
			if !bytes.Equal(frame[2:], p) {
				t.Fatalf("AppendClose(%d, %q) = %x", code, reason, frame)
			}
		}
	})
}
