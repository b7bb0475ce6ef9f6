package ringbuf

import (
	"testing"

	"golang.org/x/sys/unix"
)

func BenchmarkQueueWriteDrain(b *testing.B) {
	var p Pool
	frame := make([]byte, 66)
	scratch := make([]unix.Iovec, 0, IOVMax)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)) * 16)
	for b.Loop() {
		q := p.Queue()
		for i := 0; i < 16; i++ {
			q.Write(frame)
		}
		scratch = q.Iovecs(scratch[:0], IOVMax)
		q.Advance(q.Len())
		q.Release()
	}
}

func BenchmarkQueueRefDrain(b *testing.B) {
	var p Pool
	shared := make([]byte, 66)
	scratch := make([]unix.Iovec, 0, IOVMax)
	b.ReportAllocs()
	for b.Loop() {
		q := p.Queue()
		for i := 0; i < 16; i++ {
			q.Ref(shared)
		}
		scratch = q.Iovecs(scratch[:0], IOVMax)
		q.Advance(q.Len())
		q.Release()
	}
}
