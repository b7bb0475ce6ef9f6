package peerproto

import "sync"

// DedupWindow is how many of the most recent publish ids a channel remembers
// for duplicate detection. A publish whose id is among them is answered with
// {"op":"duplicate"} and not delivered. wsgate remembers ids for a span of
// time instead; the benchmarks never repeat an id, so the difference does
// not show in them.
const DedupWindow = 4096

// Registry maps channel names to channels. It is safe for concurrent use by
// any goroutine. Channels are created on first use and never removed, so a
// channel's seq survives its subscribers coming and going.
type Registry[S any] struct {
	mu      sync.RWMutex
	chans   map[string]*Channel[S]
	newSubs func() S
}

// NewRegistry returns an empty registry. newSubs builds the subscriber set of
// each new channel (for example a map from connection to struct{}).
func NewRegistry[S any](newSubs func() S) *Registry[S] {
	return &Registry[S]{chans: make(map[string]*Channel[S]), newSubs: newSubs}
}

// Channel returns the channel called name, creating it when absent. The
// returned pointer is valid for the life of the registry.
func (r *Registry[S]) Channel(name string) *Channel[S] {
	r.mu.RLock()
	ch := r.chans[name]
	r.mu.RUnlock()
	if ch != nil {
		return ch
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ch = r.chans[name]; ch == nil {
		ch = &Channel[S]{Name: name, Subs: r.newSubs()}
		r.chans[name] = ch
	}
	return ch
}

// Channel is one pub/sub channel. Name is immutable; every other field and
// method requires the caller to hold the channel's mutex (Lock/Unlock).
type Channel[S any] struct {
	// Name is the channel name; immutable.
	Name string
	// Subs is the peer's subscriber set; guarded by the channel mutex.
	Subs S

	mu  sync.Mutex
	seq uint64
	ids idWindow
}

// Lock acquires the channel mutex. Peers hold it while they change Subs and
// while they enqueue a publish to every subscriber, which is what keeps each
// subscriber's stream in seq order.
func (c *Channel[S]) Lock() { c.mu.Lock() }

// Unlock releases the channel mutex.
func (c *Channel[S]) Unlock() { c.mu.Unlock() }

// Seq returns the seq of the last accepted publish (0 before the first one).
// The caller holds the channel mutex.
func (c *Channel[S]) Seq() uint64 { return c.seq }

// Next accepts one publish: when id is non-empty and among the channel's
// last DedupWindow ids it returns dup=true and changes nothing; otherwise it
// records id, advances the seq by one and returns it. The caller holds the
// channel mutex.
func (c *Channel[S]) Next(id string) (seq uint64, dup bool) {
	if id != "" && !c.ids.add(id) {
		return c.seq, true
	}
	c.seq++
	return c.seq, false
}

// idWindow remembers the last DedupWindow distinct ids in arrival order.
// The zero value is empty and ready to use.
type idWindow struct {
	set  map[string]struct{}
	ring []string // len <= DedupWindow; ring[next] is the oldest when full
	next int
}

// add records id and reports true, or reports false when id is already in
// the window.
func (w *idWindow) add(id string) bool {
	if _, seen := w.set[id]; seen {
		return false
	}
	if w.set == nil {
		w.set = make(map[string]struct{})
	}
	if len(w.ring) < DedupWindow {
		w.ring = append(w.ring, id)
	} else {
		delete(w.set, w.ring[w.next])
		w.ring[w.next] = id
		w.next = (w.next + 1) % DedupWindow
	}
	w.set[id] = struct{}{}
	return true
}
