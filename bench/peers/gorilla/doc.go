// Command gorilla is the gorilla/websocket peer server for wsgate's
// comparison benchmarks (bench/peers/compare.sh): an echo server and the
// pub/sub subset of wsgate's protocol, written the way gorilla's own examples
// and documentation recommend.
//
//	gorilla -addr 127.0.0.1:8080 -mode echo|pubsub
//
// Configuration, following gorilla's documentation:
//
//   - net/http serves the handshake; one goroutine per connection reads
//     (the handler goroutine, after the upgrade).
//   - ReadBufferSize and WriteBufferSize are 1024, above every message the
//     benchmarks send, and WriteBufferPool is set, so an idle connection holds
//     no write buffer ("A write buffer pool is useful when the application has
//     a modest number writes over a large number of connections").
//   - Echo copies each message from NextReader into NextWriter (the
//     messageWriter implements io.ReaderFrom, so nothing is allocated per
//     message), as gorilla's autobahn example does.
//   - Pub/sub follows gorilla's chat example: each connection has a writer
//     goroutine draining a send queue of 256 messages (the example's size),
//     the only goroutine that calls write methods; a publish is framed once
//     with NewPreparedMessage and the same PreparedMessage is queued to every
//     subscriber. A subscriber whose queue is full is disconnected, as the
//     chat example does (wsgate closes one past -max-queue bytes instead).
//   - Ping and close use gorilla's default handlers: a pong echoing the ping
//     payload, and a close frame echoing the status code (RFC 6455, 5.5).
//
// Invariants: client.subs is touched only by that connection's reader
// goroutine; Channel.Subs only under the channel mutex; every message queued
// to a client while that mutex is held is queued in seq order.
package main
