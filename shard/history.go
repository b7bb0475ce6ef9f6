package shard

// A channel's history is a ring of its most recent messages (at most TableConfig.HistorySize),
// each held as the complete frame that was queued to the subscribers: recovery queues the same
// immutable bytes again, without encoding anything. Every shard also lists its channels' kept
// messages in publish order (hist), so that the shard's byte budget and the history TTL evict
// the oldest messages first, whatever their channel. All of it is guarded by the shard lock.

// histEntry is one kept message.
type histEntry struct {
	seq     uint64
	at      int64  // when it was published (Table clock)
	id      string // publish id, "" if none
	frame   []byte // the complete message frame: immutable, shared with connection queues
	dataOff int32  // where the message's data starts in frame; it ends one byte before the end
}

// size is what the entry counts against the byte budget: its bytes plus bookkeeping.
func (e *histEntry) size() int64 { return int64(len(e.frame)+len(e.id)) + 64 }

// history is a channel's ring of entries, oldest at head.
type history struct {
	buf  []histEntry // grows up to HistorySize
	head int
	n    int
}

// first returns the oldest kept seq.
func (h *history) first() (uint64, bool) {
	if h.n == 0 {
		return 0, false
	}
	return h.buf[h.head].seq, true
}

func (h *history) at(i int) *histEntry { return &h.buf[(h.head+i)%len(h.buf)] }

// each calls fn for every entry after seq, oldest first, until fn returns false.
func (h *history) each(after uint64, fn func(e *histEntry) bool) {
	for i := 0; i < h.n; i++ {
		if e := h.at(i); e.seq > after && !fn(e) {
			return
		}
	}
}

// push appends e to a ring of at most size entries; the caller has made room.
func (h *history) push(e histEntry, size int) {
	if len(h.buf) < size && h.n == len(h.buf) {
		// Grow: straighten a wrapped ring first, so that appending keeps the order.
		if h.head != 0 {
			h.buf = append(h.buf[h.head:len(h.buf):len(h.buf)], h.buf[:h.head]...)
			h.head = 0
		}
		h.buf = append(h.buf, e)
		h.n++
		return
	}
	h.buf[(h.head+h.n)%len(h.buf)] = e
	h.n++
}

// popOldest removes and returns the oldest entry.
func (h *history) popOldest() histEntry {
	e := h.buf[h.head]
	h.buf[h.head] = histEntry{}
	h.head = (h.head + 1) % len(h.buf)
	h.n--
	if h.n == 0 {
		h.head = 0
	}
	return e
}

// histRef names a kept message in the shard's publish-order list.
type histRef struct {
	ch  *Channel
	seq uint64
}

// keepLocked adds e to ch's history, evicting what the size, the byte budget and the TTL say.
func (t *Table) keepLocked(s *tableShard, ch *Channel, e histEntry) {
	size := t.cfg.HistorySize
	if size <= 0 {
		return
	}
	if ch.hist.n == size {
		t.dropOldestLocked(s, ch)
	}
	ch.hist.push(e, size)
	n := e.size()
	s.histBytes += n
	t.HistoryBytes.Add(n)
	t.HistoryMsgs.Add(1)
	s.hist = append(s.hist, histRef{ch: ch, seq: e.seq})
	t.expireHistoryLocked(s, e.at)
}

// dropOldestLocked evicts ch's oldest kept message.
func (t *Table) dropOldestLocked(s *tableShard, ch *Channel) {
	e := ch.hist.popOldest()
	n := e.size()
	s.histBytes -= n
	t.HistoryBytes.Add(-n)
	t.HistoryMsgs.Add(-1)
}

// dropHistoryLocked evicts all of ch's history (its references in s.hist become stale).
func (t *Table) dropHistoryLocked(s *tableShard, ch *Channel) {
	for ch.hist.n > 0 {
		t.dropOldestLocked(s, ch)
	}
}

// expireHistoryLocked evicts, oldest first, messages past the history TTL and whatever exceeds
// the shard's byte budget.
func (t *Table) expireHistoryLocked(s *tableShard, now int64) {
	ttl := int64(t.cfg.HistoryTTL)
	for s.histHead < len(s.hist) {
		r := s.hist[s.histHead]
		first, ok := r.ch.hist.first()
		if ok && first == r.seq {
			if s.histBytes <= t.bytesShard && (ttl <= 0 || now-r.ch.hist.at(0).at < ttl) {
				break
			}
			t.dropOldestLocked(s, r.ch)
		}
		// Evicted now, or earlier by its channel's size cap (a stale reference).
		s.hist[s.histHead] = histRef{}
		s.histHead++
	}
	if s.histHead > len(s.hist)/2 && s.histHead > 64 {
		n := copy(s.hist, s.hist[s.histHead:])
		clear(s.hist[n:])
		s.hist = s.hist[:n]
		s.histHead = 0
	}
}

// HistoryEntry is one message of a channel's history, as GET /api/history shows it.
type HistoryEntry struct {
	Seq  uint64
	ID   string
	Data []byte // the published JSON, borrowed from the kept frame: do not modify
}

// History returns a channel's position and up to limit kept messages, oldest first: those after
// since when since > 0, otherwise the newest ones. ok is false for a channel without numbering.
func (t *Table) History(name string, since uint64, limit int) (top Position, msgs []HistoryEntry, ok bool) {
	s := t.shard(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := t.now()
	t.sweepLocked(s, now)
	ch := s.channels[name]
	if ch == nil {
		return Position{}, nil, false
	}
	t.expireHistoryLocked(s, now)
	after := since
	if since == 0 && ch.hist.n > limit {
		after = ch.hist.at(ch.hist.n - limit - 1).seq
	}
	ch.hist.each(after, func(e *histEntry) bool {
		msgs = append(msgs, HistoryEntry{Seq: e.seq, ID: e.id, Data: e.frame[e.dataOff : len(e.frame)-1]})
		return len(msgs) < limit
	})
	return Position{Seq: ch.seq, Epoch: ch.epoch}, msgs, true
}
