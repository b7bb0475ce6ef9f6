package main

import (
	"encoding/binary"

	"github.com/gobwas/ws"
)

// parseHeader parses the frame header at the start of b in place (RFC 6455,
// section 5.2) into gobwas/ws's Header. It returns n == 0 and no error when b
// holds less than the whole header. It checks only what the header's
// encoding itself forbids (the most significant bit of a 64-bit length);
// ws.CheckHeader judges the header against the connection's state.
//
// It reads b only during the call and never allocates.
func parseHeader(b []byte) (h ws.Header, n int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] >> 4) & 0x07
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	n = 2
	switch l := b[1] & 0x7f; l {
	case 126:
		if len(b) < n+2 {
			return ws.Header{}, 0, nil
		}
		h.Length = int64(binary.BigEndian.Uint16(b[n:]))
		n += 2
	case 127:
		if len(b) < n+8 {
			return ws.Header{}, 0, nil
		}
		u := binary.BigEndian.Uint64(b[n:])
		if u>>63 != 0 {
			return ws.Header{}, 0, ws.ErrHeaderLengthMSB
		}
		h.Length = int64(u)
		n += 8
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		if len(b) < n+4 {
			return ws.Header{}, 0, nil
		}
		copy(h.Mask[:], b[n:n+4])
		n += 4
	}
	return h, n, nil
}

// serverHeaderSize is the size of an unmasked server frame header for a
// payload of n bytes (RFC 6455, section 5.2).
func serverHeaderSize(n int) int {
	return ws.HeaderSize(ws.Header{Length: int64(n)})
}

// putServerHeader writes a final, unmasked server frame header for a payload
// of n bytes and opcode op into the serverHeaderSize(n) bytes of dst that end
// at end, and returns where the header starts. The client's own header
// (always 4 mask bytes longer than the server's for the same length) or the
// space reserved in front of a reassembled message is what makes room for
// it, so a frame is echoed without copying its payload.
func putServerHeader(dst []byte, end int, op ws.OpCode, n int) int {
	hs := serverHeaderSize(n)
	start := end - hs
	b := dst[start:end]
	b[0] = 0x80 | byte(op)
	switch hs {
	case 2:
		b[1] = byte(n)
	case 4:
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
	default:
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
	}
	return start
}
