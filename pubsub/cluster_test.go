package pubsub

import (
	"strings"
	"testing"
	"time"
)

// TestClusterSubjectsReversible: every valid channel name maps to one subject token under the
// prefix and back, and nothing else maps to a channel.
func TestClusterSubjectsReversible(t *testing.T) {
	c := newCluster(ClusterConfig{Subject: "gw.prod"}, nil, nil)
	for _, name := range []string{"news", "prices:EUR.USD", "a.b.c", "user/42@eu", "x_-y", ".lead", "trail.", "a..b"} {
		subj := c.subject(name)
		if !strings.HasPrefix(subj, "gw.prod.ch.") || strings.Count(subj, ".") != 3 {
			t.Errorf("%q -> %q: not one token under the prefix", name, subj)
		}
		if back, ok := c.channel(subj); !ok || back != name {
			t.Errorf("%q -> %q -> %q, %v", name, subj, back, ok)
		}
	}
	for _, subj := range []string{"gw.prod.broadcast", "other.ch.news", "gw.prod.ch.has space", "gw.prod.ch."} {
		if name, ok := c.channel(subj); ok {
			t.Errorf("subject %q taken for channel %q", subj, name)
		}
	}
}

// TestClusterConfigRefused: settings JetStream cannot honour are refused before anything starts.
func TestClusterConfigRefused(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Cluster: &ClusterConfig{}}, "no NATS URL"},
		{Config{Cluster: &ClusterConfig{URLs: "nats://x"}, DedupWindow: 48 * time.Hour}, "dedup window must not exceed"},
		{Config{Cluster: &ClusterConfig{URLs: "nats://x"}, DedupWindow: 2 * time.Hour, HistoryMetaTTL: time.Hour}, "dedup window must not exceed"},
		{Config{HistoryTTL: time.Hour, HistoryMetaTTL: time.Minute}, "meta TTL must be at least"},
		{Config{HistorySize: -1}, "history size is negative"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error saying %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := New(Config{Cluster: &ClusterConfig{URLs: "nats://x"}, DedupWindow: 24 * time.Hour}); err != nil {
		t.Errorf("a dedup window equal to the default meta TTL: %v", err)
	}
}
