// Package bench is wsgate's load driver: a black-box WebSocket client that
// opens, holds and exercises very many connections against any server that
// speaks RFC 6455 (and, for the pubsub scenario, the protocol subset of
// docs/protocol.md), and measures what it sees. It never imports the
// server's packages; cmd/wsbench is its command line.
//
// # Engine
//
// Engine is a small client-side netpoll: a few event-loop goroutines, each
// owning an edge-triggered epoll instance (epoll(7)) and a fixed array of
// connection slots. Sockets are non-blocking; connect(2) completes on
// EPOLLOUT (outcome read from SO_ERROR); the opening handshake (RFC 6455
// 4.1) is written and parsed in memory; frames are parsed in place from one
// read buffer per loop and every client frame is masked (RFC 6455 5.3).
// Pings are answered with pongs (5.5.2), a server close frame is echoed
// (5.5.1), and protocol violations fail the connection with 1002 (7.1.7).
//
// Invariants:
//   - There is no goroutine per connection. Everything that touches a slot
//     runs on the goroutine of the loop that owns it; Handler callbacks and
//     Loop tasks are the only entry points, so slot state needs no locks.
//     Other goroutines reach a loop only through Engine.Sync (a task queue
//     plus an eventfd(2) wake-up).
//   - An idle open connection owns no buffers: the read buffer is per loop,
//     and only an incomplete frame, an incomplete handshake response, a
//     fragmented message or output the socket refused is kept per slot.
//   - epoll data holds the slot index and the slot's generation, never a Go
//     pointer; every Dial bumps the generation, so an event, timer or close
//     notification for an earlier socket of the slot is recognised and
//     dropped.
//   - A payload handed to Handler.OnMessage is valid only during the call.
//   - Connections are closed at once but OnClose is delivered after the
//     current event, so a handler never re-enters itself for the same slot.
//
// # Scenarios and workers
//
// connect, echo, pubsub and churn are Handlers plus phase hooks (setup,
// measured phase, drain). A run is split over workers: goroutines in the
// coordinator's process, or, when the open-files limit would be exceeded
// (MaxConnsPerWorker), child processes re-executing the wsbench binary. The
// Runner starts the measured phase on all workers at once and merges their
// Results exactly: counters are summed and latency Histograms merged bucket
// by bucket, never averaged. Sockets are spread over source addresses
// (SrcRange, bound with IP_BIND_ADDRESS_NO_PORT) so ephemeral ports do not
// run out.
//
// # Measurements
//
// Latency is recorded in a fixed-memory log-linear Histogram (relative error
// below 1/128). Server CPU (utime+stime) and RSS come from /proc/PID (proc(5))
// sampled before connecting, when setup settles and at the end of the
// measured phase. Memory per connection is the growth of the server's own
// RSS divided by the connections open at the end, reported only when it
// can be measured (a -server-pid, RSS grown); host-wide counters such as
// /proc/net/sockstat are never used, other processes move them. Report turns result files into SVG charts and a Markdown
// table that compares every server with the best of its peers.
package bench
