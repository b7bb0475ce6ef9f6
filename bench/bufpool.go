package bench

// A loop's buffer pool keeps at most maxPoolBufs buffers of at most
// maxPoolCap bytes each; a new buffer has at least minBufSize.
const (
	maxPoolBufs = 64
	maxPoolCap  = 1 << 20
	minBufSize  = 4 << 10
)

// getBuf returns an empty buffer with capacity at least n from the loop's
// pool. Pool discipline: a buffer is put back only at points where no slice
// of it can still be in use (never from shut, which may run inside a
// handler that still holds a payload slice).
func (l *Loop) getBuf(n int) []byte {
	if k := len(l.free); k > 0 && cap(l.free[k-1]) >= n {
		b := l.free[k-1]
		l.free[k-1] = nil
		l.free = l.free[:k-1]
		return b
	}
	return make([]byte, 0, max(n, minBufSize))
}

// putBuf returns b to the loop's pool, or drops it when it is too big or
// the pool is full. Loop goroutine only; see getBuf for when it is safe.
func (l *Loop) putBuf(b []byte) {
	if cap(b) > maxPoolCap || len(l.free) >= maxPoolBufs {
		return
	}
	l.free = append(l.free, b[:0])
}
