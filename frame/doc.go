// Package frame is RFC 6455 on []byte for a non-blocking server: it parses
// and checks frame headers that arrive in pieces, unmasks payloads in place,
// validates UTF-8 incrementally and close payloads, encodes server frames with
// the AppendX(dst, ...) convention, and runs a fully buffered HTTP upgrade
// request through github.com/gobwas/ws's Upgrader over in-memory I/O.
//
// The package never reads from or writes to a socket. The caller owns the
// buffers, hands complete or partial bytes in, and gets back either a result,
// "need more bytes" or a protocol violation (*Error) that carries the close
// code to fail the connection with (RFC 6455 section 7.1.7).
//
// Invariants:
//
//   - Nothing here keeps a reference to a caller's slice after a call returns,
//     and nothing allocates on the frame path: ParseHeader, CheckHeader,
//     Unmask, UTF8.Write, ParseClose, HeaderEnd and the Append functions into
//     a big enough dst make zero allocations (proven by alloc_test.go). A
//     returned slice (ParseClose's reason) aliases the caller's input and is
//     valid exactly as long as that input is.
//   - No function keeps state between calls; the one stateful type, UTF8, is
//     a value the caller embeds in its connection. Every function may be
//     called from any goroutine; a UTF8 value belongs to whoever owns the
//     connection it lives in (the connection's loop goroutine in wsgate).
//   - Frames received are checked as a server receives them from a client
//     (masked, RFC 6455 section 5.1); frames encoded are server frames, never
//     masked. No extension is ever negotiated, so RSV bits must be zero.
//   - Predefined errors are pointers compared by identity; their Reason fits
//     a close frame (at most 123 bytes, RFC 6455 section 5.5).
//   - The package imports only the standard library and github.com/gobwas/ws
//     (for ws.Header, ws.OpCode, ws.StatusCode, ws.Cipher and ws.Upgrader),
//     and never calls gobwas/ws's reader-based frame APIs on a socket.
package frame
