// Package wsgate is a WebSocket server for hosts that hold very many, mostly idle connections and
// push messages to them. Server builds the event loops (netpoll), their SO_REUSEPORT listeners,
// the connection engines (conn), metrics and the admin HTTP listener from one Config; the pub/sub
// gateway and the echo mode are Handlers on top of it.
//
// Invariants: a Server's loops, engines and listeners are created by Start and released by
// Shutdown or Close; the Server's methods may be called from any goroutine. Metrics live in one
// metrics.Set per Server, read from the engines' atomic counters at scrape time, so the hot path
// never looks a metric up by name.
package wsgate
