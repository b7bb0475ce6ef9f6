package frame

import "github.com/gobwas/ws"

// Error is a protocol violation found in bytes received from a client: the
// close code to fail the connection with (RFC 6455 section 7.4.1) and a short
// reason that fits a close frame (at most 123 bytes, section 5.5).
//
// The predefined errors below are compared by identity (err == ErrNotMasked).
// They are shared by every goroutine and must never be modified.
type Error struct {
	Code   ws.StatusCode
	Reason string
}

// Error returns the reason; it does not allocate.
func (e *Error) Error() string { return e.Reason }

// Protocol violations, each with the close code RFC 6455 asks for: 1002
// (protocol error) for framing, 1007 (invalid frame payload data) for bad
// UTF-8, 1009 (message too big) for size limits.
var (
	// ErrReservedBits: RSV1..3 set while no extension is negotiated
	// (RFC 6455 section 5.2).
	ErrReservedBits = &Error{Code: ws.StatusProtocolError, Reason: "reserved bits set without a negotiated extension"}

	// ErrReservedOpcode: opcode 0x3-0x7 or 0xB-0xF (section 5.2).
	ErrReservedOpcode = &Error{Code: ws.StatusProtocolError, Reason: "reserved opcode"}

	// ErrNotMasked: a client frame without the MASK bit (section 5.1).
	ErrNotMasked = &Error{Code: ws.StatusProtocolError, Reason: "client frame is not masked"}

	// ErrControlTooLong: a control frame (or a close payload) longer than 125
	// bytes (section 5.5).
	ErrControlTooLong = &Error{Code: ws.StatusProtocolError, Reason: "control frame payload longer than 125 bytes"}

	// ErrControlFragmented: a control frame without FIN (section 5.5).
	ErrControlFragmented = &Error{Code: ws.StatusProtocolError, Reason: "fragmented control frame"}

	// ErrUnexpectedContinuation: a continuation frame while no fragmented
	// message is in progress (section 5.4).
	ErrUnexpectedContinuation = &Error{Code: ws.StatusProtocolError, Reason: "continuation frame without a message to continue"}

	// ErrExpectedContinuation: a new text or binary frame while a fragmented
	// message is in progress (section 5.4).
	ErrExpectedContinuation = &Error{Code: ws.StatusProtocolError, Reason: "new data frame inside a fragmented message"}

	// ErrBadLength: a 64-bit payload length with the most significant bit set,
	// or a length not encoded in the minimal number of bytes (section 5.2:
	// "the minimal number of bytes MUST be used to encode the length"). See
	// ParseHeader for why a non-minimal length is rejected.
	ErrBadLength = &Error{Code: ws.StatusProtocolError, Reason: "payload length not minimally encoded or above 2^63-1"}

	// ErrMessageTooBig: a message larger than the receiver accepts
	// (section 7.4.1, code 1009). This package has no limit of its own; the
	// connection layer returns this error when its limit is exceeded.
	ErrMessageTooBig = &Error{Code: ws.StatusMessageTooBig, Reason: "message too big"}

	// ErrInvalidUTF8: a text message that is not valid UTF-8 (sections 5.6
	// and 8.1).
	ErrInvalidUTF8 = &Error{Code: ws.StatusInvalidFramePayloadData, Reason: "invalid UTF-8 in text message"}

	// ErrCloseLength: a close payload of exactly one byte, which cannot hold
	// the 2-byte status code (section 5.5.1).
	ErrCloseLength = &Error{Code: ws.StatusProtocolError, Reason: "close payload of 1 byte"}

	// ErrCloseCode: a close status code that must not appear on the wire
	// (section 7.4); see ValidCloseCode.
	ErrCloseCode = &Error{Code: ws.StatusProtocolError, Reason: "invalid close code"}

	// ErrCloseReasonUTF8: a close reason that is not valid UTF-8
	// (section 5.5.1).
	ErrCloseReasonUTF8 = &Error{Code: ws.StatusInvalidFramePayloadData, Reason: "invalid UTF-8 in close reason"}
)
