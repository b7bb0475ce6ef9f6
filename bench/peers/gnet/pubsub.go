package main

import (
	"context"

	"github.com/panjf2000/gnet/v2"
	"github.com/wsgate/wsgate/bench/peers/peerproto"
)

// loopSets is a channel's subscribers grouped by event loop, so that a
// publish costs one task per loop and each loop writes only to its own
// connections. The map itself is guarded by the channel mutex.
type loopSets map[gnet.EventLoop]*loopSubs

// loopSubs is one loop's subscribers of one channel: each connection with
// the channel's seq when it subscribed. It is changed only on its loop and
// only under the channel mutex, and read by that loop's fan-out tasks
// without the mutex (same goroutine as every writer).
type loopSubs struct {
	conns map[*wsConn]uint64
}

// addSub subscribes wc, on loop, to ch. The caller holds ch's mutex.
func addSub(ch *peerproto.Channel[loopSets], loop gnet.EventLoop, wc *wsConn) {
	ls := ch.Subs[loop]
	if ls == nil {
		ls = &loopSubs{conns: make(map[*wsConn]uint64)}
		ch.Subs[loop] = ls
	}
	ls.conns[wc] = ch.Seq()
}

// removeSub unsubscribes wc, on loop, from ch. The caller holds ch's mutex.
func removeSub(ch *peerproto.Channel[loopSets], loop gnet.EventLoop, wc *wsConn) {
	ls := ch.Subs[loop]
	if ls == nil {
		return
	}
	delete(ls.conns, wc)
	if len(ls.conns) == 0 {
		delete(ch.Subs, loop)
	}
}

// fanout writes one published frame to one loop's subscribers. It runs on
// that loop (EventLoop.Execute), where writing to the loop's connections is
// allowed. Tasks of one channel reach each loop in seq order because they
// are queued under the channel mutex.
type fanout struct {
	subs  *loopSubs
	seq   uint64
	frame []byte // immutable, shared by every loop's task
}

// Run writes the frame to every subscriber that subscribed before seq was
// published; one that subscribed later was told a seq >= this one and must
// not see it.
func (f *fanout) Run(context.Context) error {
	for wc, since := range f.subs.conns {
		if since < f.seq {
			// A failed write closes the connection at once; OnClose then
			// removes it from this map, which ranging allows.
			_, _ = wc.c.Write(f.frame)
		}
	}
	return nil
}

// handle executes one client request on the connection's loop. msg is valid
// only during the call; ParseRequest copies what it keeps.
func (s *server) handle(c gnet.Conn, wc *wsConn, msg []byte) gnet.Action {
	req, rerr := peerproto.ParseRequest(msg)
	if rerr != nil {
		return writeText(c, peerproto.AppendRequestError(nil, rerr))
	}
	switch req.Op {
	case peerproto.OpSubscribe:
		ch := s.reg.Channel(req.Channel)
		ch.Lock()
		if _, in := wc.subs[req.Channel]; !in {
			addSub(ch, c.EventLoop(), wc)
			if wc.subs == nil {
				wc.subs = make(map[string]*peerproto.Channel[loopSets])
			}
			wc.subs[req.Channel] = ch
		}
		seq := ch.Seq()
		ch.Unlock()
		// Fan-out tasks run after this callback returns, so the reply
		// precedes every message with a greater seq.
		return writeText(c, peerproto.AppendSubscribed(nil, ch.Name, seq))

	case peerproto.OpUnsubscribe:
		ch, in := wc.subs[req.Channel]
		if !in {
			return writeText(c, peerproto.AppendRequestError(nil, peerproto.NotSubscribed(req.Channel)))
		}
		ch.Lock()
		removeSub(ch, c.EventLoop(), wc)
		ch.Unlock()
		delete(wc.subs, req.Channel)
		return writeText(c, peerproto.AppendUnsubscribed(nil, req.Channel))

	case peerproto.OpPublish:
		ch := s.reg.Channel(req.Channel)
		ch.Lock()
		seq, dup := ch.Next(req.ID)
		if dup {
			ch.Unlock()
			return writeText(c, peerproto.AppendDuplicate(nil, req.Channel, req.ID))
		}
		if len(ch.Subs) > 0 {
			frame := peerproto.AppendFrame(nil, peerproto.OpcodeText,
				peerproto.AppendMessage(nil, ch.Name, seq, req.ID, req.Data))
			for loop, ls := range ch.Subs {
				// Execute only queues the task and wakes the loop; it fails
				// only while the engine shuts down.
				_ = loop.Execute(context.Background(), &fanout{subs: ls, seq: seq, frame: frame})
			}
		}
		ch.Unlock()
		return writeText(c, peerproto.AppendPublished(nil, req.Channel, seq, req.ID))
	}
	return gnet.None
}
