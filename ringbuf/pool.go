package ringbuf

import "math/bits"

// Size classes are powers of two from 1<<minShift to 1<<maxShift bytes. Larger requests are
// allocated exactly and left to the garbage collector when released.
const (
	minShift   = 9  // 512 B: a few small frames
	maxShift   = 24 // 16 MiB: the default maximum message
	numClasses = maxShift - minShift + 1

	// MaxPooled is the largest chunk size the pool keeps.
	MaxPooled = 1 << maxShift

	// idleBytesPerClass bounds how much memory one class may keep idle, so that a burst of large
	// messages does not pin its buffers forever.
	idleBytesPerClass = 4 << 20
)

// Pool is a loop-local free list of byte chunks by size class, and of Queues.
// Loop goroutine only. The zero value is ready to use.
type Pool struct {
	free   [numClasses][][]byte
	queues []*Queue

	// Misses counts the chunks Get had to allocate (loop goroutine only, like the Pool): a warm
	// pool stops missing.
	Misses uint64
	// Pending is the bytes queued in every Queue of this pool and not yet consumed (Advance, Cut,
	// Reset): a connection engine's output backlog. Loop goroutine only, like the Pool.
	Pending int64
}

// class returns the size class index for a request of n bytes, or -1 when n is above MaxPooled.
func class(n int) int {
	if n <= 1<<minShift {
		return 0
	}
	if n > MaxPooled {
		return -1
	}
	return bits.Len(uint(n-1)) - minShift
}

// Get returns a chunk with len 0 and cap >= n. The chunk is the caller's until it is passed to Put.
func (p *Pool) Get(n int) []byte {
	c := class(n)
	if c < 0 {
		p.Misses++
		return make([]byte, 0, n)
	}
	if l := len(p.free[c]); l > 0 {
		b := p.free[c][l-1]
		p.free[c][l-1] = nil
		p.free[c] = p.free[c][:l-1]
		return b[:0]
	}
	p.Misses++
	return make([]byte, 0, 1<<(c+minShift))
}

// Put returns a chunk obtained from Get. Chunks of a foreign size (not exactly a class size) are
// dropped, so Put is safe for any slice, but the caller must not use b afterwards.
func (p *Pool) Put(b []byte) {
	n := cap(b)
	c := class(n)
	if c < 0 || n != 1<<(c+minShift) {
		return
	}
	if (len(p.free[c])+1)*n > idleBytesPerClass && len(p.free[c]) > 0 {
		return
	}
	p.free[c] = append(p.free[c], b[:0])
}

// Idle reports the bytes held in free chunks (for metrics and tests).
func (p *Pool) Idle() int {
	t := 0
	for c := range p.free {
		t += len(p.free[c]) << (c + minShift)
	}
	return t
}
