package shard

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/wsgate/wsgate/conn"
)

// Subscribers hold *conn.Conn only to write to them; these tests use nil connections and check
// the bookkeeping, which is what can go wrong.

func checkConsistent(t *testing.T, s *Subscribers, all []*Subs) {
	t.Helper()
	total := 0
	for name, lc := range s.channels {
		if lc.ch.Name != name {
			t.Fatalf("channel %q filed under %q", lc.ch.Name, name)
		}
		if len(lc.members) == 0 {
			t.Fatalf("empty channel %q kept", name)
		}
		for i, m := range lc.members {
			r := m.subs.list[m.k]
			if r.lc != lc || int(r.idx) != i {
				t.Fatalf("member %d of %q points to the wrong subscription", i, name)
			}
		}
		if int(lc.ch.Subscribers.Load()) != len(lc.members) {
			t.Fatalf("%q counts %d subscribers, has %d", name, lc.ch.Subscribers.Load(), len(lc.members))
		}
		total += len(lc.members)
	}
	n := 0
	for _, subs := range all {
		for k, r := range subs.list {
			if m := r.lc.members[r.idx]; m.subs != subs || int(m.k) != k {
				t.Fatalf("subscription %d does not point back", k)
			}
		}
		n += subs.Len()
	}
	if n != total || int64(total) != s.Subscriptions.Load() {
		t.Fatalf("subscriptions: %d by connection, %d by channel, %d counted", n, total, s.Subscriptions.Load())
	}
}

func TestSubscribersRandomOps(t *testing.T) {
	tb := NewTable(TableConfig{DedupWindow: time.Minute, DedupMaxIDs: 100})
	s := NewSubscribers(tb, 1)
	r := rand.New(rand.NewPCG(3, 4))
	conns := make([]*Subs, 40)
	for i := range conns {
		conns[i] = &Subs{}
	}
	names := []string{"a", "b", "c", "d", "e"}
	for step := 0; step < 20000; step++ {
		c := conns[r.IntN(len(conns))]
		name := names[r.IntN(len(names))]
		switch r.IntN(5) {
		case 0, 1:
			s.Subscribe(nil, c, name, nil)
		case 2, 3:
			s.Unsubscribe(c, name)
		case 4:
			s.UnsubscribeAll(c)
		}
		if step%97 == 0 {
			checkConsistent(t, s, conns)
		}
	}
	checkConsistent(t, s, conns)
	for _, c := range conns {
		s.UnsubscribeAll(c)
	}
	if len(s.channels) != 0 || s.Subscriptions.Load() != 0 {
		t.Fatalf("after everyone left: %d loop channels, %d subscriptions", len(s.channels), s.Subscriptions.Load())
	}
	// The table keeps the channels' numbering, but no loop is left to post to.
	for _, name := range names {
		pub(tb, name, "", func(l int, _ uint64) { t.Fatalf("%s: posted to loop %d after everyone left", name, l) })
	}
}

func TestSubscribeTwiceAndSeq(t *testing.T) {
	tb := NewTable(TableConfig{DedupWindow: time.Minute, DedupMaxIDs: 100})
	s := NewSubscribers(tb, 0)
	a := &Subs{}
	if _, _, _, added := s.Subscribe(nil, a, "x", nil); !added {
		t.Fatal("first subscribe not added")
	}
	pub(tb, "x", "", nil)
	top, _, _, added := s.Subscribe(nil, a, "x", nil)
	if added || top.Seq != 1 || a.Len() != 1 {
		t.Fatalf("second subscribe: %+v added %v len %d", top, added, a.Len())
	}
	b := &Subs{}
	if top, _, _, _ := s.Subscribe(nil, b, "x", nil); top.Seq != 1 {
		t.Fatalf("late joiner at %+v", top)
	}
	// A message at or below a member's join seq is not delivered to it (Deliver skips it
	// without touching the nil connection): leave b alone on x, joined at seq 1.
	s.Unsubscribe(a, "x")
	if n := s.Deliver("x", 1, []byte("f"), nil, nil); n != 0 {
		t.Fatalf("delivered %d messages from before the subscription", n)
	}
	if s.Unsubscribe(a, "x") || s.Unsubscribe(b, "nope") {
		t.Fatal("unsubscribe of something not subscribed reported success")
	}
}

// TestEachVisitsAChannelsSubscribers: Each calls back once per subscriber of the channel on the
// loop, and never for other channels' subscribers.
func TestEachVisitsAChannelsSubscribers(t *testing.T) {
	s := NewSubscribers(NewTable(TableConfig{}), 0)
	subs := make([]*Subs, 5)
	for i := range subs {
		subs[i] = &Subs{}
		name := "#42"
		if i == 4 {
			name = "#7"
		}
		s.Subscribe(nil, subs[i], name, nil)
		s.Subscribe(nil, subs[i], "news", nil)
	}
	count := func(name string) int {
		n := 0
		s.Each(name, func(*conn.Conn) { n++ })
		return n
	}
	if a, b, c, d := count("#42"), count("#7"), count("news"), count("nobody"); a != 4 || b != 1 || c != 5 || d != 0 {
		t.Fatalf("Each visited #42 %d, #7 %d, news %d, nobody %d times; want 4, 1, 5, 0", a, b, c, d)
	}
	s.Unsubscribe(subs[0], "#42")
	if n := count("#42"); n != 3 {
		t.Fatalf("after an unsubscribe Each visited %d, want 3", n)
	}
}
