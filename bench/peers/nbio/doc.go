// Command nbio is the lesismal/nbio peer server for wsgate's comparison
// benchmarks (bench/peers/compare.sh): an echo server and the pub/sub subset
// of wsgate's protocol, configured the way nbio's README, examples and its
// own go-websocket-benchmark recommend for many connections.
//
//	nbio -addr 127.0.0.1:8080 -mode echo|pubsub
//
// Configuration, following nbio's documentation:
//
//   - nbhttp.Engine in IOModNonBlocking: every connection is served by nbio's
//     epoll pollers (no goroutine per connection), message callbacks run on
//     nbio's goroutine pool, in order per connection. Pollers (NumCPU/4, at
//     least one), read buffer (64 KiB per poller) and pool sizes are nbio's
//     defaults, as in nbio's own benchmark server.
//   - ReleaseWebsocketPayload is true, so a message's buffer returns to
//     nbio's pool after OnMessage (it is valid only during the call).
//   - The Upgrader's KeepaliveTime is 0: no read deadline, so idle clients
//     stay connected as with the other peers (nbio's default would close them
//     after 120 s of silence).
//   - Echo answers with Conn.WriteMessage, as nbio's examples do; writes never
//     block: nbio.Conn keeps what the socket does not take.
//   - Pub/sub frames a publish once and writes the same frame bytes to every
//     subscriber's underlying connection, the net.Conn its websocket.Conn
//     writes to (nbhttp.Conn around *nbio.Conn). nbio has no prepared-message
//     API; WriteMessage would re-frame and copy the payload per subscriber.
//     The raw write is safe: nbio.Conn.Write holds the connection's lock and
//     copies whatever the socket did not take, and websocket.Conn writes each
//     of its own frames with one Write call too, so frames never interleave.
//     nbio's write buffer is unbounded by default: a slow subscriber is never
//     dropped.
//   - Ping and close use nbio's default handlers: a pong echoing the ping
//     payload and a close frame echoing the status code (RFC 6455, 5.5).
//   - nbio v1.6.8 never hands an empty text or binary message to OnMessage,
//     so an empty message gets no echo; the benchmarks send none.
//
// Invariants: a connection's connState is guarded by its own mutex (nbio
// orders callbacks per connection but OnClose may come from another
// goroutine); Channel.Subs only under the channel mutex; every frame written
// to a subscriber while that mutex is held is written in seq order.
package main
