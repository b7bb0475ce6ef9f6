package frame

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
)

// Labels for Result.Reason: why a handshake was refused, short and fixed so
// they can be metric label values.
const (
	ReasonMalformed  = "malformed"  // not an HTTP/1.x request head, or bad syntax: 400
	ReasonProto      = "proto"      // HTTP version other than 1.1 or higher 1.x: 505
	ReasonMethod     = "method"     // method other than GET: 405 with "Allow: GET"
	ReasonHost       = "host"       // Host missing, empty, invalid or repeated: 400
	ReasonUpgrade    = "upgrade"    // Upgrade missing or not "websocket": 400
	ReasonConnection = "connection" // Connection missing or without "upgrade": 400
	ReasonKey        = "key"        // Sec-WebSocket-Key missing, not 16 bytes in base64, or repeated: 400
	ReasonVersion    = "version"    // Sec-WebSocket-Version other than 13: 426; missing or repeated: 400
	ReasonRejected   = "rejected"   // refused by the check callback, with its status
	ReasonInternal   = "internal"   // gobwas/ws failed in a way not mapped here: 500 (a bug)
)

// failure is one way a handshake can be refused, in the order they are
// decided (see Upgrade).
type failure uint8

const (
	failNone failure = iota
	failMalformed
	failProto
	failMethod
	failHost
	failUpgrade
	failConnection
	failKey
	failVersionMissing
	failVersion
	failInternal
)

// Header lines added to some error responses. A 426 response MUST carry
// Upgrade (RFC 9110 section 15.5.22), which in turn needs "upgrade" in
// Connection (RFC 9110 section 7.8); the second Connection line combines with
// "Connection: close" into "close, Upgrade" (RFC 9110 section 5.3).
const (
	hdrAllowGet      = "Allow: GET\r\n"
	hdrVersion13     = "Sec-WebSocket-Version: 13\r\n"
	hdrUpgradeNeeded = "Connection: Upgrade\r\nUpgrade: websocket\r\n" + hdrVersion13
)

// response returns the HTTP status, Result.Reason label, extra header lines
// and body for f.
func (f failure) response() (status int, label, headers, body string) {
	switch f {
	case failMalformed:
		return http.StatusBadRequest, ReasonMalformed, "", "malformed HTTP request\n"
	case failProto:
		return http.StatusHTTPVersionNotSupported, ReasonProto, "", "WebSocket needs HTTP/1.1\n"
	case failMethod:
		return http.StatusMethodNotAllowed, ReasonMethod, hdrAllowGet, "WebSocket handshake must be a GET request\n"
	case failHost:
		return http.StatusBadRequest, ReasonHost, "", "missing or bad Host header\n"
	case failUpgrade:
		return http.StatusBadRequest, ReasonUpgrade, "", "missing or bad Upgrade header\n"
	case failConnection:
		return http.StatusBadRequest, ReasonConnection, "", "missing or bad Connection header\n"
	case failKey:
		return http.StatusBadRequest, ReasonKey, "", "missing or bad Sec-WebSocket-Key header\n"
	case failVersionMissing:
		return http.StatusBadRequest, ReasonVersion, hdrVersion13, "missing or repeated Sec-WebSocket-Version header\n"
	case failVersion:
		return http.StatusUpgradeRequired, ReasonVersion, hdrUpgradeNeeded, "unsupported Sec-WebSocket-Version\n"
	default:
		return http.StatusInternalServerError, ReasonInternal, "", "internal error\n"
	}
}

// HeaderEnd returns the length of the HTTP request head at the start of p,
// including the blank line that ends it ("\r\n\r\n", RFC 9112 section 2.1),
// or -1 if p does not hold a complete head yet. Only CRLF line endings are
// recognised: a head with bare LF never completes, and the caller's size or
// time limit ends it. Zero allocations.
func HeaderEnd(p []byte) int {
	i := bytes.Index(p, []byte("\r\n\r\n"))
	if i < 0 {
		return -1
	}
	return i + 4
}

// AppendHTTPError appends a complete HTTP/1.1 error response to dst:
//
//	HTTP/1.1 <status> <status text>
//	Content-Type: text/plain; charset=utf-8
//	Content-Length: <len(body)>
//	Connection: close
//	<extraHeaders>
//
//	<body>
//
// extraHeaders is zero or more header lines, each ending in "\r\n" (a missing
// final "\r\n" is added). The connection is to be closed after the response
// is written. status must be in 400..599, else AppendHTTPError panics (a bug
// in the caller). A 401 carries the challenge RFC 9110 (section 11.6.1)
// requires, "WWW-Authenticate: Bearer realm=\"wsgate\"" (the credential is a
// bearer token, RFC 6750), unless extraHeaders has its own.
func AppendHTTPError(dst []byte, status int, extraHeaders string, body string) []byte {
	if status < 400 || status > 599 {
		panic("BUG: frame: AppendHTTPError with status " + strconv.Itoa(status))
	}
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, http.StatusText(status)...)
	dst = append(dst, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\nConnection: close\r\n"...)
	if status == http.StatusUnauthorized && !strings.Contains(strings.ToLower(extraHeaders), "www-authenticate:") {
		dst = append(dst, "WWW-Authenticate: Bearer realm=\"wsgate\"\r\n"...)
	}
	if extraHeaders != "" {
		dst = append(dst, extraHeaders...)
		if !strings.HasSuffix(extraHeaders, "\r\n") {
			dst = append(dst, "\r\n"...)
		}
	}
	dst = append(dst, "\r\n"...)
	return append(dst, body...)
}

// requestHead is a request head that passed steps 1 to 4 of Upgrade; its
// slices alias the bytes given to parseRequest.
type requestHead struct {
	head   []byte  // the head, up to and including the blank line that ends it
	uri    []byte  // the request target, as sent
	method []byte  // the request method, as sent
	minor  int     // the minor HTTP version
	fields []byte  // the header lines after the request line, through the blank line
	strict failure // the first violation of step 6's stricter rules, or failNone
}

// parseRequest applies steps 1 to 4 of Upgrade to the request head at the
// start of p (bytes after the head are left out of r.head) and returns the
// first failure, or failNone. It also applies step 6's stricter header rules,
// whose verdict (r.strict) waits until gobwas/ws has checked the handshake
// (step 5). p is only read.
func parseRequest(p []byte) (r requestHead, f failure) {
	end := HeaderEnd(p)
	if end < 0 {
		return r, failMalformed
	}
	r.head = p[:end]
	rl, ok := parseRequestLine(r.head)
	if !ok {
		return r, failMalformed
	}
	if rl.major != 1 || rl.minor < 1 {
		return r, failProto
	}
	if string(rl.method) != http.MethodGet {
		return r, failMethod
	}
	r.uri, r.method, r.minor, r.fields = rl.uri, rl.method, rl.minor, r.head[rl.len:]
	if r.strict, ok = scanHeaders(r.fields); !ok {
		return r, failMalformed
	}
	return r, failNone
}

// requestLine is the parsed first line of a request head; the slices alias
// the request.
type requestLine struct {
	method, uri  []byte
	major, minor int
	len          int // bytes of the line including its CRLF
}

// parseRequestLine parses "method SP request-target SP HTTP-version CRLF"
// (RFC 9112 section 3) at the start of head, which ends in "\r\n\r\n".
func parseRequestLine(head []byte) (rl requestLine, ok bool) {
	eol := bytes.Index(head, []byte("\r\n"))
	if eol < 0 {
		return rl, false
	}
	line := head[:eol]
	rl.len = eol + 2

	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || !isToken(line[:sp]) {
		return rl, false
	}
	rl.method, line = line[:sp], line[sp+1:]

	sp = bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return rl, false
	}
	rl.uri, line = line[:sp], line[sp+1:]
	if !validTarget(rl.uri) {
		return rl, false
	}

	// HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 section 2.3).
	if len(line) != 8 || string(line[:5]) != "HTTP/" || !isDigit(line[5]) || line[6] != '.' || !isDigit(line[7]) {
		return rl, false
	}
	rl.major, rl.minor = int(line[5]-'0'), int(line[7]-'0')
	return rl, true
}

// validTarget reports whether uri is a request target we accept: the origin
// form "/path?query" or the absolute form with an http, https, ws or wss
// scheme and a non-empty authority (RFC 9112 section 3.2), printable ASCII
// only, no fragment (RFC 6455 section 3).
func validTarget(uri []byte) bool {
	for _, c := range uri {
		if c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	if len(uri) > 0 && uri[0] == '/' {
		return true
	}
	i := bytes.Index(uri, []byte("://"))
	if i <= 0 {
		return false
	}
	switch strings.ToLower(string(uri[:i])) {
	case "http", "https", "ws", "wss":
	default:
		return false
	}
	authority := uri[i+3:]
	return len(authority) > 0 && authority[0] != '/' && authority[0] != '?'
}

// scanHeaders checks the syntax of the header lines in head (the bytes after
// the request line, ending with the blank line) and applies the stricter
// rules of step 6 of Upgrade. ok is false on a syntax error; strict
// is the first violation of the stricter rules, or failNone.
func scanHeaders(head []byte) (strict failure, ok bool) {
	var hosts, keys, versions int
	for {
		eol := bytes.Index(head, []byte("\r\n"))
		if eol < 0 { // cannot happen for a head that ends in CRLF CRLF
			return strict, false
		}
		line := head[:eol]
		head = head[eol+2:]
		if len(line) == 0 {
			return strict, true
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return strict, false
		}
		name := line[:colon]
		value := trimOWS(line[colon+1:])
		for _, c := range value {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return strict, false
			}
		}
		var f failure
		switch {
		case bytes.EqualFold(name, []byte("Host")):
			if hosts++; hosts > 1 || !validHost(value) {
				f = failHost
			}
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Key")):
			if keys++; keys > 1 || !validKey(value) {
				f = failKey
			}
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Version")):
			if versions++; versions > 1 {
				f = failVersionMissing
			}
		}
		if strict == failNone {
			strict = f
		}
	}
}

// validHost reports whether v is host [":" port] (RFC 9110 section 7.2, RFC
// 3986 section 3.2.2): an IPv6 literal in brackets, or a non-empty reg-name or
// IPv4 address; port is digits. RFC 6455 section 4.1 needs a host, so an
// empty value is invalid.
func validHost(v []byte) bool {
	var port []byte
	if len(v) > 0 && v[0] == '[' {
		i := bytes.IndexByte(v, ']')
		if i < 2 {
			return false
		}
		for _, c := range v[1:i] {
			if !isHex(c) && c != ':' && c != '.' {
				return false
			}
		}
		if rest := v[i+1:]; len(rest) > 0 {
			if rest[0] != ':' {
				return false
			}
			port = rest[1:]
		}
	} else {
		host := v
		if i := bytes.LastIndexByte(v, ':'); i >= 0 {
			host, port = v[:i], v[i+1:]
		}
		if len(host) == 0 {
			return false
		}
		for _, c := range host {
			if !isRegName(c) {
				return false
			}
		}
	}
	for _, c := range port {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// validKey reports whether v is base64 (RFC 4648 section 4) of 16 bytes, as
// RFC 6455 section 4.1 requires of Sec-WebSocket-Key.
func validKey(v []byte) bool {
	if len(v) != 24 {
		return false
	}
	var buf [18]byte
	n, err := base64.StdEncoding.Decode(buf[:], v)
	return err == nil && n == 16
}

func trimOWS(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') }

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// isToken reports whether s is a non-empty token (RFC 9110 section 5.6.2).
func isToken(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	for _, c := range s {
		if !isAlpha(c) && !isDigit(c) && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// isRegName reports whether c may appear in a reg-name or IPv4 address:
// unreserved, sub-delims or "%" of pct-encoded (RFC 3986 section 3.2.2).
func isRegName(c byte) bool {
	return isAlpha(c) || isDigit(c) || strings.ContainsRune("-._~!$&'()*+,;=%", rune(c))
}
