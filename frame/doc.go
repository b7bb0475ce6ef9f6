// Package frame is RFC 6455 on []byte for a non-blocking server: the wire
// rules of a WebSocket connection, from the opening handshake to the close
// frame, as functions over bytes the caller has already read or will write.
//
// The package never reads from or writes to a socket. The caller owns the
// buffers, hands complete or partial bytes in, and gets back either a result,
// "need more bytes" or a protocol violation (*Error) that carries the close
// code to fail the connection with (RFC 6455 section 7.1.7).
//
// Files, one job each:
//
//   - http.go: the HTTP/1.1 request head of the handshake: where it ends
//     (HeaderEnd), its request line and header syntax, the stricter Host,
//     Sec-WebSocket-Key and Sec-WebSocket-Version rules, and the error
//     responses (AppendHTTPError, the Reason* labels).
//   - upgrade.go: Upgrade and UpgradeDeflate, the adapter that runs a request
//     head accepted by http.go through github.com/gobwas/ws's Upgrader over
//     in-memory I/O and maps its verdict to a response and a Result.
//   - read.go: frames received: ParseHeader (incremental), CheckHeader
//     (CheckHeaderDeflate once permessage-deflate is agreed), Unmask.
//   - extension.go: permessage-deflate negotiation (RFC 7692 section 7.1):
//     NegotiateDeflate, the strict parser of Sec-WebSocket-Extensions offers
//     that UpgradeDeflate answers with.
//   - deflate.go: permessage-deflate's payload transform without context
//     takeover (RFC 7692 section 7.2): AppendDeflate, AppendDeflateHeader and
//     Inflate (bounded by a limit), over pooled compressors and decompressors
//     held only during a call.
//   - plain.go: requests that are not upgrades (Server-Sent Events on the
//     same listener): IsUpgrade tells them from a handshake, ReadRequest
//     checks one (HTTP/1.0 or 1.x, any method) for the handler to decide.
//   - write.go: frames sent: HeaderLen, AppendHeader, AppendFrame.
//   - close.go: close payloads: ParseClose, AppendClose, ValidCloseCode.
//   - utf8.go: UTF8, the incremental validator of text messages (one that
//     arrived whole is checked with unicode/utf8.Valid).
//   - errors.go: Error and the predefined protocol violations.
//
// Invariants:
//
//   - Nothing here keeps a reference to a caller's slice after a call returns.
//     A returned slice (ParseClose's reason) aliases the caller's input and is
//     valid exactly as long as that input is; the uri Upgrade passes to its
//     check callback aliases the request and is valid only during the call.
//   - Nothing allocates per frame or per read: ParseHeader, CheckHeader, Unmask,
//     UTF8.Write, ParseClose, HeaderEnd, IsUpgrade, ReadRequest, and HeaderLen, AppendHeader,
//     AppendFrame, AppendClose, NegotiateDeflate, and AppendDeflate and
//     Inflate once their pools are warm, into a big enough dst make zero allocations
//     (proven by alloc_test.go). Upgrade into a big enough dst allocates one
//     small object per connection, gobwas/ws's Sec-WebSocket-Accept value (its
//     own state is pooled; conn's TestHandshakeAllocs counts a whole handshake).
//   - No function keeps state between calls (Upgrade's pooled state is reset
//     before it goes back); the one stateful type, UTF8, is
//     a value the caller embeds in its connection. Every function may be
//     called from any goroutine; a UTF8 value belongs to whoever owns the
//     connection it lives in (the connection's loop goroutine in wsgate).
//   - Frames received are checked as a server receives them from a client
//     (masked, RFC 6455 section 5.1); frames encoded are server frames, never
//     masked. The one extension is permessage-deflate without context
//     takeover (UpgradeDeflate); without it RSV bits must be zero. No
//     subprotocol is negotiated: Sec-WebSocket-Protocol is ignored.
//   - Predefined errors are pointers compared by identity; their Reason fits
//     a close frame (at most 123 bytes, RFC 6455 section 5.5).
//   - The package imports only the standard library, github.com/gobwas/ws
//     (for ws.Header, ws.OpCode, ws.StatusCode, ws.Cipher and ws.Upgrader;
//     wsflate.Parameters for negotiated offers) and
//     github.com/klauspost/compress/flate (the compressor), and never calls
//     gobwas/ws's reader-based APIs on a socket.
package frame
