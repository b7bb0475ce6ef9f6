package pubsub

// counter is one of the gateway's counters, exported both as a metric and in /api/stats.
type counter struct {
	stat   string // key in GET /api/stats
	metric string // name in /metrics
	get    func(p *PubSub) int64
}

// counters is the one list of the gateway's counters: Start registers each as a metric and
// GET /api/stats answers each under its stat key, so the two can never disagree.
var counters = []counter{
	{"channels", "wsgate_channels", func(p *PubSub) int64 { return p.table.Channels.Load() }},
	{"subscriptions", "wsgate_subscriptions", func(p *PubSub) int64 { return p.subscriptions() }},
	{"publishes", "wsgate_publishes_total", func(p *PubSub) int64 { return int64(p.table.Publishes.Load()) }},
	{"deliveries", "wsgate_deliveries_total", func(p *PubSub) int64 { return int64(p.deliveries.Load()) }},
	{"duplicates", "wsgate_duplicates_total", func(p *PubSub) int64 { return int64(p.table.Duplicates.Load()) }},
	{"broadcasts", "wsgate_broadcasts_total", func(p *PubSub) int64 { return int64(p.broadcasts.Load()) }},
	{"dedup_ids", "wsgate_dedup_ids", func(p *PubSub) int64 { return p.table.DedupIDs.Load() }},
	{"history_messages", "wsgate_history_messages", func(p *PubSub) int64 { return p.table.HistoryMsgs.Load() }},
	{"history_bytes", "wsgate_history_bytes", func(p *PubSub) int64 { return p.table.HistoryBytes.Load() }},
	{"origin_refused", "wsgate_origin_refused_total", func(p *PubSub) int64 { return int64(p.authn.origin.Load()) }},
	{"auth_forbidden", "wsgate_auth_forbidden_total", func(p *PubSub) int64 { return int64(p.authn.forbidden.Load()) }},
	{"auth_refreshes", "wsgate_auth_refreshes_total", func(p *PubSub) int64 { return int64(p.authn.refreshed.Load()) }},
	{"user_disconnects", "wsgate_user_disconnects_total", func(p *PubSub) int64 { return int64(p.authn.kicked.Load()) }},
	{"sse_streams", "wsgate_sse_streams", func(p *PubSub) int64 { return p.streams.Load() }},
	{"deliveries_websocket", `wsgate_transport_deliveries_total{transport="websocket"}`,
		func(p *PubSub) int64 {
			// Read in this order, each count is at least the streams' share of the total one
			// (a loop counts a stream delivery before the task adds its total).
			sse, all := p.streamDeliveries(), p.deliveries.Load()
			return int64(all - min(sse, all))
		}},
	{"deliveries_sse", `wsgate_transport_deliveries_total{transport="sse"}`,
		func(p *PubSub) int64 { return int64(p.streamDeliveries()) }},
}
