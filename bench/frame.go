package bench

import (
	"encoding/binary"
	"errors"

	"github.com/gobwas/ws"
)

// Frame header bits, RFC 6455 section 5.2.
const (
	bitFin  = 0x80
	bitsRsv = 0x70
	maskOp  = 0x0f
	bitMask = 0x80
	maskLen = 0x7f

	// maxControlPayload is the largest control frame payload (RFC 6455 5.5).
	maxControlPayload = 125
	// maxHeaderSize is 2 bytes + 8 bytes extended length + 4 bytes mask key.
	maxHeaderSize = 14
)

// Errors a server frame can be rejected with; each is a protocol error that
// closes the connection (RFC 6455 7.1.7, "Fail the WebSocket Connection").
var (
	errRsv          = errors.New("reserved bits set without a negotiated extension")
	errMaskedServer = errors.New("server frame is masked")
	errBadOpcode    = errors.New("reserved opcode")
	errControlLen   = errors.New("control frame payload over 125 bytes")
	errControlFrag  = errors.New("fragmented control frame")
	errLen64        = errors.New("64-bit length with the most significant bit set")
	errTooBig       = errors.New("frame larger than the driver's limit")
	errNonMinimal   = errors.New("frame length not in minimal encoding")
)

// maxFrameSize bounds one frame (and one reassembled message) the driver will
// buffer. It is a property of this load driver, not of RFC 6455: a benchmark
// client that buffers without bound would measure its own swapping.
const maxFrameSize = 64 << 20

// frameHeader is a parsed frame header.
type frameHeader struct {
	fin    bool
	rsv1   bool // "Per-Message Compressed" (parseFrameHeaderExt with deflate only)
	op     ws.OpCode
	masked bool
	length int64
}

// parseFrameHeader parses the header at the start of b, as sent by a server.
// It returns the header size n, or n == 0 when b does not yet hold a whole
// header. It validates everything that can be checked from the header alone
// (RFC 6455 5.2, 5.5): no RSV bits (no extension is ever negotiated by this
// client), no mask from a server (5.1), known opcodes, control frames short
// and unfragmented, the 64-bit length's top bit clear, minimal length
// encoding, and the driver's own maxFrameSize.
func parseFrameHeader(b []byte) (h frameHeader, n int, err error) {
	return parseFrameHeaderExt(b, false)
}

// parseFrameHeaderExt is parseFrameHeader on a connection that agreed on permessage-deflate
// when deflate is true: RSV1 is then allowed on a text or binary frame (RFC 7692 section 6.1)
// and reported in h.rsv1.
func parseFrameHeaderExt(b []byte, deflate bool) (h frameHeader, n int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	b0, b1 := b[0], b[1]
	h.fin = b0&bitFin != 0
	h.op = ws.OpCode(b0 & maskOp)
	h.masked = b1&bitMask != 0
	if rsv := b0 & bitsRsv; rsv != 0 {
		if !deflate || rsv != 0x40 || (h.op != ws.OpText && h.op != ws.OpBinary) {
			return h, 0, errRsv
		}
		h.rsv1 = true
	}
	if h.masked {
		return h, 0, errMaskedServer
	}
	if h.op.IsReserved() {
		return h, 0, errBadOpcode
	}
	n = 2
	switch l := b1 & maskLen; l {
	case 126:
		if len(b) < 4 {
			return h, 0, nil
		}
		h.length = int64(binary.BigEndian.Uint16(b[2:4]))
		if h.length < 126 {
			return h, 0, errNonMinimal
		}
		n = 4
	case 127:
		if len(b) < 10 {
			return h, 0, nil
		}
		u := binary.BigEndian.Uint64(b[2:10])
		if u>>63 != 0 {
			return h, 0, errLen64
		}
		h.length = int64(u)
		if h.length <= 0xffff {
			return h, 0, errNonMinimal
		}
		n = 10
	default:
		h.length = int64(l)
	}
	if h.op.IsControl() {
		if h.length > maxControlPayload {
			return h, 0, errControlLen
		}
		if !h.fin {
			return h, 0, errControlFrag
		}
	}
	if h.length > maxFrameSize {
		return h, 0, errTooBig
	}
	return h, n, nil
}

// appendFrame appends one complete, final, masked client frame carrying
// payload to dst and returns the extended slice. Clients must mask every
// frame with a fresh key (RFC 6455 5.3); the key comes from the caller.
// It does not allocate when dst has room for len(payload)+maxHeaderSize.
func appendFrame(dst []byte, op ws.OpCode, payload []byte, key [4]byte) []byte {
	n := len(payload)
	dst = append(dst, bitFin|byte(op))
	switch {
	case n < 126:
		dst = append(dst, bitMask|byte(n))
	case n <= 0xffff:
		dst = append(dst, bitMask|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, bitMask|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	dst = append(dst, key[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	ws.Cipher(dst[start:], key, 0)
	return dst
}
