package peerproto

import (
	"strconv"
	"sync"
	"testing"
)

func newTestRegistry() *Registry[map[int]struct{}] {
	return NewRegistry(func() map[int]struct{} { return make(map[int]struct{}) })
}

func TestChannelSeqAndDuplicates(t *testing.T) {
	ch := newTestRegistry().Channel("news")
	ch.Lock()
	defer ch.Unlock()
	if ch.Seq() != 0 {
		t.Fatalf("new channel seq = %d, want 0", ch.Seq())
	}
	steps := []struct {
		id      string
		wantSeq uint64
		wantDup bool
	}{
		{"", 1, false},
		{"a", 2, false},
		{"", 3, false},
		{"a", 3, true},
		{"b", 4, false},
		{"b", 4, true},
	}
	for i, s := range steps {
		seq, dup := ch.Next(s.id)
		if seq != s.wantSeq || dup != s.wantDup {
			t.Fatalf("step %d Next(%q) = %d,%v want %d,%v", i, s.id, seq, dup, s.wantSeq, s.wantDup)
		}
	}
	if ch.Seq() != 4 {
		t.Fatalf("Seq() = %d, want 4", ch.Seq())
	}
}

func TestDedupWindowEvictsOldest(t *testing.T) {
	ch := newTestRegistry().Channel("c")
	ch.Lock()
	defer ch.Unlock()
	for i := 0; i < DedupWindow; i++ {
		if _, dup := ch.Next(strconv.Itoa(i)); dup {
			t.Fatalf("id %d reported duplicate", i)
		}
	}
	if _, dup := ch.Next("0"); !dup {
		t.Fatal("id 0 should still be in the window")
	}
	if _, dup := ch.Next("new"); dup {
		t.Fatal("fresh id reported duplicate")
	}
	// "new" pushed out "0", the oldest.
	if _, dup := ch.Next("0"); dup {
		t.Fatal("id 0 should have been evicted")
	}
	// "0" was re-added and pushed out "1"; "2" is still remembered.
	if _, dup := ch.Next("2"); !dup {
		t.Fatal("id 2 should still be in the window")
	}
	if got := len(ch.ids.set); got != DedupWindow {
		t.Fatalf("window holds %d ids, want %d", got, DedupWindow)
	}
}

func TestRegistryChannelIsShared(t *testing.T) {
	r := newTestRegistry()
	const workers = 8
	got := make([]*Channel[map[int]struct{}], workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := r.Channel("same")
			ch.Lock()
			ch.Subs[i] = struct{}{}
			ch.Next("")
			ch.Unlock()
			got[i] = ch
		}()
	}
	wg.Wait()
	for i := 1; i < workers; i++ {
		if got[i] != got[0] {
			t.Fatal("concurrent Channel calls returned different channels")
		}
	}
	ch := got[0]
	ch.Lock()
	defer ch.Unlock()
	if len(ch.Subs) != workers || ch.Seq() != workers {
		t.Fatalf("subs=%d seq=%d, want %d each", len(ch.Subs), ch.Seq(), workers)
	}
	if r.Channel("other") == ch {
		t.Fatal("different names share a channel")
	}
}
