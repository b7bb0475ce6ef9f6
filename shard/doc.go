// Package shard holds xxhash-sharded tables that any goroutine may query while contending on one
// shard's lock in N: the channel table (sequence numbers, which loops have subscribers, the
// publish-id dedup window), and one Subscribers set per event loop holding that loop's subscribed
// connections, touched only on the loop goroutine, so that a publish is one task per loop and
// each loop walks only its own subscribers, without locks. (Connections by user id join it when
// authentication needs them.)
//
// Ordering invariant: a channel's sequence number is assigned, and the delivery task posted to
// every loop with subscribers, under the channel's shard lock. Loop task queues are FIFO, so
// every connection receives a channel's messages in sequence order, whatever the number of
// concurrent publishers. A subscriber records the channel's sequence at the moment it joined
// (read under the same lock) and is never handed a message with a sequence at or below it.
package shard
