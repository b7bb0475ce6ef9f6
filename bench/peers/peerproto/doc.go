// Package peerproto is the pub/sub wire protocol shared by the peer servers
// in bench/peers (gorilla, gws, nbio, gnet), so that every peer runs the same
// application logic and the comparison with wsgate measures the transport.
//
// It owns three things and nothing else:
//
//   - ParseRequest: one client text message ({"op":"subscribe"|"unsubscribe"|
//     "publish", ...}) into a Request whose fields own their memory,
//     validated as wsgate validates it; a refusal is a RequestError carrying
//     wsgate's error code and reason (400, 404, 422), so every server answers
//     a bad request the same way.
//   - Append* encoders for every server message of the protocol, plus
//     AppendFrame for a complete unmasked server frame (RFC 6455, section 5.2).
//   - Registry and Channel: channel names to per-channel state (the sequence
//     counter, a window of recent publish ids for duplicate detection, and the
//     peer's own subscriber set), each guarded by the channel's mutex.
//
// Invariants:
//
//   - A Channel's seq, id window and Subs are read and written only while the
//     channel's mutex is held (Lock/Unlock). Peers keep fan-out enqueueing
//     inside that critical section, so every subscriber's queue receives a
//     channel's messages in seq order and a subscribe reply is ordered before
//     the first message with a greater seq.
//   - Sequence numbers start at 0 ("nothing published yet") and grow by one
//     per accepted (non-duplicate) publish.
//   - Append* functions never retain dst or their arguments and allocate only
//     when dst lacks capacity.
//
// The wire format is the subset of wsgate's protocol (docs/protocol.md in the
// main module) that the benchmarks use. Not mirrored: wsgate's limit of
// channels per connection (429), its closing of a connection after too many
// bad requests, and its HTTP publish API.
package peerproto
