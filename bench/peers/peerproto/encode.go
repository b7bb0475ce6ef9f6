package peerproto

import (
	"encoding/binary"
	"strconv"
	"unicode/utf8"
)

// Opcodes of RFC 6455, section 5.2, that the peers send in raw frames.
const (
	OpcodeText  byte = 0x1
	OpcodeClose byte = 0x8
	OpcodePing  byte = 0x9
	OpcodePong  byte = 0xA
)

// MaxFrameHeaderSize is the largest unmasked server frame header: 2 bytes
// plus an 8-byte extended payload length (RFC 6455, section 5.2).
const MaxFrameHeaderSize = 10

// AppendSubscribed appends {"op":"subscribed","channel":C,"seq":N}.
func AppendSubscribed(dst []byte, channel string, seq uint64) []byte {
	dst = append(dst, `{"op":"subscribed","channel":`...)
	dst = appendString(dst, channel)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	return append(dst, '}')
}

// AppendUnsubscribed appends {"op":"unsubscribed","channel":C}.
func AppendUnsubscribed(dst []byte, channel string) []byte {
	dst = append(dst, `{"op":"unsubscribed","channel":`...)
	dst = appendString(dst, channel)
	return append(dst, '}')
}

// AppendMessage appends {"op":"message","channel":C,"seq":N,"id":I,"data":D}.
// "id" is omitted when id is empty. data must be one valid JSON value (as
// Request.Data is); it is copied verbatim.
func AppendMessage(dst []byte, channel string, seq uint64, id string, data []byte) []byte {
	dst = append(dst, `{"op":"message","channel":`...)
	dst = appendString(dst, channel)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	if id != "" {
		dst = append(dst, `,"id":`...)
		dst = appendString(dst, id)
	}
	dst = append(dst, `,"data":`...)
	dst = append(dst, data...)
	return append(dst, '}')
}

// AppendPublished appends {"op":"published","channel":C,"seq":N,"id":I}, the
// acknowledgement of a client publish. "id" is omitted when id is empty.
func AppendPublished(dst []byte, channel string, seq uint64, id string) []byte {
	dst = append(dst, `{"op":"published","channel":`...)
	dst = appendString(dst, channel)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	if id != "" {
		dst = append(dst, `,"id":`...)
		dst = appendString(dst, id)
	}
	return append(dst, '}')
}

// AppendDuplicate appends {"op":"duplicate","channel":C,"id":I}: the publish
// id was already accepted on that channel.
func AppendDuplicate(dst []byte, channel, id string) []byte {
	dst = append(dst, `{"op":"duplicate","channel":`...)
	dst = appendString(dst, channel)
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, id)
	return append(dst, '}')
}

// AppendError appends {"op":"error","code":N,"reason":R}.
func AppendError(dst []byte, code int, reason string) []byte {
	dst = append(dst, `{"op":"error","code":`...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, `,"reason":`...)
	dst = appendString(dst, reason)
	return append(dst, '}')
}

// AppendFrameHeader appends the header of a final, unmasked server frame with
// the given opcode and payload length (RFC 6455, section 5.2: FIN=1, RSV=0,
// MASK=0, 7-bit, 16-bit or 64-bit length in network byte order).
func AppendFrameHeader(dst []byte, opcode byte, n int) []byte {
	b0 := 0x80 | opcode&0x0f
	switch {
	case n < 126:
		return append(dst, b0, byte(n))
	case n <= 0xffff:
		dst = append(dst, b0, 126)
		return binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, b0, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
}

// AppendFrame appends a complete final, unmasked server frame carrying
// payload. Servers must not mask frames (RFC 6455, section 5.1).
func AppendFrame(dst []byte, opcode byte, payload []byte) []byte {
	dst = AppendFrameHeader(dst, opcode, len(payload))
	return append(dst, payload...)
}

// appendString appends s as a JSON string (RFC 8259, section 7): quote,
// reverse solidus and control characters are escaped, everything else is
// copied. Invalid UTF-8 becomes U+FFFD so the output is always valid JSON
// text inside a WebSocket text frame (RFC 6455, section 5.6).
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, "\ufffd"...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0x0f])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
