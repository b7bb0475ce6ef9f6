package frame

import "unicode/utf8"

// UTF8 validates a text message (RFC 6455 sections 5.6 and 8.1) that arrives
// in pieces: fragments, or the parts of one frame's payload split across
// reads. The zero value is ready and expects the first byte of a message.
//
// Validity is exactly RFC 3629's, as unicode/utf8 implements it: overlong
// forms, surrogates (U+D800..U+DFFF) and code points above U+10FFFF are
// invalid. Write fails as soon as the bytes seen so far cannot be the start of
// any valid UTF-8 text, so a peer sending garbage is failed on the first bad
// byte (Autobahn cases 6.x "fail fast") while a code point split across
// pieces is fine.
//
// A UTF8 is owned by one goroutine (the connection's loop in wsgate); it holds
// no pointers and is one byte long, so it can live inside the connection
// state at no cost.
type UTF8 struct {
	// state is a DFA state: utf8Accept between code points, one of the
	// utf8Need* states in the middle of one, utf8Reject after an error.
	state uint8
}

// DFA states of UTF8. In a utf8Need* state the next byte must fall within
// [utf8Lo[s], utf8Hi[s]] and moves the DFA to utf8Next[s]. The byte ranges are
// those of the table "Well-Formed UTF-8 Byte Sequences" (Unicode, chapter 3,
// table 3-7), which is RFC 3629 section 4's grammar.
const (
	utf8Accept  = iota // between code points
	utf8Need1          // after C2..DF (or inside a longer one): 1 more byte, 80..BF
	utf8Need2          // after E1..EC, EE..EF: 2 more bytes, next 80..BF
	utf8Need2E0        // after E0: 2 more bytes, next A0..BF (no overlongs)
	utf8Need2ED        // after ED: 2 more bytes, next 80..9F (no surrogates)
	utf8Need3F0        // after F0: 3 more bytes, next 90..BF (no overlongs)
	utf8Need3          // after F1..F3: 3 more bytes, next 80..BF
	utf8Need3F4        // after F4: 3 more bytes, next 80..8F (<= U+10FFFF)
	utf8Reject         // invalid; sticky until Reset
)

// The transition tables, indexed by state; read-only.
var (
	utf8Lo   = [utf8Reject]byte{utf8Need1: 0x80, utf8Need2: 0x80, utf8Need2E0: 0xa0, utf8Need2ED: 0x80, utf8Need3F0: 0x90, utf8Need3: 0x80, utf8Need3F4: 0x80}
	utf8Hi   = [utf8Reject]byte{utf8Need1: 0xbf, utf8Need2: 0xbf, utf8Need2E0: 0xbf, utf8Need2ED: 0x9f, utf8Need3F0: 0xbf, utf8Need3: 0xbf, utf8Need3F4: 0x8f}
	utf8Next = [utf8Reject]uint8{utf8Need1: utf8Accept, utf8Need2: utf8Need1, utf8Need2E0: utf8Need1, utf8Need2ED: utf8Need1, utf8Need3F0: utf8Need2, utf8Need3: utf8Need2, utf8Need3F4: utf8Need2}
)

// utf8Lead returns the DFA state after lead byte b and the total length of the
// sequence b starts (1 for ASCII and for bytes that cannot start one).
func utf8Lead(b byte) (state uint8, size int) {
	switch {
	case b < 0x80:
		return utf8Accept, 1
	case b < 0xc2: // continuation bytes, and C0/C1 (always overlong)
		return utf8Reject, 1
	case b < 0xe0:
		return utf8Need1, 2
	case b == 0xe0:
		return utf8Need2E0, 3
	case b == 0xed:
		return utf8Need2ED, 3
	case b < 0xf0:
		return utf8Need2, 3
	case b == 0xf0:
		return utf8Need3F0, 4
	case b < 0xf4:
		return utf8Need3, 4
	case b == 0xf4:
		return utf8Need3F4, 4
	default: // F5..FF never appear in UTF-8
		return utf8Reject, 1
	}
}

// Write feeds the next bytes of the message. It returns false as soon as the
// bytes written since the last Reset cannot be a prefix of valid UTF-8, and
// keeps returning false until Reset. p is only read. Zero allocations.
//
// Bytes between code points go through unicode/utf8.Valid, which is fast on
// ASCII; only the at most 3 bytes of a code point cut by the end of p (and the
// bytes completing it in the next Write) go through the DFA.
func (s *UTF8) Write(p []byte) bool {
	st := s.state
	if st == utf8Reject {
		return false
	}
	// Complete a code point left open by the previous Write.
	for st != utf8Accept {
		if len(p) == 0 {
			s.state = st
			return true
		}
		if b := p[0]; b < utf8Lo[st] || b > utf8Hi[st] {
			s.state = utf8Reject
			return false
		}
		st = utf8Next[st]
		p = p[1:]
	}
	// p now starts on a code point boundary. Split off a code point cut by
	// the end of p: it starts at a lead byte within the last 3 bytes whose
	// sequence is longer than what is left.
	cut := len(p)
	for i := len(p) - 1; i >= 0 && i >= len(p)-3; i-- {
		if utf8.RuneStart(p[i]) {
			if _, size := utf8Lead(p[i]); size > len(p)-i {
				cut = i
			}
			break
		}
	}
	if !utf8.Valid(p[:cut]) {
		s.state = utf8Reject
		return false
	}
	for _, b := range p[cut:] {
		if st == utf8Accept {
			st, _ = utf8Lead(b)
		} else if b >= utf8Lo[st] && b <= utf8Hi[st] {
			st = utf8Next[st]
		} else {
			st = utf8Reject
		}
		if st == utf8Reject {
			s.state = utf8Reject
			return false
		}
	}
	s.state = st
	return true
}

// Done reports whether the bytes written since the last Reset are valid UTF-8
// that ends on a code point boundary: call it when the final fragment of a
// text message has been written. An empty message is valid.
func (s UTF8) Done() bool { return s.state == utf8Accept }

// Reset prepares s for a new message.
func (s *UTF8) Reset() { s.state = utf8Accept }
