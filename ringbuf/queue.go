package ringbuf

// chunkSize is the owned chunk size used for small frames; many of them are coalesced into one
// chunk so that a flush of many small frames is a single iovec.
const chunkSize = 4 << 10

// segment is a byte range waiting to be written: b[off:] is pending.
type segment struct {
	b     []byte
	off   int
	owned bool // b came from the Pool and goes back to it when fully written
}

// Queue is one connection's outbound byte queue: a ring of segments in write order.
// Loop goroutine only. Obtain one with Pool.Queue and hand it back with Release once empty, so an
// idle connection holds no Queue.
type Queue struct {
	pool  *Pool
	segs  []segment // ring storage, len is a power of two
	head  int       // index of the first pending segment
	n     int       // segments pending
	bytes int       // bytes pending
}

// Queue returns an empty Queue bound to p.
func (p *Pool) Queue() *Queue {
	if l := len(p.queues); l > 0 {
		q := p.queues[l-1]
		p.queues[l-1] = nil
		p.queues = p.queues[:l-1]
		return q
	}
	return &Queue{pool: p, segs: make([]segment, 8)}
}

// Release returns every owned chunk and the Queue itself to its Pool. q must not be used after.
func (q *Queue) Release() {
	q.Reset()
	q.pool.queues = append(q.pool.queues, q)
}

// Reset drops everything pending, returning owned chunks to the Pool.
func (q *Queue) Reset() {
	for q.n > 0 {
		q.popFront()
	}
	q.head, q.bytes = 0, 0
}

// Len returns the number of bytes pending.
func (q *Queue) Len() int { return q.bytes }

// Segments returns the number of segments pending (each becomes one iovec).
func (q *Queue) Segments() int { return q.n }

func (q *Queue) at(i int) *segment { return &q.segs[(q.head+i)&(len(q.segs)-1)] }

func (q *Queue) push(s segment) {
	if q.n == len(q.segs) {
		grown := make([]segment, 2*len(q.segs))
		for i := 0; i < q.n; i++ {
			grown[i] = *q.at(i)
		}
		q.segs, q.head = grown, 0
	}
	*q.at(q.n) = s
	q.n++
}

func (q *Queue) popFront() {
	s := q.at(0)
	if s.owned {
		q.pool.Put(s.b)
	}
	*s = segment{}
	q.head = (q.head + 1) & (len(q.segs) - 1)
	q.n--
}

// Grow returns a slice of exactly n bytes at the end of the queue for the caller to fill before
// any other call on q (the bytes count as pending at once). Small writes share the tail chunk.
func (q *Queue) Grow(n int) []byte {
	q.bytes += n
	if q.n > 0 {
		t := q.at(q.n - 1)
		if t.owned && cap(t.b)-len(t.b) >= n {
			l := len(t.b)
			t.b = t.b[:l+n]
			return t.b[l : l+n]
		}
	}
	// The first chunk of an empty queue is sized for what is written (a handshake response, one
	// ping, one echo: usually one small frame, after which the queue drains and is released);
	// later chunks take chunkSize so that a burst of small frames coalesces. After a connect
	// storm the pool then holds small chunks, not 4 KiB per handshake.
	size := n
	if q.n > 0 && size < chunkSize {
		size = chunkSize
	}
	b := q.pool.Get(size)[:n]
	q.push(segment{b: b, owned: true})
	return b
}

// Write copies p to the end of the queue.
func (q *Queue) Write(p []byte) {
	copy(q.Grow(len(p)), p)
}

// Ref queues a reference to b without copying. b must never be modified afterwards (by anyone);
// it stays referenced until the socket has taken all of it or the queue is reset.
func (q *Queue) Ref(b []byte) {
	if len(b) == 0 {
		return
	}
	q.bytes += len(b)
	q.push(segment{b: b})
}

// Views appends the pending bytes to dst as one slice per segment, in write order, at most max
// of them, and returns dst: the iovec array of the next writev(2), in the shape netpoll's Writev
// takes. The slices point into the queue's segments: they are read-only, and valid until the
// next call that changes q. Once the socket has taken n bytes, Advance(n) consumes them.
func (q *Queue) Views(dst [][]byte, max int) [][]byte {
	for i := 0; i < q.n && i < max; i++ {
		s := q.at(i)
		dst = append(dst, s.b[s.off:])
	}
	return dst
}

// Advance consumes n written bytes from the front, returning fully written owned chunks to the
// Pool. n must not exceed Len.
func (q *Queue) Advance(n int) {
	if n > q.bytes {
		panic("BUG: ringbuf: Advance past the queued bytes")
	}
	q.bytes -= n
	for n > 0 {
		s := q.at(0)
		rest := len(s.b) - s.off
		if n < rest {
			s.off += n
			return
		}
		n -= rest
		q.popFront()
	}
	// A fully drained queue starts its next chunk from the beginning.
	if q.n == 0 {
		q.head = 0
	}
}
