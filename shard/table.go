package shard

import (
	"crypto/rand"
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

// Channel is a channel's shared state. Name is immutable; Subscribers is an atomic any goroutine
// may read; every other field is guarded by the channel's shard lock.
type Channel struct {
	Name        string
	Subscribers atomic.Int64 // across all loops

	seq       uint64 // the last message's number; 0 before the first
	epoch     string // names this numbering; a new one whenever numbering starts again
	streamSeq uint64 // External: the stream position of the last message applied
	loops     [maxLoops / 64]uint64
	loopCount int
	active    int64 // when the last publish happened or the last subscriber left (meta TTL)
	hist      history
}

// Position is a place in a channel's numbering: the last message seen, and the epoch it belongs
// to.
type Position struct {
	Seq   uint64
	Epoch string
}

// TableConfig configures a Table. Zero values: no dedup, no history, channels' numbering kept
// for DefaultMetaTTL after their last publish or subscriber.
type TableConfig struct {
	// DedupWindow is how long a publish id is remembered per channel; 0 disables dedup.
	DedupWindow time.Duration
	// DedupMaxIDs bounds the ids remembered across all channels (the oldest go first).
	DedupMaxIDs int
	// HistorySize is how many recent messages each channel keeps for recovery; 0 keeps none.
	HistorySize int
	// HistoryTTL is how long a message stays in history (0: until pushed out by size or bytes).
	HistoryTTL time.Duration
	// MetaTTL is how long a channel's numbering and epoch outlive its last publish and its last
	// subscriber (default DefaultMetaTTL).
	MetaTTL time.Duration
	// HistoryMaxBytes bounds the bytes held in history across all channels (default
	// DefaultHistoryMaxBytes); the oldest messages go first. Each shard holds 1/64 of it.
	HistoryMaxBytes int64
	// Now is a monotonic clock in ns (nil: the process's monotonic clock).
	Now func() int64
	// External says that messages are numbered elsewhere (a cluster's stream) and reach the
	// table through Apply: a channel first met in Join has no epoch until its first message.
	External bool
}

// Defaults of TableConfig.
const (
	DefaultMetaTTL         = 24 * time.Hour
	DefaultHistoryMaxBytes = 64 << 20
)

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
	// History of every channel of the shard in publish order, for the byte budget and the TTL.
	hist      []histRef
	histHead  int
	histBytes int64
	nextSweep int64 // when channels past their meta TTL are next looked for
	_         [40]byte
}

// Table is the sharded channel table. Any goroutine may call its methods.
type Table struct {
	shards      [numShards]tableShard
	cfg         TableConfig // immutable after NewTable
	capPerShard int         // dedup ids per shard
	bytesShard  int64       // history bytes per shard
	now         func() int64

	// Counters: any goroutine reads them; they change under shard locks.
	Channels     atomic.Int64
	Publishes    atomic.Uint64
	Duplicates   atomic.Uint64
	DedupIDs     atomic.Int64
	HistoryBytes atomic.Int64
	HistoryMsgs  atomic.Int64
}

// NewTable returns an empty table.
func NewTable(cfg TableConfig) *Table {
	if cfg.Now == nil {
		base := time.Now()
		cfg.Now = func() int64 { return int64(time.Since(base)) }
	}
	if cfg.MetaTTL <= 0 {
		cfg.MetaTTL = DefaultMetaTTL
	}
	if cfg.HistoryMaxBytes <= 0 {
		cfg.HistoryMaxBytes = DefaultHistoryMaxBytes
	}
	t := &Table{cfg: cfg, capPerShard: max(1, cfg.DedupMaxIDs/numShards),
		bytesShard: max(1, cfg.HistoryMaxBytes/numShards), now: cfg.Now}
	for i := range t.shards {
		t.shards[i].channels = make(map[string]*Channel)
		t.shards[i].seen = make(map[string]int64)
	}
	return t
}

func (t *Table) shard(name string) *tableShard {
	return &t.shards[xxhash.Sum64String(name)&(numShards-1)]
}

// NewEpoch returns a fresh epoch: 8 characters of [A-Z2-7] (never ':' or ',').
func NewEpoch() string {
	return rand.Text()[:8]
}

// channelLocked returns the channel, creating it (with a new epoch) if needed. Shard lock held.
func (t *Table) channelLocked(s *tableShard, name string, now int64) *Channel {
	t.sweepLocked(s, now)
	ch := s.channels[name]
	if ch == nil {
		ch = &Channel{Name: name, active: now}
		if !t.cfg.External {
			ch.epoch = NewEpoch()
		}
		s.channels[name] = ch
		t.Channels.Add(1)
	}
	return ch
}

// Join records that loop has a subscriber of the channel (creating the channel if needed) and
// returns it with its current position. With since, it also returns the frames of the messages
// after since.Seq (oldest first) and recovered=true when they are exactly the ones the
// subscriber missed: same epoch, and history holds every message from since.Seq+1 to the top.
// Otherwise recovered is false and nothing is replayed. A subscriber that joins here receives
// every message after the returned position, and only those: the position and the replay are
// read under the lock under which publishes are numbered and posted.
func (t *Table) Join(name string, loop int, since *Position) (ch *Channel, top Position, replay [][]byte, recovered bool) {
	s := t.shard(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := t.now()
	ch = t.channelLocked(s, name, now)
	w, b := loop/64, uint64(1)<<(loop%64)
	if ch.loops[w]&b == 0 {
		ch.loops[w] |= b
		ch.loopCount++
	}
	top = Position{Seq: ch.seq, Epoch: ch.epoch}
	if since != nil {
		replay, recovered = t.recoverLocked(s, ch, *since, now)
	}
	return ch, top, replay, recovered
}

// recoverLocked returns the frames after since and whether they are the complete gap.
func (t *Table) recoverLocked(s *tableShard, ch *Channel, since Position, now int64) ([][]byte, bool) {
	if since.Epoch != ch.epoch || since.Seq > ch.seq {
		return nil, false
	}
	if since.Seq == ch.seq {
		return nil, true
	}
	t.expireHistoryLocked(s, now)
	first, ok := ch.hist.first()
	if !ok || first > since.Seq+1 {
		return nil, false
	}
	var out [][]byte
	ch.hist.each(since.Seq, func(e *histEntry) bool {
		out = append(out, e.frame)
		return true
	})
	return out, true
}

// Leave records that loop has no subscriber of ch any more. The channel's numbering survives
// for MetaTTL after the last of its publishes and subscribers.
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
	ch.active = t.now()
}

// PublishResult says what a publish did.
type PublishResult struct {
	Seq       uint64
	Epoch     string
	Duplicate bool
}

// Publish assigns the next sequence number of channel name (creating the channel if needed),
// keeps the message in history and calls post(loop, seq) for every loop with subscribers, all
// under the shard lock, so that the per-loop task queues receive a channel's messages in
// sequence order. encode(seq, epoch) runs first, under the lock, and returns the message's frame
// (built once, for history and every loop) and the offset of its data inside the frame. A
// non-empty id seen on this channel within the dedup window makes it a duplicate: nothing is
// numbered, kept or posted.
func (t *Table) Publish(name, id string, encode func(seq uint64, epoch string) (frame []byte, dataOff int),
	post func(loop int, seq uint64)) PublishResult {
	s := t.shard(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := t.now()
	if id != "" && t.cfg.DedupWindow > 0 {
		if t.seenLocked(s, name, id, now) {
			t.Duplicates.Add(1)
			return PublishResult{Duplicate: true}
		}
	}
	t.Publishes.Add(1)
	ch := t.channelLocked(s, name, now)
	ch.seq++
	ch.active = now
	frame, off := encode(ch.seq, ch.epoch)
	t.keepLocked(s, ch, histEntry{seq: ch.seq, at: now, id: id, frame: frame, dataOff: int32(off)})
	t.postLocked(ch, post)
	return PublishResult{Seq: ch.seq, Epoch: ch.epoch}
}

func (t *Table) postLocked(ch *Channel, post func(loop int, seq uint64)) {
	for w, word := range ch.loops {
		for word != 0 {
			bit := word & -word
			word &^= bit
			post(w*64+trailingZeros(bit), ch.seq)
		}
	}
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
func (t *Table) seenLocked(s *tableShard, name, id string, now int64) bool {
	// Expire from the front of the FIFO.
	for s.fifoHead < len(s.fifo) && (s.fifo[s.fifoHead].expiry <= now || len(s.fifo)-s.fifoHead > t.capPerShard) {
		t.forgetOldestIDLocked(s)
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
	exp := now + int64(t.cfg.DedupWindow)
	if _, ok := s.seen[key]; !ok {
		t.DedupIDs.Add(1)
	}
	s.seen[key] = exp
	s.fifo = append(s.fifo, dedupEntry{key: key, expiry: exp})
	if len(s.fifo)-s.fifoHead > t.capPerShard {
		t.forgetOldestIDLocked(s)
	}
	return false
}

// forgetOldestIDLocked drops the FIFO's head (and its id, unless the id was recorded again).
func (t *Table) forgetOldestIDLocked(s *tableShard) {
	e := s.fifo[s.fifoHead]
	if exp, ok := s.seen[e.key]; ok && exp == e.expiry {
		delete(s.seen, e.key)
		t.DedupIDs.Add(-1)
	}
	s.fifo[s.fifoHead] = dedupEntry{}
	s.fifoHead++
}

// sweepLocked drops the shard's channels that have had no publish and no subscriber for
// MetaTTL, at most once per MetaTTL/8 per shard (each look walks the shard's channels).
func (t *Table) sweepLocked(s *tableShard, now int64) {
	if now < s.nextSweep {
		return
	}
	s.nextSweep = now + int64(t.cfg.MetaTTL)/8
	for name, ch := range s.channels {
		if ch.loopCount == 0 && now-ch.active >= int64(t.cfg.MetaTTL) {
			t.dropHistoryLocked(s, ch)
			delete(s.channels, name)
			t.Channels.Add(-1)
		}
	}
}

// ChannelInfo is one row of a channel listing.
type ChannelInfo struct {
	Channel     string `json:"channel"`
	Subscribers int64  `json:"subscribers"`
	Seq         uint64 `json:"seq"`
	Epoch       string `json:"epoch"`
}

// List returns every channel with its subscriber count, in no particular order.
func (t *Table) List() []ChannelInfo {
	var out []ChannelInfo
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		t.sweepLocked(s, t.now())
		for _, ch := range s.channels {
			out = append(out, ChannelInfo{Channel: ch.Name, Subscribers: ch.Subscribers.Load(), Seq: ch.seq, Epoch: ch.epoch})
		}
		s.mu.Unlock()
	}
	return out
}

// Numbered is a message numbered elsewhere (External tables).
type Numbered struct {
	Channel   string
	Seq       uint64
	Epoch     string
	ID        string
	StreamSeq uint64        // its position in the stream: anything at or below what was applied is old
	Age       time.Duration // how long ago it was published (for the history TTL)
}

// Notice tells a loop's subscribers of a channel that its numbering changed before the message
// that follows: they now stand at From under Epoch. Restarted says whether the numbering started
// again (they may have lost messages) rather than the channel receiving its first epoch.
type Notice struct {
	From      uint64
	Epoch     string
	Restarted bool
}

// Apply adds a message numbered elsewhere, as Publish does for its own: it is kept in history
// and posted to every loop with subscribers, in stream order. Messages already applied are
// ignored (false). A message under another epoch restarts the channel's numbering, and a gap
// empties its history (a replay must never skip messages); either way notice(loop, ...) is
// called first for every loop with subscribers.
func (t *Table) Apply(m Numbered, encode func(seq uint64) (frame []byte, dataOff int),
	notice func(loop int, n Notice), post func(loop int, seq uint64)) bool {
	s := t.shard(m.Channel)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := t.now()
	ch := t.channelLocked(s, m.Channel, now)
	if m.StreamSeq <= ch.streamSeq {
		return false
	}
	switch {
	case ch.epoch == "" && ch.seq == 0:
		ch.epoch = m.Epoch
		t.noticeLocked(ch, notice, Notice{From: m.Seq - 1, Epoch: m.Epoch})
	case ch.epoch != m.Epoch:
		t.dropHistoryLocked(s, ch)
		ch.epoch = m.Epoch
		t.noticeLocked(ch, notice, Notice{From: m.Seq - 1, Epoch: m.Epoch, Restarted: true})
	case m.Seq <= ch.seq:
		ch.streamSeq = m.StreamSeq
		return false
	case m.Seq > ch.seq+1:
		t.dropHistoryLocked(s, ch)
	}
	ch.seq, ch.streamSeq, ch.active = m.Seq, m.StreamSeq, now
	t.Publishes.Add(1)
	frame, off := encode(m.Seq)
	t.keepLocked(s, ch, histEntry{seq: m.Seq, at: now - int64(m.Age), id: m.ID, frame: frame, dataOff: int32(off)})
	t.postLocked(ch, post)
	return true
}

func (t *Table) noticeLocked(ch *Channel, notice func(loop int, n Notice), n Notice) {
	for w, word := range ch.loops {
		for word != 0 {
			bit := word & -word
			word &^= bit
			notice(w*64+trailingZeros(bit), n)
		}
	}
}

// Last returns what the table knows of a channel's last message: its stream position, number and
// epoch (a publisher's first guess for a compare-and-set; zeros when unknown).
func (t *Table) Last(name string) (streamSeq, seq uint64, epoch string) {
	s := t.shard(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.channels[name]; ch != nil {
		return ch.streamSeq, ch.seq, ch.epoch
	}
	return 0, 0, ""
}
