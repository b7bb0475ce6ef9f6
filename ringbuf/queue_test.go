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
			out = take(q, r.IntN(q.Len()+1), out)
		}
		if q.Len() != len(model)-len(out) || p.Pending != int64(q.Len()) {
			t.Fatalf("step %d: Len %d, pool's Pending %d, model pending %d", step, q.Len(), p.Pending, len(model)-len(out))
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

// take drains the first n bytes of q through its views, as a flush does, appending them to out.
func take(q *Queue, n int, out []byte) []byte {
	got := 0
	for _, seg := range q.Views(nil, maxViews) {
		k := min(len(seg), n-got)
		out = append(out, seg[:k]...)
		got += k
		if got == n {
			break
		}
	}
	q.Advance(n)
	return out
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
	// The empty queue's first chunk is sized for the write (the 512 B class), and "cd" is
	// copied into its free part, after the shared segment: one chunk for all four.
	if p.Idle() != 512 {
		t.Fatalf("owned chunks not returned: idle %d, want %d", p.Idle(), 512)
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

// TestQueueCutModel runs random units (copied, grown and referenced), partial advances and cuts
// against a model that keeps every unit as a whole: the bytes out of the queue are always whole
// units in order, a cut keeps exactly the rest of the unit partly taken (plus the units it was
// asked to keep), and Units and Started follow the model.
func TestQueueCutModel(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var p Pool
	q := p.Queue()
	var units [][]byte // pending units, in order; units[0][:taken] is written
	taken := 0
	var out []byte
	var whole [][]byte // every unit that left the queue completely, in order
	newUnit := func(n int, seq int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(seq + i)
		}
		return b
	}
	seq := 0
	for step := 0; step < 10000; step++ {
		switch k := r.IntN(11); {
		case k < 3:
			seq++
			b := newUnit(1+r.IntN(300), seq)
			q.Write(b)
			units = append(units, b)
		case k == 10:
			// A copied prefix and a shared rest: one unit (a stream event).
			seq++
			pre, rest := newUnit(1+r.IntN(200), seq), newUnit(1+r.IntN(3000), seq+7)
			q.Write(pre)
			q.RefCont(rest)
			units = append(units, append(append([]byte(nil), pre...), rest...))
		case k < 5:
			seq++
			b := newUnit(1+r.IntN(9000), seq)
			q.Ref(b)
			units = append(units, b)
		case k < 6:
			seq++
			b := newUnit(1+r.IntN(6000), seq)
			copy(q.Grow(len(b)), b)
			units = append(units, b)
		case k < 9:
			if q.Len() == 0 {
				continue
			}
			want := r.IntN(q.Len() + 1)
			out = take(q, want, out)
			for want > 0 {
				rest := len(units[0]) - taken
				if want < rest {
					taken += want
					break
				}
				want -= rest
				whole = append(whole, units[0])
				units, taken = units[1:], 0
			}
		default:
			keep := r.IntN(3)
			kept := keep
			if taken > 0 {
				kept = max(kept, 1)
			}
			kept = min(kept, len(units))
			wantDropped := 0
			for _, u := range units[kept:] {
				wantDropped += len(u)
			}
			if d := q.Cut(keep); d != wantDropped {
				t.Fatalf("step %d: Cut(%d) dropped %d bytes, want %d", step, keep, d, wantDropped)
			}
			units = units[:kept]
		}
		pending := -taken
		for _, u := range units {
			pending += len(u)
		}
		if p.Pending != int64(pending) {
			t.Fatalf("step %d: pool's Pending %d, model %d", step, p.Pending, pending)
		}
		if q.Len() != pending || q.Units() != len(units) || q.Started() != (taken > 0) {
			t.Fatalf("step %d: Len %d Units %d Started %v; model %d %d %v",
				step, q.Len(), q.Units(), q.Started(), pending, len(units), taken > 0)
		}
	}
	for _, seg := range q.Views(nil, maxViews) {
		out = append(out, seg...)
	}
	q.Advance(q.Len())
	whole = append(whole, units...)
	if !bytes.Equal(out, bytes.Join(whole, nil)) {
		t.Fatal("bytes out of the queue are not the whole units in order")
	}
	q.Release()
	// Every chunk went back exactly once: no chunk is twice in the free lists, and every one
	// the pool handed out is back (the idle bound is far above what this test holds).
	seen := map[*byte]bool{}
	held := 0
	for c := range p.free {
		for _, b := range p.free[c] {
			ptr := &b[:1][0]
			if seen[ptr] {
				t.Fatal("a chunk was returned to the pool twice")
			}
			seen[ptr] = true
			held++
		}
	}
	if uint64(held) != p.Misses {
		t.Fatalf("%d chunks back in the pool, %d handed out", held, p.Misses)
	}
}

// TestCutCompletesPartUnit: after a cut, what follows the partly written unit is what was
// queued after the cut, and the rest of an owned chunk's other units is gone.
func TestCutCompletesPartUnit(t *testing.T) {
	var p Pool
	q := p.Queue()
	q.Write([]byte("first"))
	q.Write([]byte("second"))
	q.Ref([]byte("third"))
	q.Advance(2)
	if d := q.Cut(0); d != len("secondthird") {
		t.Fatalf("Cut dropped %d bytes", d)
	}
	q.Write([]byte("close"))
	var got []byte
	for _, v := range q.Views(nil, maxViews) {
		got = append(got, v...)
	}
	if string(got) != "rstclose" {
		t.Fatalf("after the cut the queue holds %q, want %q", got, "rstclose")
	}
	q.Advance(q.Len())
	// Nothing started: everything goes, except the units asked for.
	q.Write([]byte("hello"))
	q.Write([]byte("frame"))
	if d := q.Cut(1); d != 5 || q.Len() != 5 || q.Units() != 1 {
		t.Fatalf("Cut(1) dropped %d, left %d bytes in %d units", d, q.Len(), q.Units())
	}
	if d := q.Cut(0); d != 5 || q.Len() != 0 || q.Segments() != 0 {
		t.Fatalf("Cut(0) dropped %d, left %d bytes in %d segments", d, q.Len(), q.Segments())
	}
}

// TestPoolPendingAcrossQueues: the pool's Pending is the bytes of all its queues together, and a
// queue released with bytes still queued takes them out of it.
func TestPoolPendingAcrossQueues(t *testing.T) {
	var p Pool
	a, b := p.Queue(), p.Queue()
	a.Write(make([]byte, 100))
	b.Ref(make([]byte, 5000))
	b.Write(make([]byte, 10))
	if p.Pending != 5110 {
		t.Fatalf("Pending %d, want 5110", p.Pending)
	}
	a.Advance(40)
	b.Release() // a connection closed with output queued
	if p.Pending != 60 {
		t.Fatalf("Pending %d after Advance(40) and a Release, want 60", p.Pending)
	}
	a.Advance(60)
	a.Release()
	if p.Pending != 0 {
		t.Fatalf("Pending %d with every queue empty", p.Pending)
	}
}

// TestRefContOneUnit: a prefix and the shared bytes RefCont adds to it are one unit; a Cut after
// the socket took part of the prefix keeps the shared rest, and one with nothing pending is Ref.
func TestRefContOneUnit(t *testing.T) {
	var p Pool
	q := p.Queue()
	q.RefCont([]byte("alone"))
	if q.Units() != 1 || q.Len() != 5 {
		t.Fatalf("RefCont on an empty queue: %d units, %d bytes", q.Units(), q.Len())
	}
	q.Advance(5)
	q.Write([]byte("id: x\n"))
	q.RefCont([]byte("data: shared\n\n"))
	q.Write([]byte("next"))
	if q.Units() != 2 {
		t.Fatalf("units = %d, want 2", q.Units())
	}
	q.Advance(3)
	q.Cut(0)
	var got []byte
	for _, v := range q.Views(nil, maxViews) {
		got = append(got, v...)
	}
	if string(got) != " x\ndata: shared\n\n" {
		t.Fatalf("after the cut: %q", got)
	}
	q.Release()
}
