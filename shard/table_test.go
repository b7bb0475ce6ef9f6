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

// pub publishes a message whose frame is its seq as text, data the whole frame but '}'.
func pub(tb *Table, name, id string, post func(int, uint64)) PublishResult {
	if post == nil {
		post = func(int, uint64) {}
	}
	return tb.Publish(name, id, func(seq uint64, _ string) ([]byte, int) {
		return []byte(fmt.Sprintf("%d}", seq)), 0
	}, post)
}

func TestPublishSeqAndLoops(t *testing.T) {
	clk := &fakeClock{}
	tb := NewTable(TableConfig{DedupWindow: time.Minute, DedupMaxIDs: 1000, MetaTTL: time.Hour, Now: clk.now})
	var posted []int
	post := func(loop int, seq uint64) { posted = append(posted, loop) }
	// No subscribers: numbered all the same (it is kept in history), posted nowhere.
	r := pub(tb, "c", "", post)
	if r.Seq != 1 || r.Epoch == "" || len(posted) != 0 || tb.Channels.Load() != 1 {
		t.Fatalf("publish to a channel without subscribers: %+v, posted %v", r, posted)
	}
	epoch := r.Epoch
	tb.Join("c", 3, nil)
	tb.Join("c", 200, nil)
	ch, top, _, _ := tb.Join("c", 3, nil) // second join of the same loop changes nothing
	if top != (Position{1, epoch}) || tb.Channels.Load() != 1 {
		t.Fatalf("position %+v channels %d", top, tb.Channels.Load())
	}
	r = pub(tb, "c", "", post)
	sort.Ints(posted)
	if r.Seq != 2 || fmt.Sprint(posted) != "[3 200]" {
		t.Fatalf("publish %+v posted %v", r, posted)
	}
	tb.Leave(ch, 3)
	posted = nil
	pub(tb, "c", "", post)
	if fmt.Sprint(posted) != "[200]" {
		t.Fatalf("after loop 3 left, posted to %v", posted)
	}
	tb.Leave(ch, 200)
	// The numbering outlives the last subscriber until the meta TTL passes.
	clk.t += int64(time.Hour) - 1
	if _, top, _, _ := tb.Join("c", 1, nil); top != (Position{3, epoch}) {
		t.Fatalf("numbering forgotten before the meta TTL: %+v", top)
	}
	ch, _, _, _ = tb.Join("c", 1, nil)
	tb.Leave(ch, 1)
	clk.t += int64(time.Hour)
	if len(tb.List()) != 0 || tb.Channels.Load() != 0 {
		t.Fatal("channel kept past its meta TTL without publish or subscriber")
	}
	if _, top, _, _ := tb.Join("c", 1, nil); top.Seq != 0 || top.Epoch == epoch || top.Epoch == "" {
		t.Fatalf("re-created channel: %+v, want seq 0 and a new epoch (old %q)", top, epoch)
	}
}

func TestDedupWindowAndCap(t *testing.T) {
	clk := &fakeClock{}
	tb := NewTable(TableConfig{DedupWindow: time.Second, DedupMaxIDs: numShards * 4, Now: clk.now}) // 4 ids per shard
	tb.Join("c", 0, nil)
	publish := func(ch, id string) PublishResult { return pub(tb, ch, id, nil) }
	if publish("c", "a").Duplicate {
		t.Fatal("first publish is a duplicate")
	}
	if !publish("c", "a").Duplicate {
		t.Fatal("repeat within the window not detected")
	}
	if publish("other", "a").Duplicate {
		t.Fatal("same id on another channel detected as duplicate")
	}
	if r := publish("c", ""); r.Duplicate || r.Seq != 2 {
		t.Fatalf("publish without id: %+v", r)
	}
	clk.t += int64(time.Second)
	if publish("c", "a").Duplicate {
		t.Fatal("id still remembered after the window")
	}
	// The cap: the ids remembered never exceed it, whatever is published.
	for i := 0; i < 10000; i++ {
		publish("c", fmt.Sprint("id-", i))
		if n := tb.DedupIDs.Load(); n > numShards*4 {
			t.Fatalf("%d ids remembered, cap %d", n, numShards*4)
		}
	}
	if tb.Duplicates.Load() != 1 {
		t.Fatalf("duplicates counted %d", tb.Duplicates.Load())
	}
	// Dedup off.
	off := NewTable(TableConfig{DedupMaxIDs: 10})
	pub(off, "c", "x", nil)
	if pub(off, "c", "x", nil).Duplicate {
		t.Fatal("dedup with a zero window")
	}
}

// TestPublishOrderPerLoop: concurrent publishers; each loop's queue receives seq 1..N in order.
func TestPublishOrderPerLoop(t *testing.T) {
	tb := NewTable(TableConfig{DedupWindow: time.Minute, DedupMaxIDs: 1000})
	const loops = 4
	for l := 0; l < loops; l++ {
		tb.Join("c", l, nil)
	}
	queues := make([][]uint64, loops) // appended to under the table's lock, as Loop.Post would
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				pub(tb, "c", "", func(l int, seq uint64) { queues[l] = append(queues[l], seq) })
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
		tb := NewTable(TableConfig{DedupWindow: time.Second, DedupMaxIDs: numShards * c, Now: clk.now})
		for _, op := range ops {
			if op == 0 {
				clk.t += int64(300 * time.Millisecond)
				continue
			}
			pub(tb, "c", string(rune('a'+op%8)), nil)
			if n := tb.DedupIDs.Load(); n < 0 || n > int64(numShards*c) {
				t.Fatalf("dedup ids %d out of [0, %d]", n, numShards*c)
			}
		}
	})
}
