package frame

import (
	"encoding/binary"

	"github.com/gobwas/ws"
)

// Wire layout of the first two header bytes (RFC 6455 section 5.2):
//
//	byte 0: FIN(1) RSV1(1) RSV2(1) RSV3(1) opcode(4)
//	byte 1: MASK(1) payload len(7)
//
// A 7-bit length of 126 means a 16-bit length follows, 127 a 64-bit one,
// both in network byte order; then the 4-byte masking key if MASK is set.
const (
	bitFin   = 0x80
	maskRsv  = 0x70
	bitRsv1  = 0x40 // "Per-Message Compressed" once permessage-deflate is agreed (RFC 7692 section 6)
	rsv1     = 0x4  // RSV1 in ws.Header.Rsv (gobwas/ws's layout)
	maskOp   = 0x0f
	bitMask  = 0x80
	maskLen7 = 0x7f

	len7Max  = 125 // largest length carried in the 7-bit field
	len16Tag = 126 // 7-bit value announcing a 16-bit extended length
	len64Tag = 127 // 7-bit value announcing a 64-bit extended length

	// MaxControlPayload is the largest payload of a control frame
	// (RFC 6455 section 5.5).
	MaxControlPayload = 125
)

// ParseHeader parses the frame header at the start of p.
//
// It returns the header and its length n in bytes. n == 0 with a nil error
// means p holds only part of a header: keep the bytes and call again when more
// have arrived. Errors (only ErrBadLength) are reported once the whole header
// is present; on error h and n are zero. p is only read, never retained.
//
// h.Length is the payload length as sent; h.Mask and h.Masked are filled from
// the header, and h.Rsv holds the three RSV bits as gobwas/ws does
// (RSV1 = 0x4). No protocol rule other than the length encoding is applied:
// use CheckHeader for that.
//
// A length that is not minimally encoded (126 followed by a 16-bit value
// below 126, or 127 followed by a 64-bit value below 65536) is rejected with
// ErrBadLength. RFC 6455 section 5.2 states the rule as a MUST on the sender
// ("the minimal number of bytes MUST be used to encode the length") and does
// not order the receiver to fail; we treat it as part of the frame grammar so
// that every accepted header has exactly one encoding, and no conforming
// client is affected. A 64-bit length with its most significant bit set is
// rejected as the same section requires.
//
// Zero allocations; safe for concurrent use.
func ParseHeader(p []byte) (h ws.Header, n int, err *Error) {
	if len(p) < 2 {
		return h, 0, nil
	}
	b0, b1 := p[0], p[1]
	n = 2
	var length int64
	switch l7 := b1 & maskLen7; l7 {
	case len16Tag:
		n += 2
	case len64Tag:
		n += 8
	default:
		length = int64(l7)
	}
	masked := b1&bitMask != 0
	if masked {
		n += 4
	}
	if len(p) < n {
		return ws.Header{}, 0, nil
	}
	switch b1 & maskLen7 {
	case len16Tag:
		v := binary.BigEndian.Uint16(p[2:4])
		if v <= len7Max {
			return ws.Header{}, 0, ErrBadLength
		}
		length = int64(v)
	case len64Tag:
		v := binary.BigEndian.Uint64(p[2:10])
		if v>>63 != 0 || v <= 0xffff {
			return ws.Header{}, 0, ErrBadLength
		}
		length = int64(v)
	}
	h.Fin = b0&bitFin != 0
	h.Rsv = (b0 & maskRsv) >> 4
	h.OpCode = ws.OpCode(b0 & maskOp)
	h.Length = length
	if masked {
		h.Masked = true
		copy(h.Mask[:], p[n-4:n])
	}
	return h, n, nil
}

// CheckHeader applies the rules for a frame a server receives from a client,
// given whether a fragmented data message is in progress (fragmented). The
// rules and the order in which they are checked (the first failure wins):
//
//  1. RSV bits are zero: no extension is negotiated (section 5.2)
//     -> ErrReservedBits (CheckHeaderDeflate allows RSV1 where RFC 7692 does).
//  2. The opcode is defined (section 5.2) -> ErrReservedOpcode.
//  3. The frame is masked (section 5.1) -> ErrNotMasked.
//  4. A control frame has at most 125 bytes of payload -> ErrControlTooLong,
//     and FIN set -> ErrControlFragmented (section 5.5).
//  5. A continuation frame comes only while a message is in progress
//     -> ErrUnexpectedContinuation; a text or binary frame only while none is
//     -> ErrExpectedContinuation (section 5.4). Control frames may arrive in
//     the middle of a fragmented message.
//
// Message size limits are the caller's (ErrMessageTooBig). Zero allocations;
// safe for concurrent use.
func CheckHeader(h ws.Header, fragmented bool) *Error {
	return CheckHeaderDeflate(h, fragmented, false)
}

// CheckHeaderDeflate is CheckHeader for a connection that may have agreed on
// permessage-deflate (deflate): then RSV1, the "Per-Message Compressed" bit,
// is allowed on the first frame of a data message (text or binary opcode), and
// nowhere else: on a control or continuation frame it is ErrReservedBits, as
// RSV2, RSV3 and any RSV bit without the extension are (RFC 7692 section 6.1).
func CheckHeaderDeflate(h ws.Header, fragmented, deflate bool) *Error {
	if rsv := h.Rsv; rsv != 0 {
		if !deflate || rsv != rsv1 || (h.OpCode != ws.OpText && h.OpCode != ws.OpBinary) {
			return ErrReservedBits
		}
	}
	switch h.OpCode {
	case ws.OpContinuation, ws.OpText, ws.OpBinary, ws.OpClose, ws.OpPing, ws.OpPong:
	default:
		return ErrReservedOpcode
	}
	if !h.Masked {
		return ErrNotMasked
	}
	switch h.OpCode {
	case ws.OpClose, ws.OpPing, ws.OpPong:
		if h.Length > MaxControlPayload {
			return ErrControlTooLong
		}
		if !h.Fin {
			return ErrControlFragmented
		}
	case ws.OpContinuation:
		if !fragmented {
			return ErrUnexpectedContinuation
		}
	default: // OpText, OpBinary
		if fragmented {
			return ErrExpectedContinuation
		}
	}
	return nil
}

// Unmask XORs p in place with the masking key, starting at byte offset of the
// payload (RFC 6455 section 5.3): byte i of p is XORed with
// mask[(offset+i)%4]. Unmasking a payload in pieces is the same as unmasking
// it whole when each piece passes the count of payload bytes before it as
// offset. offset must not be negative. It is gobwas/ws's ws.Cipher (SIMD on
// amd64 and arm64). Zero allocations.
func Unmask(p []byte, mask [4]byte, offset int) {
	ws.Cipher(p, mask, offset)
}
