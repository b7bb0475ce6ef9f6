package pubsub

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/conn"
	"github.com/wsgate/wsgate/frame"
	"github.com/wsgate/wsgate/shard"
)

// PublishOutcome is what a publish did.
type PublishOutcome struct {
	Seq       uint64
	Epoch     string
	Duplicate bool
	Delivered int // subscribers reached on this node (only when the caller waited)
}

// Publish sends data (valid JSON, validated by the caller with checkPublish) to every subscriber
// of channel. The message frame is encoded once and shared by every subscriber's queue. With wait
// it returns after this node's loops have queued the message, with the number of subscribers
// they reached. Any goroutine except a loop goroutine (a loop must not wait, nor do I/O).
//
// This is the seam of the package: every publish, whatever its entry point, passes here. On a
// single node the channel table numbers, deduplicates and keeps it, and it meets the local
// fan-out under the table's lock. In a cluster the stream numbers, deduplicates and keeps it,
// and every node's consumer brings it to the local fan-out (apply); the error is then
// ErrUnavailable when NATS cannot be reached. A channel without subscribers is numbered and kept
// all the same.
func (p *PubSub) Publish(ctx context.Context, channel, id string, data []byte, wait bool) (PublishOutcome, error) {
	if p.cluster != nil {
		return p.cluster.publish(ctx, channel, id, data, wait)
	}
	var f, z []byte
	var ev *sseEvent
	var done *fanoutWait
	if wait {
		done = &fanoutWait{}
	}
	res := p.table.Publish(channel, id,
		func(seq uint64, epoch string) ([]byte, int) {
			var off int
			f, off = encodeMessage(channel, seq, id, data)
			ev = p.encodeEventFor(channel, epoch, seq, f)
			return f, off
		},
		func(loop int, seq uint64) {
			if z == nil {
				z = p.compress(f) // once, at the first loop with subscribers
			}
			p.postDeliver(loop, channel, seq, f, z, ev, done)
		})
	out := PublishOutcome{Seq: res.Seq, Epoch: res.Epoch, Duplicate: res.Duplicate}
	if done != nil {
		done.wg.Wait()
		out.Delivered = int(done.n.Load())
	}
	return out, nil
}

// apply brings a message numbered by the cluster's stream to this node's subscribers and
// history. Consumer goroutine.
func (p *PubSub) apply(m shard.Numbered, data []byte, done *fanoutWait) {
	var f, z []byte
	var ev *sseEvent
	p.table.Apply(m,
		func(seq uint64) ([]byte, int) {
			var off int
			f, off = encodeMessage(m.Channel, seq, m.ID, data)
			ev = p.encodeEventFor(m.Channel, m.Epoch, seq, f)
			return f, off
		},
		func(loop int, n shard.Notice) {
			note := frame.AppendFrame(nil, opText, appendSubscribed(nil, m.Channel,
				shard.Position{Seq: n.From, Epoch: n.Epoch}, n.Restarted, false))
			subs := p.subs[loop]
			rn := &streamRenumber{from: n.From, epoch: n.Epoch, restarted: n.Restarted}
			p.engines[loop].Post(func() { subs.Renumber(m.Channel, n.From, n.Epoch, note, rn) })
		},
		func(loop int, seq uint64) {
			if z == nil {
				z = p.compress(f)
			}
			p.postDeliver(loop, m.Channel, seq, f, z, ev, done)
		})
}

// postDeliver posts the delivery of frame f (message seq of channel; z its compressed twin or
// noCompressed; ev its SSE event, nil while no stream is open) to loop. Called under the
// channel's shard lock, so the loop's FIFO keeps the channel's order.
func (p *PubSub) postDeliver(loop int, channel string, seq uint64, f, z []byte, ev *sseEvent, done *fanoutWait) {
	if done != nil {
		done.wg.Add(1)
	}
	subs, e := p.subs[loop], p.engines[loop]
	if len(z) == 0 {
		z = nil
	}
	if !e.Post(func() { p.deliver(e, subs, channel, seq, f, z, ev, done) }) && done != nil {
		done.wg.Done() // the loop has stopped
	}
}

type fanoutWait struct {
	wg sync.WaitGroup
	n  atomic.Int64
}

// encodeEventFor encodes the shared SSE event of a message (its WebSocket frame f) when any SSE
// stream is open; nil otherwise (a stream that subscribes later builds its own from the frame).
// Under the channel's shard lock.
func (p *PubSub) encodeEventFor(channel, epoch string, seq uint64, f []byte) *sseEvent {
	if p.streams.Load() == 0 {
		return nil
	}
	return encodeEvent(channel, epoch, seq, framePayload(f))
}

// deliver runs on e's loop: queue the shared frame (or its compressed twin z; ev on streams) on
// the loop's subscribers. A publish waiting for it (done) is released before the loop writes
// anything, and the loop lets it run before its flush (netpoll.Loop.YieldAfterTasks), so the
// HTTP answer does not wait for the fan-out's writes.
func (p *PubSub) deliver(e *conn.Engine, subs *shard.Subscribers, channel string, seq uint64, f, z []byte, ev *sseEvent, done *fanoutWait) {
	start := time.Now()
	var arg any
	if ev != nil {
		arg = ev // a nil *sseEvent must not become a non-nil interface
	}
	n := subs.Deliver(channel, seq, f, z, arg)
	p.deliveries.Add(uint64(n))
	p.fanout.Update(time.Since(start).Seconds())
	if done != nil {
		done.n.Add(int64(n))
		done.wg.Done()
		e.Loop().YieldAfterTasks()
	}
}

// compress returns the compressed twin of the text frame f (an encoded message or broadcast,
// compressed once for every subscriber that agreed on permessage-deflate), or noCompressed
// when compression is off or does not pay (conn.Engine.CompressFrame). Any goroutine.
func (p *PubSub) compress(f []byte) []byte {
	if len(p.engines) == 0 {
		return noCompressed
	}
	if on, _ := p.engines[0].Compression(); !on {
		return noCompressed
	}
	_, hn, _ := frame.ParseHeader(f)
	if z := p.engines[0].CompressFrame(opText, f[hn:]); z != nil {
		return z
	}
	return noCompressed
}

// noCompressed is compress's "no compressed twin": empty but not nil, so that a publish
// compresses at most once whatever the number of loops it reaches.
var noCompressed = []byte{}

// Broadcast sends data to every open connection as {"op":"broadcast","id":...,"data":...}, on
// every node of a cluster, and returns how many connections of this node it reached (all of
// them once the loops have queued it, with wait). Any goroutine but a loop's.
func (p *PubSub) Broadcast(id string, data []byte, wait bool) (int, error) {
	payload := encodeBroadcastPayload(id, data)
	n := p.broadcastLocal(payload, wait)
	if p.cluster != nil {
		if err := p.cluster.broadcast(payload); err != nil {
			return n, err
		}
	}
	return n, nil
}

// broadcastLocal queues a broadcast's payload, framed once, on every connection of this node.
func (p *PubSub) broadcastLocal(payload []byte, wait bool) int {
	f := frame.AppendFrame(make([]byte, 0, frame.HeaderLen(len(payload))+len(payload)), opText, payload)
	z := p.compress(f)
	if len(z) == 0 {
		z = nil
	}
	p.broadcasts.Add(1)
	var done fanoutWait
	for _, e := range p.engines {
		done.wg.Add(1)
		if !e.Post(func() {
			n := 0
			e.Each(func(c *conn.Conn) {
				if c.WriteFrameDeflate(f, z) == nil {
					n++
				}
			})
			p.deliveries.Add(uint64(n))
			done.n.Add(int64(n))
			done.wg.Done()
		}) {
			done.wg.Done()
		}
	}
	if wait {
		done.wg.Wait()
	}
	return int(done.n.Load())
}
