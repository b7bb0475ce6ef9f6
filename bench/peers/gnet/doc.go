// Command gnet is the panjf2000/gnet peer server for wsgate's comparison
// benchmarks (bench/peers/compare.sh): an echo server and the pub/sub subset
// of wsgate's protocol on gnet's event loops with gobwas/ws framing, as
// gnet's own WebSocket example pairs them.
//
//	gnet -addr 127.0.0.1:8080 -mode echo|pubsub
//
// Configuration, following gnet's example and documentation:
//
//   - gnet.Run with WithMulticore(true) (one event loop per CPU) and
//     WithReusePort(true) (one SO_REUSEPORT listener per loop, the kernel
//     spreads connections); buffer sizes are gnet's defaults.
//   - The handshake waits until the request header is complete in gnet's
//     inbound buffer, then runs gobwas/ws's Upgrader over an in-memory reader
//     with the connection as writer; a bad request gets its HTTP error.
//   - Frames are parsed in place from Peek(-1) into ws.Header, checked with
//     ws.CheckHeader (RFC 6455: masking, RSV, control frames, continuation
//     order), unmasked in place with ws.Cipher and consumed with one Discard
//     per OnTraffic. gnet's example decodes with ws.ReadHeader over a copy and
//     writes header and payload in two writes; here an echo or pong writes its
//     unmasked header into the client header's own bytes (always four mask
//     bytes longer) and goes out in one Write without copying the payload.
//   - Fragmented messages are reassembled per connection (control frames may
//     interleave, RFC 6455, 5.4); messages are limited to 16 MiB (close 1009).
//   - Ping is answered with a pong echoing its payload; close by echoing its
//     status code (or an empty close) and closing; invalid frames and close
//     payloads fail the connection with close 1002 (RFC 6455, 5.5 and 7.4).
//   - Pub/sub keeps each channel's subscribers grouped by event loop. A
//     publish is framed once, and, under the channel mutex, one task per loop
//     that has subscribers is queued with EventLoop.Execute; the task writes
//     the shared frame to that loop's connections on the loop itself, where
//     gnet allows Conn.Write. gnet's outbound buffer is unbounded: a slow
//     subscriber is never dropped.
//
// Invariants: a wsConn is touched only on its connection's loop; a channel's
// loopSets map only under the channel mutex; a loopSubs is changed only on
// its loop and under the channel mutex and read by that loop's tasks.
// Because tasks are queued under the channel mutex they reach every loop in
// seq order; a task skips connections that subscribed after its publish
// (their subscribe reply already announced a seq at least as high).
package main
