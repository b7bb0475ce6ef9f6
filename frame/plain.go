package frame

import "bytes"

// Requests that are not WebSocket upgrades. wsgate serves a few plain HTTP requests on the
// WebSocket listener (Server-Sent Events streams): the handshake code tells them from an upgrade
// with IsUpgrade and checks them with ReadRequest instead of Upgrade.

// IsUpgrade reports whether the request head asks for a protocol upgrade: it has an Upgrade
// header field, whatever its value (Upgrade then judges it and answers its errors, so a
// WebSocket client with a bad header still learns what is wrong). A head whose request line or
// header lines do not parse counts as an upgrade too: Upgrade answers it with 400. head is a
// complete request head (HeaderEnd); zero allocations.
func IsUpgrade(head []byte) bool {
	end := HeaderEnd(head)
	if end < 0 {
		return true
	}
	eol := bytes.Index(head, []byte("\r\n"))
	h := head[eol+2 : end]
	for {
		eol := bytes.Index(h, []byte("\r\n"))
		if eol <= 0 {
			return false
		}
		line := h[:eol]
		h = h[eol+2:]
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return true // malformed: Upgrade says so
		}
		if EqualFoldASCII(line[:colon], "Upgrade") {
			return true
		}
	}
}

// ReadRequest checks a request head that is not an upgrade (see IsUpgrade) and returns the
// Request a handler reads it through, valid as long as head is. Its rules are Upgrade's steps 1
// and 4 (request line and header syntax), with any token method and HTTP/1.0 or 1.x; the
// handler decides the method, the path and the rest. On a failure it appends the error response
// to dst and returns it with a Result whose Status is 400 (ReasonMalformed) or 505 (ReasonProto); on
// success Result.Status is 0 and resp is dst. Zero allocations; any goroutine.
func ReadRequest(dst, head []byte) (r Request, resp []byte, res Result) {
	end := HeaderEnd(head)
	if end < 0 {
		resp, res = appendFailure(dst, failMalformed)
		return r, resp, res
	}
	head = head[:end]
	rl, ok := parseRequestLine(head)
	if !ok {
		resp, res = appendFailure(dst, failMalformed)
		return r, resp, res
	}
	if rl.major != 1 {
		return r, AppendHTTPError(dst, 505, "", "only HTTP/1.0 and HTTP/1.1 are served\n"), Result{Status: 505, Reason: ReasonProto}
	}
	fields := head[rl.len:]
	if _, ok := scanHeaders(fields); !ok {
		resp, res = appendFailure(dst, failMalformed)
		return r, resp, res
	}
	return Request{URI: rl.uri, Method: rl.method, Minor: rl.minor, fields: fields}, dst, Result{}
}
