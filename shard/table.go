package shard

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
)

// numShards is the number of lock shards of a Table: enough that concurrent publishers and
// subscribing loops rarely meet on one lock, few enough to walk for listings.
const numShards = 64

// maxLoops is the most loops a Table tracks (a 256-bit set per channel).
const maxLoops = 256

// Channel is a channel's shared state. Fields other than Subscribers are guarded by the shard
// lock.
type Channel struct {
	Name        string
	seq         uint64
	loops       [maxLoops / 64]uint64 // loops that have at least one subscriber
	loopCount   int
	Subscribers atomic.Int64 // across all loops; readable without the lock
}

type dedupEntry struct {
	key    string
	expiry int64
}

type tableShard struct {
	mu       sync.Mutex
	channels map[string]*Channel
	// Publish ids seen, per channel: key is channel + "\x00" + id. fifo keeps insertion order for
	// expiry and for the size cap (oldest evicted first).
	seen     map[string]int64
	fifo     []dedupEntry
	fifoHead int
	_        [40]byte // keep shards' locks on separate cache lines
}

// Table is the sharded channel table. Any goroutine may call its methods.
type Table struct {
	shards      [numShards]tableShard
	window      int64 // dedup window, ns
	capPerShard int
	now         func() int64

	Channels   atomic.Int64
	Publishes  atomic.Uint64
	Duplicates atomic.Uint64
	DedupIDs   atomic.Int64
}

// NewTable returns a table whose dedup window is window (0 disables dedup) holding at most
// maxIDs publish ids in all (spread over the shards; the oldest go first). now is a monotonic
// clock in ns (nil: the process's monotonic clock).
func NewTable(window time.Duration, maxIDs int, now func() int64) *Table {
	if now == nil {
		base := time.Now()
		now = func() int64 { return int64(time.Since(base)) }
	}
	t := &Table{window: int64(window), capPerShard: max(1, maxIDs/numShards), now: now}
	for i := range t.shards {
		t.shards[i].channels = make(map[string]*Channel)
		t.shards[i].seen = make(map[string]int64)
	}
	return t
}

func (t *Table) shard(name string) *tableShard {
	return &t.shards[xxhash.Sum64String(name)&(numShards-1)]
}

// Join records that loop now has its first subscriber of the channel, creating the channel if
// needed, and returns it with its current sequence number (a subscriber sees messages after it).
func (t *Table) Join(name string, loop int) (*Channel, uint64) {
	s := t.shard(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[name]
	if ch == nil {
		ch = &Channel{Name: name}
		s.channels[name] = ch
		t.Channels.Add(1)
	}
	w, b := loop/64, uint64(1)<<(loop%64)
	if ch.loops[w]&b == 0 {
		ch.loops[w] |= b
		ch.loopCount++
	}
	return ch, ch.seq
}

// Seq returns a channel's current sequence number (for a connection joining a channel its loop
// already has).
func (t *Table) Seq(ch *Channel) uint64 {
	s := t.shard(ch.Name)
	s.mu.Lock()
	defer s.mu.Unlock()
	return ch.seq
}

// Leave records that loop has no subscriber of ch any more; the channel is dropped when no loop
// has one (its sequence starts again from 0 if it is subscribed again).
func (t *Table) Leave(ch *Channel, loop int) {
	s := t.shard(ch.Name)
	s.mu.Lock()
	defer s.mu.Unlock()
	w, b := loop/64, uint64(1)<<(loop%64)
	if ch.loops[w]&b == 0 {
		return
	}
	ch.loops[w] &^= b
	ch.loopCount--
	if ch.loopCount == 0 && s.channels[ch.Name] == ch {
		delete(s.channels, ch.Name)
		t.Channels.Add(-1)
	}
}

// PublishResult says what a publish did.
type PublishResult struct {
	Seq       uint64
	Duplicate bool
}

// Publish assigns the next sequence number of channel name and calls post(loop, seq) for every
// loop with subscribers, all under the shard lock, so that the per-loop task queues receive a
// channel's messages in sequence order. encode(seq) runs first, under the lock, and builds the
// message (once, for every loop). A non-empty id seen on this channel within the window makes it
// a duplicate: nothing is posted and no sequence number is used. A channel without subscribers
// uses no sequence number either (nobody could observe it) but still records the id.
func (t *Table) Publish(name, id string, encode func(seq uint64), post func(loop int, seq uint64)) PublishResult {
	s := t.shard(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if id != "" && t.window > 0 {
		if t.seenLocked(s, name, id) {
			t.Duplicates.Add(1)
			return PublishResult{Duplicate: true}
		}
	}
	t.Publishes.Add(1)
	ch := s.channels[name]
	if ch == nil {
		return PublishResult{}
	}
	ch.seq++
	encode(ch.seq)
	for w, word := range ch.loops {
		for word != 0 {
			bit := word & -word
			word &^= bit
			post(w*64+trailingZeros(bit), ch.seq)
		}
	}
	return PublishResult{Seq: ch.seq}
}

func trailingZeros(x uint64) int {
	n := 0
	for x&1 == 0 {
		x >>= 1
		n++
	}
	return n
}

// seenLocked reports whether id was published on name within the window, recording it if not.
func (t *Table) seenLocked(s *tableShard, name, id string) bool {
	now := t.now()
	// Expire from the front of the FIFO.
	for s.fifoHead < len(s.fifo) && (s.fifo[s.fifoHead].expiry <= now || len(s.fifo)-s.fifoHead > t.capPerShard) {
		e := s.fifo[s.fifoHead]
		if exp, ok := s.seen[e.key]; ok && exp == e.expiry {
			delete(s.seen, e.key)
			t.DedupIDs.Add(-1)
		}
		s.fifo[s.fifoHead] = dedupEntry{}
		s.fifoHead++
	}
	if s.fifoHead > len(s.fifo)/2 && s.fifoHead > 64 {
		n := copy(s.fifo, s.fifo[s.fifoHead:])
		clear(s.fifo[n:])
		s.fifo = s.fifo[:n]
		s.fifoHead = 0
	}
	key := name + "\x00" + id
	if exp, ok := s.seen[key]; ok && exp > now {
		return true
	}
	exp := now + t.window
	if _, ok := s.seen[key]; !ok {
		t.DedupIDs.Add(1)
	}
	s.seen[key] = exp
	s.fifo = append(s.fifo, dedupEntry{key: key, expiry: exp})
	if len(s.fifo)-s.fifoHead > t.capPerShard {
		e := s.fifo[s.fifoHead]
		if ex, ok := s.seen[e.key]; ok && ex == e.expiry {
			delete(s.seen, e.key)
			t.DedupIDs.Add(-1)
		}
		s.fifo[s.fifoHead] = dedupEntry{}
		s.fifoHead++
	}
	return false
}

// ChannelInfo is one row of a channel listing.
type ChannelInfo struct {
	Channel     string `json:"channel"`
	Subscribers int64  `json:"subscribers"`
	Seq         uint64 `json:"seq"`
}

// List returns every channel with its subscriber count, in no particular order.
func (t *Table) List() []ChannelInfo {
	var out []ChannelInfo
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for _, ch := range s.channels {
			out = append(out, ChannelInfo{Channel: ch.Name, Subscribers: ch.Subscribers.Load(), Seq: ch.seq})
		}
		s.mu.Unlock()
	}
	return out
}
