package frame

import (
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
)

// permessage-deflate negotiation (RFC 7692 section 7.1) from the server's side. The server
// compresses without context takeover and inflates each message with a fresh window, so it
// accepts an offer only on these terms: its answer always carries server_no_context_takeover
// and client_no_context_takeover (sections 7.1.1.1 and 7.1.1.2 let a server add both even when
// the offer did not ask), and it declines an offer it cannot honour. A declined offer (or a
// Sec-WebSocket-Extensions header that does not parse) is never a handshake error: the
// connection continues without compression (section 7.1: "a server MUST decline an extension
// negotiation offer" it cannot accept; section 9.1 of RFC 6455: extensions the server does not
// accept are simply not in the response).

// Answers to an accepted offer: the second when the offer carried server_max_window_bits=15,
// which the server must repeat (section 7.1.2.1).
const (
	deflateAnswer       = "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"
	deflateAnswerBits15 = "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15\r\n"
)

// deflateMaxWindowBits is the LZ77 window of the compressor: 2^15 bytes. An offer that asks the
// server for a smaller window (server_max_window_bits below 15) cannot be honoured.
const deflateMaxWindowBits = 15

// NegotiateDeflate looks through the value of one Sec-WebSocket-Extensions header (an extension
// list, RFC 6455 section 9.1) for the first permessage-deflate offer this server can accept, in
// the client's order of preference, and returns its parameters (gobwas/ws's
// wsflate.Parameters, window bits 1 meaning client_max_window_bits without a value) and true;
// zero parameters and false when it declines them all.
//
// Every offer is parsed strictly (RFC 7692 section 7.1): a parameter that is unknown, repeated,
// given a value it must not have, or given a value out of range ("8".."15", digits only, no
// leading zero; a quoted value is unquoted first) declines that offer, and so does
// server_max_window_bits below 15. Other extensions are skipped. A syntax error in the list
// (not "token *( ; param )" separated by commas) ends the search: offers before it still count.
// value is only read; zero allocations; any goroutine.
func NegotiateDeflate(value []byte) (p wsflate.Parameters, ok bool) {
	s := extScanner{b: value}
	for {
		s.skipListSeparators()
		if s.done() {
			return wsflate.Parameters{}, false
		}
		name := s.token()
		if len(name) == 0 {
			return wsflate.Parameters{}, false
		}
		isDeflate := string(name) == wsflate.ExtensionName
		var seen uint8
		valid := true
		p = wsflate.Parameters{}
		for {
			s.ows()
			if s.done() || s.peek() == ',' {
				break
			}
			if s.peek() != ';' {
				return wsflate.Parameters{}, false
			}
			s.i++
			s.ows()
			key := s.token()
			if len(key) == 0 {
				return wsflate.Parameters{}, false
			}
			s.ows()
			var val []byte
			hasVal := false
			if !s.done() && s.peek() == '=' {
				s.i++
				s.ows()
				var vok bool
				if val, vok = s.value(); !vok {
					return wsflate.Parameters{}, false
				}
				hasVal = true
			}
			if isDeflate && valid {
				valid = deflateParam(&p, &seen, key, val, hasVal)
			}
		}
		if isDeflate && valid && acceptable(p) {
			return p, true
		}
	}
}

// Bits of NegotiateDeflate's seen set: each parameter may appear once.
const (
	seenServerNoCtx uint8 = 1 << iota
	seenClientNoCtx
	seenServerBits
	seenClientBits
)

// deflateParam records one parameter of a permessage-deflate offer in p, and reports whether
// the offer is still well formed (section 7.1).
func deflateParam(p *wsflate.Parameters, seen *uint8, key, val []byte, hasVal bool) bool {
	var bit uint8
	switch string(key) {
	case "server_no_context_takeover":
		bit = seenServerNoCtx
		p.ServerNoContextTakeover = true
		if hasVal {
			return false
		}
	case "client_no_context_takeover":
		bit = seenClientNoCtx
		p.ClientNoContextTakeover = true
		if hasVal {
			return false
		}
	case "server_max_window_bits": // a value is required (section 7.1.2.1)
		bit = seenServerBits
		n, ok := windowBits(val)
		if !hasVal || !ok {
			return false
		}
		p.ServerMaxWindowBits = n
	case "client_max_window_bits": // the value is optional (section 7.1.2.2)
		bit = seenClientBits
		p.ClientMaxWindowBits = 1
		if hasVal {
			n, ok := windowBits(val)
			if !ok {
				return false
			}
			p.ClientMaxWindowBits = n
		}
	default:
		return false
	}
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

// acceptable reports whether the server can honour a well-formed offer: any client window (the
// decompressor has the full 32 KiB window), but not a server window below its compressor's.
func acceptable(p wsflate.Parameters) bool {
	return !p.ServerMaxWindowBits.Defined() || p.ServerMaxWindowBits >= deflateMaxWindowBits
}

// windowBits parses a window-bits value: "8" to "15" (section 7.1.2.1's ABNF).
func windowBits(v []byte) (wsflate.WindowBits, bool) {
	switch {
	case len(v) == 1 && v[0] >= '8' && v[0] <= '9':
		return wsflate.WindowBits(v[0] - '0'), true
	case len(v) == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5':
		return wsflate.WindowBits(10 + v[1] - '0'), true
	}
	return 0, false
}

// The answers as gobwas/ws handshake headers, made once: returning one allocates nothing (a
// string converted to an interface at each handshake would be an allocation).
var (
	deflateAnswerHeader       ws.HandshakeHeader = ws.HandshakeHeaderString(deflateAnswer)
	deflateAnswerBits15Header ws.HandshakeHeader = ws.HandshakeHeaderString(deflateAnswerBits15)
)

// deflateAnswerFor returns the response header line accepting offer p.
func deflateAnswerFor(p wsflate.Parameters) ws.HandshakeHeader {
	if p.ServerMaxWindowBits.Defined() {
		return deflateAnswerBits15Header
	}
	return deflateAnswerHeader
}

// extScanner walks a Sec-WebSocket-Extensions value.
type extScanner struct {
	b []byte
	i int
}

func (s *extScanner) done() bool { return s.i >= len(s.b) }
func (s *extScanner) peek() byte { return s.b[s.i] }

// ows skips optional whitespace (RFC 9110 section 5.6.3).
func (s *extScanner) ows() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t') {
		s.i++
	}
}

// skipListSeparators skips whitespace and the commas of empty list elements (RFC 9110 section
// 5.6.1: a recipient accepts empty elements).
func (s *extScanner) skipListSeparators() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == ',') {
		s.i++
	}
}

// token returns the token at the scanner (empty if none).
func (s *extScanner) token() []byte {
	j := s.i
	for s.i < len(s.b) && isTokenChar(s.b[s.i]) {
		s.i++
	}
	return s.b[j:s.i]
}

// value returns a parameter value: a token, or a quoted-string's content (RFC 7692 section 7.1
// requires the unquoted content to be a token too, so a quoted-pair, which no token needs, is
// refused).
func (s *extScanner) value() ([]byte, bool) {
	if s.done() || s.peek() != '"' {
		t := s.token()
		return t, len(t) > 0
	}
	s.i++
	j := s.i
	for s.i < len(s.b) && s.b[s.i] != '"' {
		if !isTokenChar(s.b[s.i]) {
			return nil, false
		}
		s.i++
	}
	if s.done() || s.i == j {
		return nil, false
	}
	v := s.b[j:s.i]
	s.i++ // the closing quote
	return v, true
}

// isTokenChar reports whether c is a tchar (RFC 9110 section 5.6.2).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
