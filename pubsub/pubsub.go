package pubsub

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/auth"
	"github.com/wsgate/wsgate/conn"
	"github.com/wsgate/wsgate/shard"
)

// Config configures the gateway. A zero value is usable: limits take their defaults, dedup and
// client publishing are off (cmd/wsgate's flags set the documented defaults).
type Config struct {
	// ClientPublish lets WebSocket clients publish with {"op":"publish"}.
	ClientPublish bool
	// APIKey, when set, is required as "Authorization: Bearer <key>" on /api/ requests.
	APIKey string
	// DedupWindow is how long a publish id is remembered per channel; 0 disables dedup (a
	// negative value is refused by New).
	DedupWindow time.Duration
	// DedupMaxIDs caps the ids remembered across all channels (default 100000; the oldest are
	// forgotten first), which bounds dedup memory to roughly DedupMaxIDs x (100 B + id and
	// channel length).
	DedupMaxIDs int
	// MaxChannels per connection (default 128).
	MaxChannels int
	// MaxErrors is how many bad requests a connection may send before it is closed with 1008
	// (default 10).
	MaxErrors int
	// HistorySize is how many recent messages each channel keeps for recovery and GET
	// /api/history; 0 turns history and recovery off (channels are still numbered).
	HistorySize int
	// HistoryTTL is how long a message stays in history; 0 keeps it until size or bytes push it
	// out.
	HistoryTTL time.Duration
	// HistoryMetaTTL is how long a channel's numbering and epoch outlive its last publish and
	// its last subscriber (default 24 h; at least HistoryTTL).
	HistoryMetaTTL time.Duration
	// HistoryMaxBytes bounds the memory history holds across all channels (default 64 MiB); the
	// oldest messages are evicted first.
	HistoryMaxBytes int64
	// Now replaces the monotonic clock of dedup and history (tests); nil: the real one.
	Now func() int64
	// Cluster, when set, makes this gateway a node of a cluster through NATS JetStream.
	Cluster *ClusterConfig
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Auth, when set, requires every connection to present a token it verifies (docs/auth.md):
	// the token's claims decide what the connection may subscribe and publish to, and each
	// connection joins its user's personal channel "#<sub>".
	Auth *auth.Verifier
	// Origins, when set, is the Origin allow-list of handshakes (403 for the others).
	Origins *auth.Origins
}

// Defaults of Config's zero fields.
const (
	DefaultDedupMaxIDs = 100000
	DefaultMaxChannels = 128
	DefaultMaxErrors   = 10
)

func (c Config) withDefaults() Config {
	if c.DedupMaxIDs <= 0 {
		c.DedupMaxIDs = DefaultDedupMaxIDs
	}
	if c.MaxChannels <= 0 {
		c.MaxChannels = DefaultMaxChannels
	}
	if c.MaxErrors <= 0 {
		c.MaxErrors = DefaultMaxErrors
	}
	if c.HistoryMetaTTL == 0 {
		c.HistoryMetaTTL = shard.DefaultMetaTTL
	}
	if c.HistoryMaxBytes == 0 {
		c.HistoryMaxBytes = shard.DefaultHistoryMaxBytes
	}
	return c
}

// validate reports settings that cannot work, in the words of the flags that set them.
func (c Config) validate() error {
	switch {
	case c.DedupWindow < 0:
		return errors.New("dedup window is negative (0 disables dedup)")
	case c.HistorySize < 0:
		return errors.New("history size is negative (0 turns history off)")
	case c.HistoryTTL < 0 || c.HistoryMetaTTL < 0 || c.HistoryMaxBytes < 0:
		return errors.New("history TTLs and max bytes must not be negative")
	case c.HistoryMetaTTL > 0 && c.HistoryMetaTTL < c.HistoryTTL:
		return errors.New("history meta TTL must be at least the history TTL (a channel's numbering must outlive its messages)")
	case c.Cluster != nil && c.Cluster.URLs == "":
		return errors.New("cluster: no NATS URL")
	}
	meta := c.HistoryMetaTTL
	if meta == 0 {
		meta = shard.DefaultMetaTTL
	}
	if c.Cluster != nil && c.DedupWindow > meta {
		// JetStream refuses a duplicate window longer than the stream's MaxAge, which is the
		// meta TTL (a channel's last message must live that long).
		return errors.New("dedup window must not exceed the history meta TTL in cluster mode (JetStream keeps ids at most as long as messages)")
	}
	return nil
}

// PubSub is the gateway: a conn.Handler plus the publish entry points of the HTTP API.
// Publish and Broadcast may be called from any goroutine once Start has returned.
type PubSub struct {
	cfg        Config        // immutable after New
	log        *slog.Logger  // immutable after New
	table      *shard.Table  // any goroutine: sharded locks inside
	cluster    *cluster      // nil on a single node; set by New
	publishing chan struct{} // cluster: bounds client publishes in flight (a slot each)

	// Set by Start, before any loop runs, and immutable afterwards. Each subs[i] is touched
	// only on loop i's goroutine; engines[i] only through its goroutine-safe methods.
	engines []*conn.Engine
	subs    []*shard.Subscribers
	fanout  *metrics.PrometheusHistogram // safe for concurrent Update
	apiPub  *metrics.PrometheusHistogram // POST /api/publish, request read to reply written; safe for concurrent Update

	authn      authStats     // any goroutine (atomics)
	deliveries atomic.Uint64 // any goroutine
	broadcasts atomic.Uint64 // any goroutine
	// streams counts the open SSE streams (any goroutine): while it is 0 a publish encodes no
	// event for them.
	streams atomic.Int64
	// sseScratch[i] is loop i's buffer for the SSE events built per stream (loop i only).
	sseScratch [][]byte
	scratch    sync.Pool    // *[]byte for encoding replies; loop goroutines
	rates      channelRates // Overview's publish rates; any goroutine (mutex inside)
}

// client is the per-connection state (conn.Conn.Data). Loop goroutine only.
type client struct {
	subs   shard.Subs
	errors int
	claims *auth.Claims // the token's claims; nil when auth is off
	expAt  int64        // when the token expires, loop clock (ns); 0: never
}

// New returns a gateway for cfg; Start must be called before it serves connections.
func New(cfg Config) (*PubSub, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("pubsub: %w", err)
	}
	cfg = cfg.withDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	tc := shard.TableConfig{
		DedupWindow: cfg.DedupWindow, DedupMaxIDs: cfg.DedupMaxIDs,
		HistorySize: cfg.HistorySize, HistoryTTL: cfg.HistoryTTL, MetaTTL: cfg.HistoryMetaTTL,
		HistoryMaxBytes: cfg.HistoryMaxBytes, Now: cfg.Now,
	}
	if cfg.Cluster != nil {
		tc.External = true // the stream numbers and deduplicates
		tc.DedupWindow = 0
	}
	p := &PubSub{cfg: cfg, log: cfg.Logger, table: shard.NewTable(tc)}
	if cfg.Cluster != nil {
		p.cluster = newCluster(*cfg.Cluster, p, cfg.Logger)
		p.publishing = make(chan struct{}, maxClientPublishes)
	}
	p.scratch.New = func() any { b := make([]byte, 0, 1024); return &b }
	return p, nil
}

// Start receives the engines, one per loop, in loop-index order, and registers the gateway's
// metrics in m. The server calls it once, after creating the engines and before running any
// loop.
func (p *PubSub) Start(engines []*conn.Engine, m *metrics.Set) error {
	if p.engines != nil {
		return errors.New("pubsub: started twice")
	}
	p.engines = engines
	for i := range engines {
		s := shard.NewSubscribers(p.table, i)
		s.StreamWrite = p.streamWrite
		p.subs = append(p.subs, s)
		p.sseScratch = append(p.sseScratch, make([]byte, 0, 1024))
	}
	p.fanout = m.NewPrometheusHistogramExt("wsgate_fanout_seconds",
		[]float64{1e-6, 5e-6, 10e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 50e-3, 100e-3})
	p.apiPub = m.NewPrometheusHistogramExt("wsgate_api_publish_seconds",
		[]float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1})
	for _, c := range counters {
		get := c.get
		m.NewGauge(c.metric, func() float64 { return float64(get(p)) })
	}
	for r := range auth.NumReasons {
		m.NewGauge(fmt.Sprintf(`wsgate_auth_refused_total{reason=%q}`, r.String()),
			func() float64 { return float64(p.authn.refused[r].Load()) })
	}
	// The cluster's metrics exist on a single node too (at 0, with wsgate_cluster_enabled 0), so
	// that dashboards and alert rules find every series they ask for.
	c := p.cluster
	m.NewGauge("wsgate_cluster_enabled", func() float64 {
		if c != nil {
			return 1
		}
		return 0
	})
	m.NewGauge("wsgate_nats_connected", func() float64 {
		if c != nil && c.health() == nil {
			return 1
		}
		return 0
	})
	m.NewGauge("wsgate_nats_disconnects_total", func() float64 {
		if c == nil {
			return 0
		}
		return float64(c.lost.Load())
	})
	m.NewGauge("wsgate_cluster_publish_conflicts_total", func() float64 {
		if c == nil {
			return 0
		}
		return float64(c.conflicts.Load())
	})
	if c != nil {
		m.NewGauge(fmt.Sprintf(`wsgate_node_info{node_id=%q}`, c.cfg.NodeID), func() float64 { return 1 })
		return c.start()
	}
	return nil
}

// maxClientPublishes bounds the client publishes a cluster node has in flight to NATS.
const maxClientPublishes = 1024

// Health reports why this gateway cannot serve publishes (NATS lost), or nil. Any goroutine.
func (p *PubSub) Health() error {
	if p.cluster != nil {
		return p.cluster.health()
	}
	return nil
}

// Close lets go of the cluster (NATS consumer and connection). The server calls it at shutdown.
func (p *PubSub) Close() error {
	if p.cluster != nil && p.cluster.nc != nil {
		p.cluster.close()
	}
	return nil
}

// NodeID is this node's name in a cluster, "" on a single node.
func (p *PubSub) NodeID() string {
	if p.cluster == nil {
		return ""
	}
	return p.cluster.cfg.NodeID
}

// OnOpen implements conn.Handler. An authenticated connection (Check stored its claims) joins
// its user's personal channel, so that messages to the user reach it without a subscribe.
func (p *PubSub) OnOpen(c *conn.Conn) {
	cl, ok := c.Data.(*client)
	if !ok {
		c.Data = &client{}
		return
	}
	if cl.claims != nil {
		p.subs[c.Engine().Loop().Index()].Subscribe(c, &cl.subs, cl.claims.Personal(), nil)
	}
}

// OnClose implements conn.Handler: every subscription goes with the connection.
func (p *PubSub) OnClose(c *conn.Conn, _ ws.StatusCode) {
	if cl, ok := c.Data.(*client); ok {
		p.subs[c.Engine().Loop().Index()].UnsubscribeAll(&cl.subs)
		if c.Stream() {
			p.streams.Add(-1)
		}
	}
	c.Data = nil
}

// streamDeliveries is the number of deliveries to SSE streams on every loop (atomics kept by the
// loops); deliveries counts them too.
func (p *PubSub) streamDeliveries() uint64 {
	var n uint64
	for _, s := range p.subs {
		n += s.StreamDeliveries.Load()
	}
	return n
}

// subscriptions is the number of subscriptions on every loop (atomics kept by the loops).
func (p *PubSub) subscriptions() int64 {
	var n int64
	for _, s := range p.subs {
		n += s.Subscriptions.Load()
	}
	return n
}
