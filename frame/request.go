package frame

import (
	"bytes"
	"net/url"
)

// Request is the handshake's view of a request head that passed Upgrade's syntax checks (steps
// 1 to 4). It is what a check sees to route or authorise a connection: the target, its query
// parameters and any header. Every slice it returns aliases the request head and is valid only
// during the call the Request is passed to; copy what must outlive it. A Request is read by the
// goroutine that runs the handshake only.
type Request struct {
	// URI is the request target as sent (origin form "/p?q" or absolute form "ws://h/p?q").
	URI []byte
	// Method is the request method as sent ("GET" for every WebSocket handshake).
	Method []byte
	// Minor is the minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0 (only a request that is
	// not an upgrade, ReadRequest's, may be HTTP/1.0).
	Minor int
	// fields are the header lines after the request line, through the blank line that ends the
	// head.
	fields []byte
}

// Path returns the path of the target: the origin form up to "?", or the path part of an
// absolute-form target ("/" when it has none). It is not percent-decoded.
func (r *Request) Path() []byte {
	u := r.URI
	if len(u) > 0 && u[0] != '/' { // absolute form: skip "scheme://authority"
		i := bytes.Index(u, []byte("://"))
		if i < 0 {
			return nil
		}
		u = u[i+3:]
		j := bytes.IndexAny(u, "/?")
		if j < 0 || u[j] == '?' {
			return []byte("/")
		}
		u = u[j:]
	}
	if q := bytes.IndexByte(u, '?'); q >= 0 {
		u = u[:q]
	}
	return u
}

// RawQuery returns the target's query without the "?" (nil when there is none).
func (r *Request) RawQuery() []byte {
	q := bytes.IndexByte(r.URI, '?')
	if q < 0 {
		return nil
	}
	return r.URI[q+1:]
}

// Query returns the target's query parameters, percent-decoded (net/url's rules). It allocates:
// call it on paths that need parameters, not on every handshake. A malformed query is an error.
func (r *Request) Query() (url.Values, error) {
	return url.ParseQuery(string(r.RawQuery()))
}

// Header returns the value of the first header field named name (compared ASCII
// case-insensitively, RFC 9110 section 5.1), with the optional whitespace around it removed, and
// whether the field is present. Use Headers for fields that may repeat.
func (r *Request) Header(name string) (value []byte, ok bool) {
	r.Headers(name, func(v []byte) bool {
		value, ok = v, true
		return false
	})
	return value, ok
}

// Headers calls fn with the value of every header field named name, in request order, until fn
// returns false.
func (r *Request) Headers(name string, fn func(value []byte) bool) {
	h := r.fields
	for {
		eol := bytes.Index(h, []byte("\r\n"))
		if eol <= 0 { // the blank line, or the end
			return
		}
		line := h[:eol]
		h = h[eol+2:]
		colon := bytes.IndexByte(line, ':')
		if colon != len(name) || !EqualFoldASCII(line[:colon], name) {
			continue
		}
		if !fn(trimOWS(line[colon+1:])) {
			return
		}
	}
}

// EqualFoldASCII reports whether b equals s ignoring ASCII case (for tokens such as header names
// and auth schemes), without allocating. Any goroutine.
func EqualFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
