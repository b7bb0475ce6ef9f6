// Package pubsub is the pub/sub gateway application that runs on wsgate's engines: the client
// protocol over WebSocket (subscribe, unsubscribe, publish, their replies and errors) and over
// Server-Sent Events (sse.go: GET /sse and /events on the WebSocket listener, resume by
// Last-Event-ID), the encoding of channel messages and events, the HTTP publish API, and
// publish-id dedup.
//
// A PubSub is a conn.Handler. The server calls Start once, after the engines exist and before
// any connection is accepted, and Routes to add the HTTP API to its admin listener; nothing in
// this package reads another package's private state.
//
// Invariants:
//   - Publish is the one place where a publish meets the local fan-out: it numbers the message
//     (shard.Table, under the channel's shard lock), encodes its frame once, and posts one
//     delivery task per loop with subscribers. Every entry point (HTTP JSON, NDJSON batch,
//     client publish) goes through it; a cluster transport replaces what happens inside it.
//   - A channel's messages reach every subscriber in sequence order: the number is assigned and
//     the delivery tasks queued under the same lock, and loop task queues are FIFO.
//   - Per-connection state (client) and per-loop subscriber sets are touched only on the
//     connection's loop goroutine; counters that other goroutines read are atomics.
//   - Everything sent in a text frame is valid UTF-8: published data is checked on every path.
package pubsub
