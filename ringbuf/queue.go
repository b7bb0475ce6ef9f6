package ringbuf

// chunkSize is the owned chunk size used for small frames; many of them are coalesced into one
// chunk so that a flush of many small frames is a single iovec.
const chunkSize = 4 << 10

// segment is a byte range waiting to be written: b[off:] is pending.
//
// A copied segment views part of a chunk borrowed from the Pool (chunk, with the class size as
// its cap); several consecutive copied segments may view one chunk, with shared segments between
// them (a stream's own id lines between the shared events they precede). The last of them owns
// the chunk: it goes back to the Pool when that segment is fully written (or dropped).
type segment struct {
	b     []byte
	off   int
	chunk []byte // the Pool chunk b is in; nil for a shared segment
	owner bool   // this segment returns chunk to the Pool when done
}

// Queue is one connection's outbound byte queue: a ring of segments in write order.
// Loop goroutine only. Obtain one with Pool.Queue and hand it back with Release once empty, so an
// idle connection holds no Queue.
//
// Units. Each Grow, Write or Ref call queues one unit (for a connection: one frame, or the HTTP
// response of the handshake), and the Queue remembers where each unit ends, so that Cut can drop
// what is queued without ever ending the byte stream inside a unit. A unit never spans segments;
// a segment may hold several units (small frames coalesced into one owned chunk).
//
// Positions. in and out count bytes from the moment the queue was last empty: out is the stream
// position of the first pending byte, in the position after the last one (Len is in - out).
// start is where the unit holding out begins: out > start means the socket has taken part of
// that unit. ends is a ring of the end positions of the pending units, in order.
type Queue struct {
	pool  *Pool
	segs  []segment // ring storage, len is a power of two
	head  int       // index of the first pending segment
	n     int       // segments pending
	ends  []int     // ring of unit end positions, len is a power of two
	eh    int       // index of the first pending unit's end
	en    int       // units pending
	in    int       // position after the last queued byte
	out   int       // position of the first pending byte
	start int       // position where the first pending unit begins (<= out)
	// cur is the chunk Grow fills (len: the bytes used), owned by the last copied segment; nil
	// when there is none or it may not take more (after a Cut).
	cur []byte
}

// Queue returns an empty Queue bound to p.
func (p *Pool) Queue() *Queue {
	if l := len(p.queues); l > 0 {
		q := p.queues[l-1]
		p.queues[l-1] = nil
		p.queues = p.queues[:l-1]
		return q
	}
	return &Queue{pool: p, segs: make([]segment, 8), ends: make([]int, 8)}
}

// Release returns every owned chunk and the Queue itself to its Pool. q must not be used after.
func (q *Queue) Release() {
	q.Reset()
	q.pool.queues = append(q.pool.queues, q)
}

// Reset drops everything pending, returning owned chunks to the Pool.
func (q *Queue) Reset() {
	q.pool.Pending -= int64(q.in - q.out)
	for q.n > 0 {
		q.popFront()
	}
	q.head, q.eh, q.en, q.in, q.out, q.start = 0, 0, 0, 0, 0, 0
	q.cur = nil
}

// Len returns the number of bytes pending.
func (q *Queue) Len() int { return q.in - q.out }

// Segments returns the number of segments pending (each becomes one iovec).
func (q *Queue) Segments() int { return q.n }

// Units returns the number of units pending (the partly written one included).
func (q *Queue) Units() int { return q.en }

// Started reports whether the socket has taken part, but not all, of the first pending unit.
func (q *Queue) Started() bool { return q.out > q.start }

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
	if s.owner {
		if q.cur != nil && sameChunk(q.cur, s.chunk) {
			q.cur = nil
		}
		q.pool.Put(s.chunk)
	}
	*s = segment{}
	q.head = (q.head + 1) & (len(q.segs) - 1)
	q.n--
}

// endUnit records that a unit of n bytes was just queued.
func (q *Queue) endUnit(n int) {
	q.in += n
	q.pool.Pending += int64(n)
	if q.en == len(q.ends) {
		grown := make([]int, 2*len(q.ends))
		for i := 0; i < q.en; i++ {
			grown[i] = q.ends[(q.eh+i)&(len(q.ends)-1)]
		}
		q.ends, q.eh = grown, 0
	}
	q.ends[(q.eh+q.en)&(len(q.ends)-1)] = q.in
	q.en++
}

// Grow returns a slice of exactly n bytes at the end of the queue for the caller to fill, as one
// unit, before any other call on q (the bytes count as pending at once). Small writes share the
// tail chunk.
func (q *Queue) Grow(n int) []byte {
	if n == 0 {
		return nil
	}
	q.endUnit(n)
	if c := q.cur; c != nil && cap(c)-len(c) >= n {
		l := len(c)
		q.cur = c[:l+n]
		t := q.at(q.n - 1)
		if t.owner && sameChunk(t.chunk, c) && cap(t.b)-len(t.b) == cap(c)-l {
			// The tail views the end of cur: it grows.
			t.b = t.b[:len(t.b)+n]
			return c[l : l+n]
		}
		// Shared bytes came after cur's last segment: a new segment views the next bytes of
		// cur and takes over the chunk (the owner is always cur's last copied segment).
		for i := q.n - 1; i >= 0; i-- {
			if s := q.at(i); s.owner {
				s.owner = false
				break
			}
		}
		q.push(segment{b: c[l : l+n], chunk: c[:0], owner: true})
		return c[l : l+n]
	}
	// The first chunk of an empty queue is sized for what is written (a handshake response, one
	// ping, one echo: usually one small frame, after which the queue drains and is released);
	// later chunks take chunkSize so that a burst of small frames coalesces. After a connect
	// storm the pool then holds small chunks, not 4 KiB per handshake.
	size := n
	if q.n > 0 && size < chunkSize {
		size = chunkSize
	}
	c := q.pool.Get(size)
	q.cur = c[:n]
	q.push(segment{b: c[:n], chunk: c[:0], owner: true})
	return c[:n]
}

// Write copies p to the end of the queue, as one unit.
func (q *Queue) Write(p []byte) {
	copy(q.Grow(len(p)), p)
}

// Ref queues a reference to b without copying, as one unit. b must never be modified afterwards
// (by anyone); it stays referenced until the socket has taken all of it or the queue is reset.
func (q *Queue) Ref(b []byte) {
	if len(b) == 0 {
		return
	}
	q.endUnit(len(b))
	q.push(segment{b: b})
}

// RefCont queues a reference to b without copying, as the rest of the unit queued last (so a
// unit may be a copied prefix followed by shared bytes: a stream event whose id line is the
// connection's own and whose body is shared by every subscriber). Cut treats the two as one:
// it never ends the byte stream between them. With nothing pending it is Ref. b must never be
// modified afterwards.
func (q *Queue) RefCont(b []byte) {
	if len(b) == 0 {
		return
	}
	if q.en == 0 {
		q.Ref(b)
		return
	}
	q.in += len(b)
	q.pool.Pending += int64(len(b))
	q.ends[(q.eh+q.en-1)&(len(q.ends)-1)] = q.in
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
	if n > q.Len() {
		panic("BUG: ringbuf: Advance past the queued bytes")
	}
	q.out += n
	q.pool.Pending -= int64(n)
	for q.en > 0 && q.ends[q.eh] <= q.out {
		q.start = q.ends[q.eh]
		q.eh = (q.eh + 1) & (len(q.ends) - 1)
		q.en--
	}
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
	// A fully drained queue starts its next chunk, and its positions, from the beginning.
	if q.n == 0 {
		q.head, q.eh, q.in, q.out, q.start = 0, 0, 0, 0, 0
	}
}

// Cut drops every pending unit the socket has not started to take, and keeps the rest of the
// one it has partly taken (Started), so that whatever is queued next follows a whole unit: for a
// connection, the client sees whole frames up to the cut, whatever closes the connection. keep
// units are kept whether started or not (a connection keeps its handshake response this way).
// It returns the number of bytes dropped. What Cut keeps is at most keep units plus one.
func (q *Queue) Cut(keep int) int {
	if q.Started() {
		keep = max(keep, 1)
	}
	if keep >= q.en {
		return 0
	}
	end := q.out
	if keep > 0 {
		end = q.ends[(q.eh+keep-1)&(len(q.ends)-1)]
	}
	dropped := q.in - end
	q.pool.Pending -= int64(dropped)
	// Find the segment holding position end: segments before it stay whole, it is cut short, the
	// ones after it go.
	i := 0 // segments kept
	for pos := q.out; pos < end; i++ {
		s := q.at(i)
		next := pos + len(s.b) - s.off
		if next > end {
			if s.chunk == nil {
				// Ref and RefCont end a unit with each shared segment: none ends inside one.
				panic("BUG: ringbuf: unit end inside a shared segment")
			}
			s.b = s.b[:len(s.b)-(next-end)]
		}
		pos = next
	}
	// Nothing is added to cur after a cut (its owner may be dropped here); a dropped owner
	// hands its chunk to the last kept segment in it, if any.
	q.cur = nil
	for q.n > i {
		t := q.at(q.n - 1)
		if t.owner {
			kept := false
			for j := i - 1; j >= 0; j-- {
				if s := q.at(j); s.chunk != nil && sameChunk(s.chunk, t.chunk) {
					s.owner, kept = true, true
					break
				}
			}
			if !kept {
				q.pool.Put(t.chunk)
			}
		}
		*t = segment{}
		q.n--
	}
	q.in = end
	q.en = keep
	if q.n == 0 {
		q.head, q.eh, q.en, q.in, q.out, q.start = 0, 0, 0, 0, 0, 0
	}
	return dropped
}

// sameChunk reports whether a and b (each a chunk with len 0 or more and its full cap) are the
// same Pool chunk.
func sameChunk(a, b []byte) bool {
	return cap(a) > 0 && cap(a) == cap(b) && &a[:1][0] == &b[:1][0]
}
