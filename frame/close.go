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

// ParseClose validates the (unmasked) payload of a received close frame
// (RFC 6455 section 5.5.1) and returns its status code and reason.
//
//   - An empty payload means "no status code": code is 1005
//     (ws.StatusNoStatusRcvd, section 7.1.5), reason is nil, err is nil.
//   - A 1-byte payload cannot hold a code: ErrCloseLength.
//   - A payload over 125 bytes: ErrControlTooLong (CheckHeader already
//     rejects such a frame; this keeps ParseClose safe on its own).
//   - A code for which ValidCloseCode is false: ErrCloseCode.
//   - A reason that is not valid UTF-8: ErrCloseReasonUTF8.
//
// reason aliases p and is valid as long as p is. On error code and reason are
// zero. Zero allocations; safe for concurrent use.
func ParseClose(p []byte) (code ws.StatusCode, reason []byte, err *Error) {
	switch {
	case len(p) == 0:
		return ws.StatusNoStatusRcvd, nil, nil
	case len(p) == 1:
		return 0, nil, ErrCloseLength
	case len(p) > MaxControlPayload:
		return 0, nil, ErrControlTooLong
	}
	code = ws.StatusCode(binary.BigEndian.Uint16(p))
	if !ValidCloseCode(code) {
		return 0, nil, ErrCloseCode
	}
	if !utf8.Valid(p[2:]) {
		return 0, nil, ErrCloseReasonUTF8
	}
	return code, p[2:], nil
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

// ValidCloseCode reports whether code may appear in a close frame on the
// wire, sent or received (RFC 6455 section 7.4 and the IANA "WebSocket Close
// Code Number Registry"):
//
//	0-999      invalid: not used (section 7.4.2)
//	1000-1003  valid: normal, going away, protocol error, unsupported data
//	1004       invalid: reserved (section 7.4.1)
//	1005, 1006 invalid: "MUST NOT be set as a status code in a Close control
//	           frame by an endpoint" (section 7.4.1)
//	1007-1011  valid: invalid payload, policy, too big, mandatory ext, internal
//	1012-1014  valid: registered with IANA after RFC 6455 (service restart,
//	           try again later, bad gateway)
//	1015       invalid: TLS handshake failure, MUST NOT be sent (section 7.4.1)
//	1016-2999  invalid: reserved for future RFCs, not registered
//	3000-3999  valid: registered for libraries, frameworks and applications
//	4000-4999  valid: private use
//	5000-65535 invalid: outside every range of section 7.4.2 (Autobahn
//	           7.13.x leaves the outcome open; gobwas/ws accepts them)
//
// On 1012-1014: the original Autobahn|Testsuite listed 1012, 1013, 1014 and
// 1015 among the invalid codes of cases 7.9.x; the current crossbar.io
// autobahn-testsuite tests only 0, 999, 1004, 1005, 1006, 1016, 1100, 2000 and
// 2999 as invalid (7.9.x) and 1000-1003, 1007-1011, 3000, 3999, 4000, 4999 as
// valid (7.7.x), so accepting the registered codes 1012-1014 passes the
// current suite. 1015 stays invalid because section 7.4.1 forbids sending it.
func ValidCloseCode(code ws.StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	default:
		return false
	}
}
