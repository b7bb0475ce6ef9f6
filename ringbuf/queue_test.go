package ringbuf

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// maxViews is the most views the tests take at once: writev's limit, as a flush uses.
const maxViews = 1024

func TestClass(t *testing.T) {
	cases := []struct{ n, class int }{
		{0, 0}, {1, 0}, {512, 0}, {513, 1}, {1024, 1}, {1025, 2}, {4096, 3},
		{MaxPooled, numClasses - 1}, {MaxPooled + 1, -1},
	}
	for _, c := range cases {
		if got := class(c.n); got != c.class {
			t.Errorf("class(%d) = %d, want %d", c.n, got, c.class)
		}
	}
}

func TestPoolReuseAndBound(t *testing.T) {
	var p Pool
	b := p.Get(1000)
	if cap(b) != 1024 || len(b) != 0 {
		t.Fatalf("Get(1000): len %d cap %d", len(b), cap(b))
	}
	p.Put(b)
	if p.Idle() != 1024 {
		t.Fatalf("idle = %d after Put", p.Idle())
	}
	b2 := p.Get(700)
	if &b2[:1][0] != &b[:1][0] {
		t.Fatal("Get did not reuse the freed chunk")
	}
	// Foreign sizes are dropped, never handed out as a class size.
	p.Put(make([]byte, 0, 1000))
	if p.Idle() != 0 {
		t.Fatalf("foreign chunk kept: idle %d", p.Idle())
	}
	// Idle memory per class is bounded.
	var big [][]byte
	for i := 0; i < 10; i++ {
		big = append(big, p.Get(1<<20))
	}
	for _, c := range big {
		p.Put(c)
	}
	if p.Idle() > idleBytesPerClass {
		t.Fatalf("idle %d exceeds the per-class bound %d", p.Idle(), idleBytesPerClass)
	}
	if huge := p.Get(MaxPooled + 1); cap(huge) != MaxPooled+1 {
		t.Fatalf("oversize Get cap %d", cap(huge))
	}
}

// TestQueueModel runs random writes, refs and partial advances against a plain byte slice.
func TestQueueModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var p Pool
	q := p.Queue()
	var model []byte
	var out []byte
	for step := 0; step < 20000; step++ {
		switch r.IntN(4) {
		case 0:
			b := make([]byte, r.IntN(200))
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			q.Write(b)
			model = append(model, b...)
		case 1:
			b := make([]byte, r.IntN(9000))
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			q.Ref(b)
			model = append(model, b...)
		case 2:
			n := r.IntN(6000)
			g := q.Grow(n)
			for i := range g {
				g[i] = byte(r.Uint32())
			}
			model = append(model, g...)
		case 3:
			if q.Len() == 0 {
				continue
			}
			// Drain a random prefix through the views.
			want := r.IntN(q.Len() + 1)
			got := 0
			for _, seg := range q.Views(nil, maxViews) {
				take := min(len(seg), want-got)
				out = append(out, seg[:take]...)
				got += take
				if got == want {
					break
				}
			}
			q.Advance(want)
		}
		if q.Len() != len(model)-len(out) {
			t.Fatalf("step %d: Len %d, model pending %d", step, q.Len(), len(model)-len(out))
		}
	}
	for _, seg := range q.Views(nil, maxViews) {
		out = append(out, seg...)
	}
	q.Advance(q.Len())
	if !bytes.Equal(out, model) {
		t.Fatal("bytes out of the queue differ from bytes in")
	}
	q.Release()
	if q2 := p.Queue(); q2 != q || q2.Len() != 0 || q2.Segments() != 0 {
		t.Fatal("released queue not reused empty")
	}
}

func TestAdvancePastLenPanics(t *testing.T) {
	var p Pool
	q := p.Queue()
	q.Write([]byte("abc"))
	defer func() {
		if recover() == nil {
			t.Fatal("Advance past Len did not panic")
		}
	}()
	q.Advance(4)
}

func TestSmallWritesCoalesce(t *testing.T) {
	var p Pool
	q := p.Queue()
	shared := []byte("broadcast")
	q.Write([]byte("a"))
	q.Write([]byte("b"))
	q.Ref(shared)
	q.Write([]byte("c"))
	q.Write([]byte("d"))
	if q.Segments() != 3 {
		t.Fatalf("segments = %d, want 3 (ab, shared, cd)", q.Segments())
	}
	q.Advance(q.Len())
	// The empty queue's first chunk is sized for the write (the 512 B class); the next is a
	// full chunk.
	if p.Idle() != 512+chunkSize {
		t.Fatalf("owned chunks not returned: idle %d, want %d", p.Idle(), 512+chunkSize)
	}
	if string(shared) != "broadcast" {
		t.Fatal("shared buffer modified")
	}
}

// TestViewsFrontAndMax: the views start at the first unwritten byte, one per segment in order,
// and stop at max; what is left over is taken by the next call.
func TestViewsFrontAndMax(t *testing.T) {
	var p Pool
	q := p.Queue()
	for _, s := range []string{"one", "two", "three", "four"} {
		q.Ref([]byte(s))
	}
	q.Advance(1)
	got := q.Views(nil, 3)
	if len(got) != 3 || string(got[0]) != "ne" || string(got[1]) != "two" || string(got[2]) != "three" {
		t.Fatalf("views %q, want [ne two three]", got)
	}
	q.Advance(2 + 3 + 5)
	if got := q.Views(got[:0], 3); len(got) != 1 || string(got[0]) != "four" {
		t.Fatalf("views after the advance %q, want [four]", got)
	}
}
