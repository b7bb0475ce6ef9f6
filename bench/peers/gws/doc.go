// Command gws is the lxzan/gws peer server for wsgate's comparison
// benchmarks (bench/peers/compare.sh): an echo server and the pub/sub subset
// of wsgate's protocol, written the way gws's README and examples recommend.
//
//	gws -addr 127.0.0.1:8080 -mode echo|pubsub [-compression]
//
// Configuration, following gws's documentation:
//
//   - gws's own lightweight accept path, as gws.Server.RunListener does: one
//     goroutine per connection reads the HTTP request with http.ReadRequest,
//     upgrades with Upgrader.UpgradeFromConn and runs Conn.ReadLoop. The loop
//     here is RunListener's plus a clean return when the listener closes
//     (RunListener retries Accept forever, so it cannot be stopped).
//   - ParallelEnabled is false (messages of one connection are handled in
//     order on its read goroutine), compression is off unless -compression
//     (then permessage-deflate without context takeover, level 1, threshold
//     256 bytes, as wsgate's -compression), CheckUtf8Enabled is
//     left at its default false ("turn off the performance will be better").
//   - ReadBufferSize is 1024 instead of 4096: above every message the
//     benchmarks send, and each connection keeps its bufio.Reader for life.
//   - Echo writes the reply with Conn.WriteMessage, as gws's echo example.
//   - Pub/sub frames a publish once with gws.NewBroadcaster and calls
//     Broadcast for every subscriber (gws's recommended broadcast: the frame
//     is shared, each write runs on the subscriber's write queue). Replies
//     use WriteAsync on the same queue, so they stay ordered with broadcasts.
//     gws's write queue is unbounded: a slow subscriber is never dropped.
//   - OnPing answers with a pong that echoes the ping payload (RFC 6455,
//     5.5.3; gws's BuiltinEventHandler sends an empty one); gws answers a
//     close frame by echoing its status code.
//
// Invariants: connState.subs is touched only by the connection's ReadLoop
// goroutine (OnMessage and OnClose run there because ParallelEnabled is
// false); Channel.Subs only under the channel mutex; every message queued to
// a connection while that mutex is held is queued in seq order.
package main
