// Package client is the Go client of the wsgate pub/sub gateway (docs/protocol.md): it keeps one
// WebSocket connection to the gateway open, reconnecting by itself with exponential backoff and
// jitter, resubscribes every channel after a reconnect with the position of the last message it
// delivered (`since`), and delivers each channel's messages exactly once and in sequence order
// across reconnects, gateway restarts and moves between cluster nodes. docs/clients.md is the
// user's guide; this comment states how the package is built.
//
// Goroutines: a Client has three. The run goroutine dials, reads every frame and decides what a
// close means (reconnect after a delay, at once, or stop); the writer goroutine writes the
// frames the others queue, in queue order, and pings; the delivery goroutine calls the user's
// handlers and callbacks one at a time, in the order the reader queued them. So a handler may
// call Publish, Subscribe, Unsubscribe or Close without deadlock: the reader never waits for a
// handler, and the writer never waits for the reader.
//
// Invariants:
//   - Client.mu guards everything the three goroutines and the callers share: subscriptions and
//     their positions, pending publishes, the current connection with its output and its
//     unanswered requests, and the delivery queue. Nothing blocks while holding it (no network
//     I/O, no user code).
//   - A subscription's position (pos) is the last message the reader accepted into the delivery
//     queue; a message at or below it is a duplicate and is dropped. delivered is the last one a
//     handler was given. They differ only by what the queue holds; when the queue overflows
//     (Options.MaxPending) the queued messages are dropped, pos goes back to delivered, and the
//     connection is dropped so that the next one recovers them with `since`.
//   - Requests are written in the order they are queued (one writer), and the gateway answers a
//     connection's subscribe and unsubscribe in that order, so an answer is matched to the first
//     unanswered request of its kind (wsConn.reqs). Publishes are matched by channel and id.
//   - Everything about one connection (its output, its requests) dies with it: on a new
//     connection the client sends the subscriptions and unanswered publishes again from its own
//     state, never from the old connection's queue.
package client
