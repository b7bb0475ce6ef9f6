// Package conn is the connection state machine that runs on a netpoll loop, for WebSockets and
// event streams: handshake, frame reading and validation (RFC 6455), message assembly, the
// outbound queue and its flush, heartbeats and deadlines, backpressure, and the Handler
// interface applications implement.
//
// One Engine serves one netpoll.Loop and implements netpoll.Handler. All of a connection's state
// is touched only on its loop's goroutine, so it needs no locks; other goroutines reach a
// connection by posting a task to its loop (Engine.Post).
//
// Memory per idle connection is the point of the design:
//   - Reads land in one read buffer shared by all connections of the loop. Headers are parsed and
//     payloads unmasked in place; a complete message reaches Handler.OnMessage as a slice of that
//     buffer, valid only during the call. Only a partial frame left at the end of a read is copied
//     into a per-connection buffer borrowed from the loop's ringbuf.Pool, and only until it is
//     complete. A fragmented message is assembled in a pooled buffer until its final frame.
//   - Output goes to a ringbuf.Queue borrowed while bytes are pending and returned once the
//     socket has taken them. At the end of each loop pass every connection with output is
//     flushed with one writev(2).
//   - Backpressure (read.go): once a connection's queued output passes Config.HighWater it is not
//     read (the frames already read wait in its input buffer) until the output drains to
//     Config.LowWater, so answers (writes from its own OnMessage) are bounded by HighWater plus one
//     message's and a client that does not read them is slowed down by TCP, not closed. Output
//     the server originates (writes from tasks) ends in the slow-consumer close past MaxQueue.
//   - Whatever closes a connection, the client sees whole frames: the server's own closes (slow
//     consumer, shutdown, ping and idle timeouts) drop the output not started but complete the
//     frame the socket has partly taken (ringbuf.Queue.Cut) before the close frame.
//   - Text is checked as it arrives: a part of a text frame is unmasked, checked and moved to the
//     message buffer at once (textPart), so invalid UTF-8 fails the connection before the rest
//     of the frame is sent.
//   - permessage-deflate (deflate.go, with Config.Compression) keeps no per-connection state
//     beyond two flag bits: a compressed message is inflated at its last frame into a pooled
//     buffer, with a pooled decompressor held only for the call; compressors likewise.
//   - An engine's end is a drain (drain.go): its connections are closed with one code (1001
//     shutdown, 1012 restart) spread over a period by a per-pass budget, with no per-connection
//     timer: the engine walks its fd table and asks the loop to wake it when the next close is
//     due.
//   - Conn structs are pooled per loop: a Conn pointer must not be kept past Handler.OnClose.
//     Code on other goroutines refers to connections by ID, never by pointer.
//   - One timer node per connection (embedded netpoll.Timer) serves every deadline: handshake,
//     ping, pong misses, idle, and close handshake. Receiving a frame does not touch the wheel;
//     the timer re-computes the next deadline from timestamps when it fires (heartbeat.go).
//
// Streams (stream.go): with a Handler that is a StreamHandler, a request without an Upgrade
// header (Server-Sent Events) goes to OnRequest instead of the WebSocket handshake, and an
// accepted one lives in the same Conn, loop, queue and timer: events are queue units, the ping
// is a comment line, the end is the body's last chunk, and the client's input is discarded.
//
// conn makes no system call itself: reads, writevs, shutdowns and peer addresses go through
// netpoll (netpoll/io.go), and ringbuf only holds the bytes.
package conn
