package bench

import (
	"errors"
)

// This file holds a minimal, allocation-free reader for the flat JSON objects
// of the pub/sub protocol (docs/protocol.md): the driver reads hundreds of
// thousands of them per second on cores it shares with the server under test,
// so encoding/json's reflection and allocations would distort the result.
// It validates structure (RFC 8259 grammar for objects, arrays, strings,
// literals and numbers) but does not decode string escapes: keys and values
// are returned raw, which is all the protocol's ASCII field names need.

var errJSON = errors.New("malformed JSON")

// maxJSONDepth bounds nesting so hostile input cannot recurse deeply.
const maxJSONDepth = 64

// objScanner walks the members of one JSON object.
type objScanner struct {
	b   []byte
	i   int
	err error
	n   int // members returned so far
}

// newObjScanner positions a scanner after the opening brace of the object in b.
func newObjScanner(b []byte) objScanner {
	s := objScanner{b: b}
	s.ws()
	if s.i >= len(b) || b[s.i] != '{' {
		s.err = errJSON
		return s
	}
	s.i++
	return s
}

// next returns the next member's raw key (without quotes) and raw value.
// ok is false at the end of the object or on error (see s.err). After the
// last member it checks that only whitespace follows the object.
func (s *objScanner) next() (key, val []byte, ok bool) {
	if s.err != nil {
		return nil, nil, false
	}
	s.ws()
	if s.i >= len(s.b) {
		s.err = errJSON
		return nil, nil, false
	}
	if s.b[s.i] == '}' {
		s.i++
		s.ws()
		if s.i != len(s.b) {
			s.err = errJSON
		}
		s.b = s.b[:0]
		s.i = 0
		return nil, nil, false
	}
	if s.n > 0 {
		if s.b[s.i] != ',' {
			s.err = errJSON
			return nil, nil, false
		}
		s.i++
		s.ws()
	}
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		s.err = errJSON
		return nil, nil, false
	}
	ks := s.i
	end, err := skipString(s.b, s.i)
	if err != nil {
		s.err = err
		return nil, nil, false
	}
	key = s.b[ks+1 : end-1]
	s.i = end
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		s.err = errJSON
		return nil, nil, false
	}
	s.i++
	s.ws()
	vs := s.i
	end, err = skipValue(s.b, s.i, 0)
	if err != nil {
		s.err = err
		return nil, nil, false
	}
	s.i = end
	s.n++
	return key, s.b[vs:end], true
}

func (s *objScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return 0, errJSON
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{' || c == '[':
		if depth >= maxJSONDepth {
			return 0, errJSON
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, nil
		}
		for {
			var err error
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return 0, errJSON
				}
				if i, err = skipString(b, i); err != nil {
					return 0, err
				}
				i = skipWS(b, i)
				if i >= len(b) || b[i] != ':' {
					return 0, errJSON
				}
				i = skipWS(b, i+1)
			}
			if i, err = skipValue(b, i, depth+1); err != nil {
				return 0, err
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return 0, errJSON
			}
			if b[i] == closer {
				return i + 1, nil
			}
			if b[i] != ',' {
				return 0, errJSON
			}
			i = skipWS(b, i+1)
		}
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	case c == '-' || ('0' <= c && c <= '9'):
		return skipNumber(b, i)
	}
	return 0, errJSON
}

func skipLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, errJSON
	}
	return i + len(lit), nil
}

// skipString returns the index just past the string whose quote is at b[i].
func skipString(b []byte, i int) (int, error) {
	i++
	for i < len(b) {
		switch c := b[i]; {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 >= len(b) {
				return 0, errJSON
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return 0, errJSON
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return 0, errJSON
					}
				}
				i += 6
			default:
				return 0, errJSON
			}
		case c < 0x20:
			return 0, errJSON
		default:
			i++
		}
	}
	return 0, errJSON
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// skipNumber returns the index just past the number starting at b[i]
// (RFC 8259 section 6 grammar).
func skipNumber(b []byte, i int) (int, error) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		s := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i - s
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if digits() == 0 {
		return 0, errJSON
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return 0, errJSON
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0, errJSON
		}
	}
	return i, nil
}

// jsonInt parses a raw JSON value that must be an integer fitting in int64.
func jsonInt(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	neg := v[0] == '-'
	if neg {
		v = v[1:]
	}
	if len(v) == 0 || len(v) > 19 || (len(v) > 1 && v[0] == '0') {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if n > 1<<63-1 {
		return 0, false
	}
	if neg {
		return -int64(n), true
	}
	return int64(n), true
}

// jsonStr strips the quotes of a raw JSON string value. Escapes stay raw.
func jsonStr(v []byte) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return nil, false
	}
	return v[1 : len(v)-1], true
}

// serverMsg is one decoded server-to-client pub/sub message. Its slices point
// into the buffer given to parseServerMsg and share its lifetime.
type serverMsg struct {
	op      []byte
	channel []byte
	id      []byte
	data    []byte // raw JSON value
	seq     int64
	hasSeq  bool
	code    int64
	reason  []byte
	stamp   int64 // "t" member of data when data is an object, else 0
	hasTime bool
}

// parseServerMsg decodes the fields of the protocol subset from one text
// message: {"op":..., "channel":..., "seq":N, "id":..., "data":..., "code":N,
// "reason":...}. Unknown members are skipped; member order does not matter.
func parseServerMsg(b []byte, m *serverMsg) error {
	*m = serverMsg{}
	s := newObjScanner(b)
	for {
		k, v, ok := s.next()
		if !ok {
			break
		}
		switch string(k) {
		case "op":
			m.op, ok = jsonStr(v)
		case "channel":
			m.channel, ok = jsonStr(v)
		case "id":
			m.id, ok = jsonStr(v)
		case "reason":
			m.reason, ok = jsonStr(v)
		case "seq":
			m.seq, ok = jsonInt(v)
			m.hasSeq = ok
		case "code":
			m.code, ok = jsonInt(v)
		case "data":
			m.data = v
			if len(v) > 0 && v[0] == '{' {
				m.stamp, m.hasTime = dataStamp(v)
			}
		}
		if !ok {
			return errJSON
		}
	}
	if s.err != nil {
		return s.err
	}
	if m.op == nil {
		return errJSON
	}
	return nil
}

// dataStamp returns the integer "t" member of a data object, the publish
// time the driver's publisher embeds (Unix nanoseconds).
func dataStamp(v []byte) (int64, bool) {
	s := newObjScanner(v)
	for {
		k, val, ok := s.next()
		if !ok {
			return 0, false
		}
		if string(k) == "t" {
			return jsonInt(val)
		}
	}
}
