package pubsub

// Internals for the external tests of this package (package pubsub_test), which run a whole
// wsgate.Server and so cannot live in this package (wsgate imports it).

// EncodeMessage is encodeMessage's frame.
func EncodeMessage(channel string, seq uint64, id string, data []byte) []byte {
	f, _ := encodeMessage(channel, seq, id, data)
	return f
}

// DeliverOn queues frame on loop's subscribers of channel, as a delivery task does. Loop
// goroutine only.
func (p *PubSub) DeliverOn(loop int, channel string, seq uint64, frame, compressed []byte) int {
	return p.subs[loop].Deliver(channel, seq, frame, compressed, nil)
}

// DeliverEventOn queues message seq of channel (its frame, and the SSE event encoded from it
// once, as a publish does: ev from EncodeEvent) on loop's subscribers. Loop goroutine only.
func (p *PubSub) DeliverEventOn(loop int, channel string, seq uint64, frame []byte, ev any) int {
	return p.subs[loop].Deliver(channel, seq, frame, nil, ev)
}

// EncodeEvent is the shared SSE event of a message frame.
func EncodeEvent(channel, epoch string, seq uint64, frame []byte) any {
	return encodeEvent(channel, epoch, seq, framePayload(frame))
}
