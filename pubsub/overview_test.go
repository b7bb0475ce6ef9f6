package pubsub

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
)

// TestInsertTop: keeping the n largest rows as they come gives the first n of a full sort.
func TestInsertTop(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	before := func(a, b ChannelLoad) bool {
		return a.Subscribers > b.Subscribers || a.Subscribers == b.Subscribers && a.Channel < b.Channel
	}
	for _, n := range []int{0, 1, 3, 10} {
		var all, top []ChannelLoad
		for i := 0; i < 200; i++ {
			row := ChannelLoad{Channel: fmt.Sprint("c", i), Subscribers: int64(r.IntN(20))}
			all = append(all, row)
			top = insertTop(top, row, n, before)
		}
		sort.Slice(all, func(i, j int) bool { return before(all[i], all[j]) })
		if len(top) != n {
			t.Fatalf("n=%d: %d rows kept", n, len(top))
		}
		for i := range top {
			if top[i] != all[i] {
				t.Fatalf("n=%d: row %d is %+v, want %+v", n, i, top[i], all[i])
			}
		}
	}
}
