package shard

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"
)

type fakeClock struct{ t int64 }

func (c *fakeClock) now() int64 { return c.t }

func TestPublishSeqAndLoops(t *testing.T) {
	tb := NewTable(time.Minute, 1000, nil)
	var posted []int
	post := func(loop int, seq uint64) { posted = append(posted, loop) }
	// No subscribers: nothing posted, no seq used.
	if r := tb.Publish("c", "", func(uint64) { t.Fatal("encoded without subscribers") }, post); r.Seq != 0 {
		t.Fatalf("publish to empty channel: %+v", r)
	}
	tb.Join("c", 3)
	tb.Join("c", 200)
	ch, seq := tb.Join("c", 3) // second join of the same loop changes nothing
	if seq != 0 || tb.Channels.Load() != 1 {
		t.Fatalf("seq %d channels %d", seq, tb.Channels.Load())
	}
	var encoded uint64
	r := tb.Publish("c", "", func(s uint64) { encoded = s }, post)
	sort.Ints(posted)
	if r.Seq != 1 || encoded != 1 || fmt.Sprint(posted) != "[3 200]" {
		t.Fatalf("publish %+v encoded %d posted %v", r, encoded, posted)
	}
	tb.Leave(ch, 3)
	posted = nil
	tb.Publish("c", "", func(uint64) {}, post)
	if fmt.Sprint(posted) != "[200]" {
		t.Fatalf("after loop 3 left, posted to %v", posted)
	}
	tb.Leave(ch, 200)
	if tb.Channels.Load() != 0 || len(tb.List()) != 0 {
		t.Fatal("channel not dropped after the last loop left")
	}
	if _, seq := tb.Join("c", 1); seq != 0 {
		t.Fatalf("re-created channel starts at seq %d", seq)
	}
}

func TestDedupWindowAndCap(t *testing.T) {
	clk := &fakeClock{}
	tb := NewTable(time.Second, numShards*4, clk.now) // 4 ids per shard
	tb.Join("c", 0)
	pub := func(ch, id string) PublishResult {
		return tb.Publish(ch, id, func(uint64) {}, func(int, uint64) {})
	}
	if pub("c", "a").Duplicate {
		t.Fatal("first publish is a duplicate")
	}
	if !pub("c", "a").Duplicate {
		t.Fatal("repeat within the window not detected")
	}
	if pub("other", "a").Duplicate {
		t.Fatal("same id on another channel detected as duplicate")
	}
	if r := pub("c", ""); r.Duplicate || r.Seq != 2 {
		t.Fatalf("publish without id: %+v", r)
	}
	clk.t += int64(time.Second)
	if pub("c", "a").Duplicate {
		t.Fatal("id still remembered after the window")
	}
	// The cap: the ids remembered never exceed it, whatever is published.
	for i := 0; i < 10000; i++ {
		pub("c", fmt.Sprint("id-", i))
		if n := tb.DedupIDs.Load(); n > numShards*4 {
			t.Fatalf("%d ids remembered, cap %d", n, numShards*4)
		}
	}
	if tb.Duplicates.Load() != 1 {
		t.Fatalf("duplicates counted %d", tb.Duplicates.Load())
	}
	// Dedup off.
	off := NewTable(0, 10, nil)
	off.Publish("c", "x", func(uint64) {}, func(int, uint64) {})
	if off.Publish("c", "x", func(uint64) {}, func(int, uint64) {}).Duplicate {
		t.Fatal("dedup with a zero window")
	}
}

// TestPublishOrderPerLoop: concurrent publishers; each loop's queue receives seq 1..N in order.
func TestPublishOrderPerLoop(t *testing.T) {
	tb := NewTable(time.Minute, 1000, nil)
	const loops = 4
	for l := 0; l < loops; l++ {
		tb.Join("c", l)
	}
	queues := make([][]uint64, loops) // appended to under the table's lock, as Loop.Post would
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				tb.Publish("c", "", func(uint64) {}, func(l int, seq uint64) { queues[l] = append(queues[l], seq) })
			}
		}()
	}
	wg.Wait()
	for l, q := range queues {
		if len(q) != 4000 {
			t.Fatalf("loop %d got %d", l, len(q))
		}
		for i, s := range q {
			if s != uint64(i+1) {
				t.Fatalf("loop %d: position %d has seq %d", l, i, s)
			}
		}
	}
}

func FuzzDedup(f *testing.F) {
	f.Add([]byte("aab\x00ba"), uint8(3))
	f.Fuzz(func(t *testing.T, ops []byte, capacity uint8) {
		clk := &fakeClock{}
		c := int(capacity)%16 + 1
		tb := NewTable(time.Second, numShards*c, clk.now)
		for _, op := range ops {
			if op == 0 {
				clk.t += int64(300 * time.Millisecond)
				continue
			}
			tb.Publish("c", string(rune('a'+op%8)), func(uint64) {}, func(int, uint64) {})
			if n := tb.DedupIDs.Load(); n < 0 || n > int64(numShards*c) {
				t.Fatalf("dedup ids %d out of [0, %d]", n, numShards*c)
			}
		}
	})
}
