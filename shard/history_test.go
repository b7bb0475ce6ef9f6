package shard

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// seqs returns the seq of each replayed frame (frames are "<seq>}" in these tests).
func seqs(frames [][]byte) string {
	var out []string
	for _, f := range frames {
		out = append(out, strings.TrimSuffix(string(f), "}"))
	}
	return strings.Join(out, ",")
}

func TestRecoveryRules(t *testing.T) {
	tb := NewTable(TableConfig{HistorySize: 5})
	for i := 0; i < 8; i++ {
		pub(tb, "c", "", nil)
	}
	_, top, _, _ := tb.Join("c", 0, nil)
	e := top.Epoch
	for _, tc := range []struct {
		since     Position
		replay    string
		recovered bool
	}{
		{Position{8, e}, "", true},          // nothing missed
		{Position{5, e}, "6,7,8", true},     // within history
		{Position{3, e}, "4,5,6,7,8", true}, // exactly the oldest kept
		{Position{2, e}, "", false},         // 3 was evicted: no partial replay
		{Position{0, e}, "", false},         // from the start: 1..3 are gone
		{Position{5, "other"}, "", false},   // another numbering
		{Position{9, e}, "", false},         // ahead of the channel
	} {
		_, got, replay, ok := tb.Join("c", 0, &tc.since)
		if got != top || seqs(replay) != tc.replay || ok != tc.recovered {
			t.Errorf("since %+v: top %+v replay %q recovered %v; want %+v %q %v", tc.since, got, seqs(replay), ok, top, tc.replay, tc.recovered)
		}
	}
	// History off: numbering goes on, recovery only when nothing was missed.
	off := NewTable(TableConfig{})
	pub(off, "c", "", nil)
	pub(off, "c", "", nil)
	_, top, _, _ = off.Join("c", 0, nil)
	if _, _, r, ok := off.Join("c", 0, &Position{1, top.Epoch}); ok || r != nil {
		t.Fatal("recovered without history")
	}
	if _, _, _, ok := off.Join("c", 0, &Position{2, top.Epoch}); !ok {
		t.Fatal("nothing missed, yet not recovered")
	}
}

func TestHistoryTTLAndBytes(t *testing.T) {
	clk := &fakeClock{}
	tb := NewTable(TableConfig{HistorySize: 100, HistoryTTL: time.Minute, Now: clk.now})
	for i := 0; i < 3; i++ {
		pub(tb, "c", "", nil)
		clk.t += int64(20 * time.Second)
	}
	// Now 60 s after the first: it has expired, 2 and 3 remain.
	_, msgs, _ := tb.History("c", 0, 10)
	if len(msgs) != 2 || msgs[0].Seq != 2 || tb.HistoryMsgs.Load() != 2 {
		t.Fatalf("after the TTL of the first: %+v (%d kept)", msgs, tb.HistoryMsgs.Load())
	}
	// A byte budget that holds one message per shard keeps the newest message of each shard.
	small := NewTable(TableConfig{HistorySize: 100, HistoryMaxBytes: numShards * 100})
	for i := 0; i < 50; i++ {
		pub(small, fmt.Sprint("ch", i%5), "", nil)
	}
	if n := small.HistoryMsgs.Load(); n > 5 || n < 1 {
		t.Fatalf("%d messages kept under a budget that holds one per shard", n)
	}
	for i := 45; i < 50; i++ {
		if _, msgs, _ := small.History(fmt.Sprint("ch", i%5), 0, 100); len(msgs) > 1 || (len(msgs) == 1 && msgs[0].Seq != 10) {
			t.Fatalf("ch%d keeps %+v, want at most its newest (seq 10)", i%5, msgs)
		}
	}
	if b := small.HistoryBytes.Load(); b <= 0 {
		t.Fatalf("history bytes %d", b)
	}
}

// TestHistoryModel: random publishes, clock moves and lookups against a plain list per channel.
func TestHistoryModel(t *testing.T) {
	clk := &fakeClock{}
	const size, ttl = 7, int64(10 * time.Second)
	tb := NewTable(TableConfig{HistorySize: size, HistoryTTL: time.Duration(ttl), Now: clk.now})
	type kept struct {
		seq uint64
		at  int64
	}
	model := map[string][]kept{}
	last := map[string]uint64{}
	r := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "b", "c"}
	for step := 0; step < 5000; step++ {
		name := names[r.IntN(len(names))]
		switch r.IntN(4) {
		case 0:
			clk.t += int64(r.IntN(4)) * int64(time.Second)
		case 1, 2:
			res := pub(tb, name, "", nil)
			last[name]++
			if res.Seq != last[name] {
				t.Fatalf("seq %d, want %d", res.Seq, last[name])
			}
			model[name] = append(model[name], kept{res.Seq, clk.t})
			if len(model[name]) > size {
				model[name] = model[name][1:]
			}
		case 3:
			for len(model[name]) > 0 && clk.t-model[name][0].at >= ttl {
				model[name] = model[name][1:]
			}
			since := uint64(r.IntN(int(last[name]) + 1))
			top, msgs, ok := tb.History(name, since, 1000)
			if !ok {
				if last[name] != 0 {
					t.Fatalf("%s unknown after %d publishes", name, last[name])
				}
				continue
			}
			var want []uint64
			for _, k := range model[name] {
				if k.seq > since {
					want = append(want, k.seq)
				}
			}
			var got []uint64
			for _, m := range msgs {
				got = append(got, m.Seq)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) || top.Seq != last[name] {
				t.Fatalf("step %d %s since %d: got %v top %d, want %v top %d", step, name, since, got, top.Seq, want, last[name])
			}
		}
	}
}

func TestHistoryNewestAndLimit(t *testing.T) {
	tb := NewTable(TableConfig{HistorySize: 10})
	for i := 0; i < 10; i++ {
		tb.Publish("c", fmt.Sprint("id", i+1), func(seq uint64, _ string) ([]byte, int) {
			return []byte(fmt.Sprintf(`{"seq":%d,"data":"d%d"}`, seq, seq)), len(`{"seq":1,"data":`) + len(fmt.Sprint(seq)) - 1
		}, func(int, uint64) {})
	}
	_, msgs, _ := tb.History("c", 0, 3)
	if len(msgs) != 3 || msgs[0].Seq != 8 || msgs[2].Seq != 10 || msgs[2].ID != "id10" || string(msgs[2].Data) != `"d10"` {
		t.Fatalf("newest 3: %+v", msgs)
	}
	_, msgs, _ = tb.History("c", 4, 2)
	if len(msgs) != 2 || msgs[0].Seq != 5 || msgs[1].Seq != 6 {
		t.Fatalf("after 4, 2 of them: %+v", msgs)
	}
	if _, _, ok := tb.History("nope", 0, 3); ok {
		t.Fatal("unknown channel has history")
	}
}
