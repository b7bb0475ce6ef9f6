package frame

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
)

// Result describes the outcome of a handshake.
type Result struct {
	// Status is the HTTP status written: 101 on success.
	Status int
	// Reason is empty on success, else one of the Reason* labels.
	Reason string
	// Deflate says the 101 response accepted a permessage-deflate offer (UpgradeDeflate only):
	// both directions may then compress messages, each on its own, without context takeover
	// (RFC 7692).
	Deflate bool
}

// Upgrade runs the server's opening handshake (RFC 6455 section 4.2) on the
// complete request head req (as delimited by HeaderEnd; bytes after the head
// are ignored, a req without a complete head is malformed) and appends the
// HTTP response to dst: "101 Switching Protocols" with Sec-WebSocket-Accept,
// or an error response in AppendHTTPError's format. No subprotocol and no
// extension is negotiated: Sec-WebSocket-Protocol and
// Sec-WebSocket-Extensions are ignored (UpgradeDeflate negotiates
// permessage-deflate). req is not modified and not retained.
// It allocates one small object (gobwas/ws's Sec-WebSocket-Accept value) when
// dst has room for the response, and may be called from any goroutine.
//
// check, when non-nil, is called with the request (its target and headers)
// once the handshake is otherwise valid, to route or authorise it. It returns
// 0 to accept, or an HTTP status in 400..599 and a reason that becomes the
// response body. The Request aliases req and is valid only during the call.
// Upgrade panics if the status is neither 0 nor in 400..599.
//
// The request is checked in this order; the first failure decides the
// response (Result.Reason in parentheses):
//
//  1. The request line is "method SP request-target SP HTTP/d.d" with a token
//     method, an origin-form ("/p?q") or absolute-form ("ws://h/p") target of
//     printable ASCII without "#" (RFC 6455 section 3)
//     -> else 400 (malformed).
//  2. HTTP/1.1 or a later 1.x -> else 505 (proto) (RFC 6455 section 4.1).
//  3. Method GET -> else 405 with "Allow: GET" (method).
//  4. Header lines are "token: value" without whitespace before the colon,
//     obsolete line folding or control characters, so no bare CR or LF
//     either (RFC 9112 sections 2.2 and 5) -> else 400 (malformed).
//  5. gobwas/ws's Upgrader, header by header in request order, then for
//     missing headers in the order Host, Upgrade, Connection, version, key:
//     Upgrade is "websocket" (upgrade), Connection has the "upgrade" token
//     (connection), Sec-WebSocket-Version is "13" -> else 426 with
//     "Sec-WebSocket-Version: 13" (version), Sec-WebSocket-Key has 24
//     characters (key); a missing header gives 400 with its label, a
//     missing version too (with "Sec-WebSocket-Version: 13").
//  6. Stricter rules gobwas/ws does not apply, first failure in request
//     order: one Host, with a valid host[:port] value (RFC 9112 section 3.2,
//     RFC 6455 section 4.1) (host); one Sec-WebSocket-Key that decodes to 16
//     bytes (RFC 6455 sections 4.1 and 11.3.1) (key); one
//     Sec-WebSocket-Version (section 11.3.5) (version) -> else 400.
//  7. check, if set (rejected, with its status).
func Upgrade(dst, req []byte, check func(r *Request) (status int, reason string)) ([]byte, Result) {
	return UpgradeDeflate(dst, req, check, false)
}

// UpgradeDeflate is Upgrade for a server that offers permessage-deflate (RFC 7692) when deflate
// is true. Once the request is accepted (after check), the Sec-WebSocket-Extensions headers are
// searched, in order, for an offer NegotiateDeflate accepts; the 101 response then carries
// "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover;
// client_no_context_takeover" (plus "server_max_window_bits=15" when the offer named it) and
// Result.Deflate is true. An offer that is declined, or a header that does not parse, leaves the
// connection uncompressed: it never fails the handshake. Allocations as Upgrade's.
func UpgradeDeflate(dst, req []byte, check func(r *Request) (status int, reason string), deflate bool) ([]byte, Result) {
	r, f := parseRequest(req)
	if f != failNone {
		return appendFailure(dst, f)
	}
	u := upgraders.Get().(*upgrader)
	u.r, u.check, u.rw, u.deflate = r, check, memReadWriter{in: r.head, out: dst}, deflate
	_, err := u.wu.Upgrade(&u.rw)
	out, checkStatus, checkReason, agreed := u.rw.out, u.checkStatus, u.checkReason, u.agreed
	*u = upgrader{wu: u.wu} // nothing of this request stays reachable from the pool
	upgraders.Put(u)
	if err == nil {
		return out, Result{Status: http.StatusSwitchingProtocols, Deflate: agreed}
	}
	// gobwas/ws has written its own error response (or nothing): drop it,
	// the error responses are ours.
	dst = out[:len(dst)]
	if err == errRefused {
		if r.strict != failNone {
			return appendFailure(dst, r.strict)
		}
		return AppendHTTPError(dst, checkStatus, "", checkReason), Result{Status: checkStatus, Reason: ReasonRejected}
	}
	return appendFailure(dst, gobwasFailure(err))
}

// upgrader is the state of one Upgrade call that gobwas/ws's Upgrader reaches through its hook
// and its reader/writer. Upgraders are pooled: a handshake then allocates nothing of ours (the
// hook's closure, its captured results and the in-memory connection were four objects per
// handshake), only what gobwas/ws allocates itself (the Sec-WebSocket-Accept value).
type upgrader struct {
	wu          ws.Upgrader // OnBeforeUpgrade is this upgrader's before, bound once
	rw          memReadWriter
	r           requestHead
	req         Request // what check sees; points into r's head
	check       func(r *Request) (status int, reason string)
	checkStatus int
	checkReason string
	deflate     bool // the server offers permessage-deflate
	agreed      bool // and the request's offer was accepted
}

// upgraders holds idle upgraders; any goroutine.
var upgraders = sync.Pool{New: func() any {
	u := new(upgrader)
	u.wu.OnBeforeUpgrade = u.before
	return u
}}

// before is gobwas/ws's OnBeforeUpgrade hook: it applies the stricter rules and check.
func (u *upgrader) before() (ws.HandshakeHeader, error) {
	if u.r.strict != failNone {
		return nil, errRefused
	}
	u.req = Request{URI: u.r.uri, Method: u.r.method, Minor: u.r.minor, fields: u.r.fields}
	if u.check != nil {
		u.checkStatus, u.checkReason = u.check(&u.req)
	}
	if u.checkStatus == 0 {
		return u.negotiate(), nil
	}
	if u.checkStatus < 400 || u.checkStatus > 599 {
		panic("BUG: frame: Upgrade's check returned status " + strconv.Itoa(u.checkStatus))
	}
	return nil, errRefused
}

// negotiate returns the response header accepting the request's first acceptable
// permessage-deflate offer, or nil.
func (u *upgrader) negotiate() ws.HandshakeHeader {
	if !u.deflate {
		return nil
	}
	var p wsflate.Parameters
	u.req.Headers("Sec-WebSocket-Extensions", func(v []byte) bool {
		p, u.agreed = NegotiateDeflate(v)
		return !u.agreed
	})
	if !u.agreed {
		return nil
	}
	return deflateAnswerFor(p)
}

// errRefused is returned from gobwas/ws's OnBeforeUpgrade hook to stop a
// handshake that gobwas/ws found valid.
var errRefused = errors.New("frame: handshake refused")

// gobwasFailure maps an error of ws.Upgrader.Upgrade to a failure. The errors
// are gobwas/ws's predefined values, compared by identity as gobwas/ws itself
// does when writing its responses (http.go, httpWriteResponseError).
func gobwasFailure(err error) failure {
	switch err {
	case ws.ErrHandshakeBadProtocol:
		return failProto
	case ws.ErrHandshakeBadMethod:
		return failMethod
	case ws.ErrHandshakeBadHost:
		return failHost
	case ws.ErrHandshakeBadUpgrade:
		return failUpgrade
	case ws.ErrHandshakeBadConnection:
		return failConnection
	case ws.ErrHandshakeBadSecKey:
		return failKey
	case ws.ErrHandshakeBadSecVersion:
		return failVersionMissing
	case ws.ErrHandshakeUpgradeRequired:
		return failVersion
	case ws.ErrMalformedRequest, io.EOF, io.ErrUnexpectedEOF:
		return failMalformed
	default:
		return failInternal
	}
}

// appendFailure appends the error response for f to dst.
func appendFailure(dst []byte, f failure) ([]byte, Result) {
	status, label, headers, body := f.response()
	return AppendHTTPError(dst, status, headers, body), Result{Status: status, Reason: label}
}

// memReadWriter is the in-memory connection gobwas/ws's Upgrader reads the
// request from and writes the response to.
type memReadWriter struct {
	in  []byte // unread request bytes
	out []byte // dst with the response appended
}

func (m *memReadWriter) Read(p []byte) (int, error) {
	if len(m.in) == 0 {
		return 0, io.EOF
	}
	n := copy(p, m.in)
	m.in = m.in[n:]
	return n, nil
}

func (m *memReadWriter) Write(p []byte) (int, error) {
	m.out = append(m.out, p...)
	return len(p), nil
}
