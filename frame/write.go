package frame

import (
	"encoding/binary"
	"strconv"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// maxCloseReason is the longest close reason: a control payload holds at most
// 125 bytes, two of which are the status code (RFC 6455 section 5.5.1).
const maxCloseReason = MaxControlPayload - 2

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

// AppendClose appends a close frame (RFC 6455 section 5.5.1) carrying code
// and reason to dst.
//
// code ws.StatusNoStatusRcvd (1005, "no status") produces a close frame with
// an empty payload, which is how "no status code" is sent; reason is then
// ignored. Any other code must satisfy ValidCloseCode, otherwise AppendClose
// panics (a bug in the caller). reason is cut to at most 123 bytes at a rune
// boundary so the payload fits 125 bytes; a reason that is not valid UTF-8 is
// dropped (the frame must stay valid, section 5.5.1). It does not allocate
// when dst has 2+2+123 bytes of spare capacity.
func AppendClose(dst []byte, code ws.StatusCode, reason string) []byte {
	if code == ws.StatusNoStatusRcvd {
		return AppendHeader(dst, true, ws.OpClose, 0)
	}
	if !ValidCloseCode(code) {
		panic("BUG: frame: close code " + strconv.Itoa(int(code)) + " must not be sent")
	}
	if len(reason) > maxCloseReason {
		cut := maxCloseReason
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	if !utf8.ValidString(reason) {
		reason = ""
	}
	dst = AppendHeader(dst, true, ws.OpClose, 2+len(reason))
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	return append(dst, reason...)
}
