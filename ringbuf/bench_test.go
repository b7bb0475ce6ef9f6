package ringbuf

import "testing"

func BenchmarkQueueWriteDrain(b *testing.B) {
	var p Pool
	frame := make([]byte, 66)
	scratch := make([][]byte, 0, maxViews)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)) * 16)
	for b.Loop() {
		q := p.Queue()
		for i := 0; i < 16; i++ {
			q.Write(frame)
		}
		scratch = q.Views(scratch[:0], maxViews)
		q.Advance(q.Len())
		q.Release()
	}
}

func BenchmarkQueueRefDrain(b *testing.B) {
	var p Pool
	shared := make([]byte, 66)
	scratch := make([][]byte, 0, maxViews)
	b.ReportAllocs()
	for b.Loop() {
		q := p.Queue()
		for i := 0; i < 16; i++ {
			q.Ref(shared)
		}
		scratch = q.Views(scratch[:0], maxViews)
		q.Advance(q.Len())
		q.Release()
	}
}
