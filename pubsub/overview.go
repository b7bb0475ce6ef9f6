package pubsub

import (
	"sync"
	"time"
)

// Overview is the gateway's part of the live dashboard (the root package's /dashboard/stats):
// its counters under their /api/stats keys, the hottest channels, and the cluster's state.
type Overview struct {
	Counters map[string]int64 `json:"counters"`
	// TopSubscribers are the channels with the most subscribers, TopPublishes those with the
	// most publishes per second since the previous Overview at least a second earlier; each at
	// most the n asked for, largest first.
	TopSubscribers []ChannelLoad  `json:"top_subscribers"`
	TopPublishes   []ChannelLoad  `json:"top_publishes"`
	Cluster        *ClusterStatus `json:"cluster,omitempty"` // nil on a single node
}

// ChannelLoad is one row of a top list.
type ChannelLoad struct {
	Channel     string  `json:"channel"`
	Subscribers int64   `json:"subscribers"`
	PublishRate float64 `json:"publish_rate"` // messages per second
}

// ClusterStatus is a cluster node's view of NATS.
type ClusterStatus struct {
	NodeID      string `json:"node_id"`
	Connected   bool   `json:"connected"`
	Status      string `json:"status"` // "ok", or why publishes fail
	Disconnects uint64 `json:"disconnects"`
	Conflicts   uint64 `json:"conflicts"`
}

// channelRates turns channel numbers (seq) into publish rates between two samples at least
// minRateSpan apart. It costs nothing per publish: the channel's seq is the counter.
type channelRates struct {
	mu   sync.Mutex
	at   time.Time          // when seqs was sampled; zero before the first sample
	seqs map[string]uint64  // each channel's seq at that time
	rate map[string]float64 // publishes per second over the span that ended then
}

// minRateSpan is the shortest span a publish rate is computed over: dashboards polling at once
// share the last computation instead of dividing by a few milliseconds.
const minRateSpan = time.Second

// Overview returns the dashboard's view of the gateway with top lists of at most n channels.
// It walks every channel once (the table's shard locks, one at a time). Any goroutine.
func (p *PubSub) Overview(n int) Overview {
	o := Overview{Counters: make(map[string]int64, len(counters))}
	for _, c := range counters {
		o.Counters[c.stat] = c.get(p)
	}
	list := p.table.List()
	now := time.Now()
	r := &p.rates
	r.mu.Lock()
	if span := now.Sub(r.at); r.at.IsZero() || span >= minRateSpan {
		seqs := make(map[string]uint64, len(list))
		rate := make(map[string]float64, len(list))
		for _, ch := range list {
			seqs[ch.Channel] = ch.Seq
			if r.at.IsZero() {
				continue
			}
			prev, ok := r.seqs[ch.Channel]
			if !ok || ch.Seq < prev {
				prev = 0 // a channel new since the last sample, or numbered again (a new epoch)
			}
			if d := ch.Seq - prev; d > 0 {
				rate[ch.Channel] = float64(d) / span.Seconds()
			}
		}
		r.at, r.seqs, r.rate = now, seqs, rate
	}
	bySubs := make([]ChannelLoad, 0, n+1)
	byRate := make([]ChannelLoad, 0, n+1)
	for _, ch := range list {
		row := ChannelLoad{Channel: ch.Channel, Subscribers: ch.Subscribers, PublishRate: r.rate[ch.Channel]}
		bySubs = insertTop(bySubs, row, n, func(a, b ChannelLoad) bool {
			return a.Subscribers > b.Subscribers || a.Subscribers == b.Subscribers && a.Channel < b.Channel
		})
		if row.PublishRate > 0 {
			byRate = insertTop(byRate, row, n, func(a, b ChannelLoad) bool {
				return a.PublishRate > b.PublishRate || a.PublishRate == b.PublishRate && a.Channel < b.Channel
			})
		}
	}
	r.mu.Unlock()
	o.TopSubscribers, o.TopPublishes = bySubs, byRate
	if c := p.cluster; c != nil {
		st := &ClusterStatus{NodeID: c.cfg.NodeID, Status: "ok", Disconnects: c.lost.Load(), Conflicts: c.conflicts.Load()}
		if err := c.health(); err != nil {
			st.Status = err.Error()
		} else {
			st.Connected = true
		}
		o.Cluster = st
	}
	return o
}

// insertTop inserts row into top, kept sorted by before and at most n long.
func insertTop(top []ChannelLoad, row ChannelLoad, n int, before func(a, b ChannelLoad) bool) []ChannelLoad {
	if n <= 0 || len(top) == n && !before(row, top[n-1]) {
		return top
	}
	i := len(top)
	for i > 0 && before(row, top[i-1]) {
		i--
	}
	top = append(top, ChannelLoad{})
	copy(top[i+1:], top[i:])
	top[i] = row
	if len(top) > n {
		top = top[:n]
	}
	return top
}
