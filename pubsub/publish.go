package pubsub

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/conn"
	"github.com/wsgate/wsgate/shard"
)

// PublishOutcome is what a publish did.
type PublishOutcome struct {
	Seq       uint64
	Epoch     string
	Duplicate bool
	Delivered int // subscribers reached (only when the caller waited)
}

// Publish sends data (valid JSON, validated by the caller with checkPublish) to every subscriber
// of channel. The message frame is encoded once and shared by every subscriber's queue. With wait
// it returns after every loop has queued the message, with the number of subscribers reached.
// Any goroutine except a loop goroutine when wait is set (a loop must not wait on itself).
//
// This is the seam of the package: every publish, whatever its entry point, passes here, where
// it is numbered, deduplicated and kept in history (the channel table) and meets the local
// fan-out (deliver). A channel without subscribers is numbered and kept all the same.
func (p *PubSub) Publish(channel, id string, data []byte, wait bool) PublishOutcome {
	var f []byte
	var done *fanoutWait
	if wait {
		done = &fanoutWait{}
	}
	res := p.table.Publish(channel, id,
		func(seq uint64) ([]byte, int) {
			var off int
			f, off = encodeMessage(channel, seq, id, data)
			return f, off
		},
		func(loop int, seq uint64) {
			if done != nil {
				done.wg.Add(1)
			}
			subs, e := p.subs[loop], p.engines[loop]
			if !e.Post(func() { p.deliver(subs, channel, seq, f, done) }) && done != nil {
				done.wg.Done() // the loop has stopped
			}
		})
	out := PublishOutcome{Seq: res.Seq, Epoch: res.Epoch, Duplicate: res.Duplicate}
	if done != nil {
		done.wg.Wait()
		out.Delivered = int(done.n.Load())
	}
	return out
}

type fanoutWait struct {
	wg sync.WaitGroup
	n  atomic.Int64
}

// deliver runs on a loop: queue the shared frame on the loop's subscribers.
func (p *PubSub) deliver(subs *shard.Subscribers, channel string, seq uint64, f []byte, done *fanoutWait) {
	start := time.Now()
	n := subs.Deliver(channel, seq, f)
	p.deliveries.Add(uint64(n))
	p.fanout.Update(time.Since(start).Seconds())
	if done != nil {
		done.n.Add(int64(n))
		done.wg.Done()
	}
}

// Broadcast sends data to every open connection as {"op":"broadcast","id":...,"data":...} and,
// with wait, returns how many connections it reached. Any goroutine but a loop's when wait is
// set.
func (p *PubSub) Broadcast(id string, data []byte, wait bool) int {
	f := encodeBroadcast(id, data)
	p.broadcasts.Add(1)
	var done fanoutWait
	for _, e := range p.engines {
		done.wg.Add(1)
		if !e.Post(func() {
			n := 0
			e.Each(func(c *conn.Conn) {
				if c.WriteFrame(f) == nil {
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
