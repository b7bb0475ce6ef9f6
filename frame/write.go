package frame

import (
	"encoding/binary"
	"strconv"

	"github.com/gobwas/ws"
)

// HeaderLen returns the length of the header AppendHeader writes for a
// payload of payloadLen bytes: 2, 4 or 10 (server frames carry no masking
// key, RFC 6455 section 5.1). It panics if payloadLen is negative.
func HeaderLen(payloadLen int) int {
	switch {
	case payloadLen < 0:
		panic("BUG: frame: negative payload length " + strconv.Itoa(payloadLen))
	case payloadLen <= len7Max:
		return 2
	case payloadLen <= 0xffff:
		return 4
	default:
		return 10
	}
}

// AppendHeader appends the header of an unmasked server frame (RFC 6455
// section 5.2) to dst and returns the extended slice. The length is encoded in
// the minimal number of bytes. It does not allocate when dst has
// HeaderLen(payloadLen) bytes of spare capacity.
//
// It panics (a bug in the caller, not a peer's doing) if op is not a defined
// opcode, if payloadLen is negative, or if a control frame would be
// fragmented or longer than 125 bytes (section 5.5).
func AppendHeader(dst []byte, fin bool, op ws.OpCode, payloadLen int) []byte {
	switch op {
	case ws.OpContinuation, ws.OpText, ws.OpBinary:
	case ws.OpClose, ws.OpPing, ws.OpPong:
		if !fin || payloadLen > MaxControlPayload {
			panic("BUG: frame: control frame fragmented or longer than 125 bytes")
		}
	default:
		panic("BUG: frame: reserved opcode " + strconv.Itoa(int(op)))
	}
	b0 := byte(op)
	if fin {
		b0 |= bitFin
	}
	switch {
	case payloadLen < 0:
		panic("BUG: frame: negative payload length " + strconv.Itoa(payloadLen))
	case payloadLen <= len7Max:
		return append(dst, b0, byte(payloadLen))
	case payloadLen <= 0xffff:
		return append(dst, b0, len16Tag, byte(payloadLen>>8), byte(payloadLen))
	default:
		return binary.BigEndian.AppendUint64(append(dst, b0, len64Tag), uint64(payloadLen))
	}
}

// AppendFrame appends a complete unfragmented (FIN) server frame with the
// given opcode and payload to dst. It does not allocate when dst has
// HeaderLen(len(payload))+len(payload) bytes of spare capacity. Panics as
// AppendHeader does.
func AppendFrame(dst []byte, op ws.OpCode, payload []byte) []byte {
	dst = AppendHeader(dst, true, op, len(payload))
	return append(dst, payload...)
}
