package shard

import (
	"sync/atomic"

	"github.com/wsgate/wsgate/conn"
)

// member is one subscription in a loop's channel set.
type member struct {
	c    *conn.Conn
	subs *Subs  // the connection's subscription list
	k    int32  // index of this subscription in subs.list
	from uint64 // the last message handed to it (at first, the channel's seq when it joined): later ones are delivered
}

// loopChannel is one channel's subscribers on one loop.
type loopChannel struct {
	ch      *Channel
	members []member
	epoch   string // the channel's epoch as of the last Subscribe or Renumber on this loop
}

// Subs is one connection's subscriptions; the application keeps it in the connection's state.
// Loop goroutine only.
type Subs struct {
	list []subRef
}

type subRef struct {
	lc  *loopChannel
	idx int32 // index in lc.members
}

// Len returns the number of channels subscribed.
func (s *Subs) Len() int { return len(s.list) }

// Position returns subscription k's channel (the table's own string), epoch and the seq of the
// last message handed to it (0 <= k < Len): where a stream stands on each of its channels, with
// no copy of its own. Loop goroutine only.
func (s *Subs) Position(k int) (channel, epoch string, seq uint64) {
	r := s.list[k]
	return r.lc.ch.Name, r.lc.epoch, r.lc.members[r.idx].from
}

// SetSeq moves subscription k to seq: a stream replaying messages at its subscribe says how far
// it got; it must end at the position Subscribe returned, so that later deliveries follow on.
func (s *Subs) SetSeq(k int, seq uint64) {
	r := s.list[k]
	r.lc.members[r.idx].from = seq
}

// Subscribers is one loop's subscriber sets. Its methods are for the loop goroutine only.
type Subscribers struct {
	loop     int    // immutable after NewSubscribers
	table    *Table // immutable after NewSubscribers
	channels map[string]*loopChannel

	// Subscriptions on this loop: written by the loop goroutine, read by any (metrics, stats).
	Subscriptions atomic.Int64
	// StreamDeliveries counts the deliveries StreamWrite accepted: written by the loop
	// goroutine, read by any.
	StreamDeliveries atomic.Uint64

	// StreamWrite delivers to the subscribers that are streams (conn.Conn.Stream), which take
	// no WebSocket frame: it is called with the connection, the index k of the subscription in
	// its Subs (a stream subscribes to its channels once, in order, and drops them only all
	// together, so k names the channel), the message's seq (or a Renumber's position), the
	// frame and the ev argument of Deliver or Renumber; it returns whether the stream took it.
	// The application sets it before any loop runs; loop goroutine only.
	StreamWrite func(c *conn.Conn, k int, seq uint64, frame []byte, ev any) bool
}

// NewSubscribers returns the set for loop number loop of table t.
func NewSubscribers(t *Table, loop int) *Subscribers {
	if loop < 0 || loop >= maxLoops {
		panic("BUG: shard: loop index out of range")
	}
	return &Subscribers{loop: loop, table: t, channels: make(map[string]*loopChannel)}
}

// Subscribe adds c to channel name and returns the channel's position when c joined: c is
// handed every message after it. With since, it also returns the frames c missed and whether
// they are the complete gap (Table.Join); the caller queues them before anything else reaches c.
// added is false if c was already subscribed: nothing changes, nothing is replayed.
func (s *Subscribers) Subscribe(c *conn.Conn, subs *Subs, name string, since *Position) (top Position, replay [][]byte, recovered, added bool) {
	lc := s.channels[name]
	if lc != nil {
		for _, r := range subs.list {
			if r.lc == lc {
				_, top, _, _ = s.table.Join(name, s.loop, nil)
				return top, nil, false, false
			}
		}
	}
	ch, top, replay, recovered := s.table.Join(name, s.loop, since)
	if lc == nil {
		lc = &loopChannel{ch: ch}
		s.channels[name] = lc
	}
	lc.epoch = top.Epoch
	lc.members = append(lc.members, member{c: c, subs: subs, k: int32(len(subs.list)), from: top.Seq})
	subs.list = append(subs.list, subRef{lc: lc, idx: int32(len(lc.members) - 1)})
	lc.ch.Subscribers.Add(1)
	s.Subscriptions.Add(1)
	return top, replay, recovered, true
}

// Unsubscribe removes c from channel name; false if it was not subscribed.
func (s *Subscribers) Unsubscribe(subs *Subs, name string) bool {
	lc := s.channels[name]
	if lc == nil {
		return false
	}
	for k, r := range subs.list {
		if r.lc == lc {
			s.remove(subs, k)
			return true
		}
	}
	return false
}

// UnsubscribeAll removes every subscription of a connection (on close).
func (s *Subscribers) UnsubscribeAll(subs *Subs) {
	for len(subs.list) > 0 {
		s.remove(subs, len(subs.list)-1)
	}
}

// remove drops subscription k of subs, swap-removing in both lists so each is O(1).
func (s *Subscribers) remove(subs *Subs, k int) {
	r := subs.list[k]
	lc := r.lc
	// Out of the channel's member list: the last member takes the hole.
	last := len(lc.members) - 1
	if int(r.idx) != last {
		moved := lc.members[last]
		lc.members[r.idx] = moved
		moved.subs.list[moved.k].idx = r.idx
	}
	lc.members[last] = member{}
	lc.members = lc.members[:last]
	// Out of the connection's list.
	lastK := len(subs.list) - 1
	if k != lastK {
		moved := subs.list[lastK]
		subs.list[k] = moved
		moved.lc.members[moved.idx].k = int32(k)
	}
	subs.list[lastK] = subRef{}
	subs.list = subs.list[:lastK]

	lc.ch.Subscribers.Add(-1)
	s.Subscriptions.Add(-1)
	if len(lc.members) == 0 {
		delete(s.channels, lc.ch.Name)
		s.table.Leave(lc.ch, s.loop)
	}
}

// Deliver queues frame (an encoded, immutable WebSocket frame) on every subscriber of channel
// name on this loop that joined before seq, and returns how many it reached; compressed, when
// not nil, is the same message compressed once (RSV1, conn.Engine.CompressFrame), queued instead
// on the subscribers that agreed on permessage-deflate (conn.Conn.WriteFrameDeflate); stream
// subscribers get ev through StreamWrite instead. Connections whose queue is over its limit are
// closed by conn (slow consumer) and not counted. It allocates nothing once the connections'
// queues are warm.
func (s *Subscribers) Deliver(name string, seq uint64, frame, compressed []byte, ev any) int {
	return s.write(name, seq, frame, compressed, ev, false)
}

// Renumber moves every subscriber of channel name on this loop to position from under epoch (a
// numbering that restarted or got its epoch) and queues frame (the notice: a complete,
// immutable WebSocket frame) on each (ev through StreamWrite on streams), before the messages
// that follow. It returns how many it reached.
func (s *Subscribers) Renumber(name string, from uint64, epoch string, frame []byte, ev any) int {
	if lc := s.channels[name]; lc != nil {
		lc.epoch = epoch
	}
	return s.write(name, from, frame, nil, ev, true)
}

// write queues frame (or compressed, see Deliver; ev on streams) on the channel's members: with
// renumber on every one, otherwise on those that stand before pos; each then stands at pos.
func (s *Subscribers) write(name string, pos uint64, frame, compressed []byte, ev any, renumber bool) int {
	lc := s.channels[name]
	if lc == nil {
		return 0
	}
	n, streams := 0, 0
	// Closing a slow consumer unsubscribes it (OnClose) and swap-removes it from members, so
	// walk from the end: a removal only moves an already-visited member.
	for i := len(lc.members) - 1; i >= 0; i-- {
		if i >= len(lc.members) {
			continue
		}
		m := &lc.members[i]
		if !renumber && m.from >= pos {
			continue
		}
		m.from = pos
		if m.c.Stream() {
			if s.StreamWrite != nil && s.StreamWrite(m.c, int(m.k), pos, frame, ev) {
				n++
				streams++
			}
			continue
		}
		if m.c.WriteFrameDeflate(frame, compressed) == nil {
			n++
		}
	}
	if streams > 0 {
		s.StreamDeliveries.Add(uint64(streams))
	}
	return n
}

// Each calls fn for every subscriber of channel name on this loop (the pub/sub gateway finds a
// user's connections as the subscribers of the user's personal channel). fn may close the
// connection it is given (a close takes effect after this call: OnClose unsubscribes later);
// it must not subscribe or unsubscribe. It allocates nothing.
func (s *Subscribers) Each(name string, fn func(c *conn.Conn)) {
	lc := s.channels[name]
	if lc == nil {
		return
	}
	for i := len(lc.members) - 1; i >= 0; i-- {
		if i < len(lc.members) {
			fn(lc.members[i].c)
		}
	}
}

// Channels returns the number of channels with subscribers on this loop.
func (s *Subscribers) Channels() int { return len(s.channels) }
