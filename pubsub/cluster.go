package pubsub

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgate/wsgate/shard"
)

// ClusterConfig makes the gateway one node of a cluster whose nodes share channels through NATS
// JetStream: one stream holds every channel's messages (a subject per channel), numbered per
// channel by compare-and-set on the subject's last message, deduplicated by JetStream's message
// ids, and read back by every node through one ordered consumer.
type ClusterConfig struct {
	// URLs of the NATS servers, comma-separated (nats://host:4222,...).
	URLs string
	// NodeID names this node in metrics (wsgate_node_info) and /api/stats; cmd/wsgate defaults it
	// to hostname-pid and puts it on every log line.
	NodeID string
	// Stream is the JetStream stream's name (default "WSGATE").
	Stream string
	// Subject prefixes every subject the cluster uses (default "wsgate"): channel C is
	// "<Subject>.ch.<C with '.' as '~'>" (a personal channel keeps its '#': "wsgate.ch.#42"),
	// broadcasts go to "<Subject>.broadcast", user disconnects to "<Subject>.disconnect".
	Subject string
	// ConnectTimeout bounds the first connection to NATS (default 10 s); later losses are
	// retried for ever.
	ConnectTimeout time.Duration
}

// Cluster defaults.
const (
	DefaultStream         = "WSGATE"
	DefaultSubject        = "wsgate"
	DefaultConnectTimeout = 10 * time.Second
)

// Header names of the stream's messages.
const (
	hdrSeq   = "Wsgate-Seq"   // the channel's number of the message
	hdrEpoch = "Wsgate-Epoch" // the channel's epoch
	hdrID    = "Wsgate-Id"    // the publish id, if any
	hdrNode  = "Wsgate-Node"  // broadcasts: the node that delivered it locally already
)

// ErrUnavailable wraps every failure to reach the cluster's broker: the HTTP API answers 503.
var ErrUnavailable = errors.New("cluster unavailable")

// cluster is the NATS side of a clustered PubSub.
type cluster struct {
	cfg ClusterConfig // immutable after newCluster
	p   *PubSub
	log *slog.Logger

	// Set by start, immutable afterwards.
	nc        *nats.Conn
	js        jetstream.JetStream
	stream    jetstream.Stream
	consume   jetstream.ConsumeContext
	bsub      *nats.Subscription
	dsub      *nats.Subscription
	chPrefix  string
	bcastSubj string
	discSubj  string

	stripes   [64]pubStripe // serialise this node's publishes per channel: fewer CAS conflicts
	applied   atomic.Uint64 // the highest stream position applied by the consumer goroutine
	conflicts atomic.Uint64 // compare-and-set retries
	lost      atomic.Uint64 // NATS disconnections
	closing   atomic.Bool   // set by close: the disconnection that follows is ours

	waitMu  sync.Mutex
	waiters map[waitKey]*applyWait // publishes waiting for their local delivery count
}

// pubStripe serialises this node's publishes to the channels that hash to it, and remembers the
// last message each of them numbered until the consumer has applied it (so that the next
// publish's guess is right without a round trip). Guarded by mu.
type pubStripe struct {
	mu   sync.Mutex
	last map[string]lastKnown
}

type lastKnown struct {
	streamSeq, seq uint64
	epoch          string
}

type waitKey struct {
	channel string
	seq     uint64
}

// applyWait is an HTTP publish waiting for the consumer to apply its message here: applied is
// closed once the delivery tasks are posted, fw counts what they reach.
type applyWait struct {
	applied chan struct{}
	fw      fanoutWait
}

func newCluster(cfg ClusterConfig, p *PubSub, log *slog.Logger) *cluster {
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.Subject == "" {
		cfg.Subject = DefaultSubject
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	return &cluster{cfg: cfg, p: p, log: log, waiters: map[waitKey]*applyWait{},
		chPrefix: cfg.Subject + ".ch.", bcastSubj: cfg.Subject + ".broadcast",
		discSubj: cfg.Subject + ".disconnect"}
}

// subject maps a channel to its subject, reversibly: channel names never hold '~', subjects'
// tokens never hold '.'.
func (c *cluster) subject(channel string) string {
	return c.chPrefix + strings.ReplaceAll(channel, ".", "~")
}

// channel is subject's inverse; false for a subject that is not a channel's.
func (c *cluster) channel(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, c.chPrefix)
	if !ok {
		return "", false
	}
	name := strings.ReplaceAll(rest, "~", ".")
	return name, ValidChannel(name)
}

// start connects (retrying for ConnectTimeout), creates or updates the stream, and reads it
// from the start until it has caught up, so that the node knows every channel's position and
// history before its first client. Called once, from PubSub.Start.
func (c *cluster) start() error {
	opts := []nats.Option{
		nats.Name("wsgate " + c.cfg.NodeID),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(2 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if c.closing.Load() {
				return
			}
			c.lost.Add(1)
			c.log.Warn("NATS connection lost; publishes answer 503 until it is back", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			c.log.Info("NATS connection back", "server", nc.ConnectedUrlRedacted())
		}),
	}
	deadline := time.Now().Add(c.cfg.ConnectTimeout)
	for {
		nc, err := nats.Connect(c.cfg.URLs, opts...)
		if err == nil {
			c.nc = nc
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("NATS at %s not reachable within %v: %w", c.cfg.URLs, c.cfg.ConnectTimeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err := c.setup(); err != nil {
		c.nc.Close()
		return err
	}
	c.log.Info("cluster node ready", "nats", c.nc.ConnectedUrlRedacted(), "stream", c.cfg.Stream,
		"subjects", c.chPrefix+">", "applied", c.applied.Load())
	return nil
}

func (c *cluster) setup() error {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ConnectTimeout)
	defer cancel()
	js, err := jetstream.New(c.nc)
	if err != nil {
		return err
	}
	c.js = js
	cfg := c.p.cfg
	sc := jetstream.StreamConfig{
		Name:        c.cfg.Stream,
		Description: "wsgate channels: one subject per channel, numbered per channel",
		Subjects:    []string{c.chPrefix + ">"},
		Storage:     jetstream.FileStorage,
		// A channel's last message carries its numbering: keep at least that one, for as long
		// as the numbering must live.
		MaxMsgsPerSubject: int64(max(cfg.HistorySize, 1)),
		MaxAge:            cfg.HistoryMetaTTL,
		Discard:           jetstream.DiscardOld,
		AllowDirect:       true,
	}
	if cfg.DedupWindow > 0 {
		sc.Duplicates = cfg.DedupWindow
	} else {
		sc.Duplicates = min(2*time.Minute, cfg.HistoryMetaTTL)
	}
	stream, err := js.CreateOrUpdateStream(ctx, sc)
	if err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return fmt.Errorf("NATS at %s does not run JetStream (start nats-server with -js): %w", c.cfg.URLs, err)
		}
		return fmt.Errorf("JetStream stream %s: %w", c.cfg.Stream, err)
	}
	c.stream = stream
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("JetStream stream %s: %w", c.cfg.Stream, err)
	}
	sub, err := c.nc.Subscribe(c.bcastSubj, c.onBroadcast)
	if err != nil {
		return err
	}
	c.bsub = sub
	if c.dsub, err = c.nc.Subscribe(c.discSubj, c.onDisconnect); err != nil {
		return err
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{c.chPrefix + ">"},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("JetStream consumer on %s: %w", c.cfg.Stream, err)
	}
	cc, err := cons.Consume(c.onMessage)
	if err != nil {
		return fmt.Errorf("JetStream consumer on %s: %w", c.cfg.Stream, err)
	}
	c.consume = cc
	// Catch up with what the stream held at start.
	if info.State.Msgs > 0 {
		for c.applied.Load() < info.State.LastSeq {
			if ctx.Err() != nil {
				return fmt.Errorf("reading stream %s: %d of %d messages in %v", c.cfg.Stream,
					c.applied.Load(), info.State.LastSeq, c.cfg.ConnectTimeout)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}

// onMessage applies one message of the stream: the node's only way of receiving publishes, its
// own included. Consumer goroutine, in stream order.
func (c *cluster) onMessage(msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		c.log.Error("stream message without metadata", "err", err)
		return
	}
	defer c.applied.Store(meta.Sequence.Stream)
	name, ok := c.channel(msg.Subject())
	h := msg.Headers()
	seq, err := strconv.ParseUint(h.Get(hdrSeq), 10, 64)
	if !ok || err != nil || seq == 0 || h.Get(hdrEpoch) == "" {
		c.log.Warn("ignoring a stream message that no wsgate node published", "subject", msg.Subject(),
			"stream_seq", meta.Sequence.Stream)
		return
	}
	m := shard.Numbered{Channel: name, Seq: seq, Epoch: h.Get(hdrEpoch), ID: h.Get(hdrID),
		StreamSeq: meta.Sequence.Stream, Age: time.Since(meta.Timestamp)}
	c.waitMu.Lock()
	w := c.waiters[waitKey{name, seq}]
	delete(c.waiters, waitKey{name, seq})
	c.waitMu.Unlock()
	var done *fanoutWait
	if w != nil {
		done = &w.fw
	}
	c.p.apply(m, msg.Data(), done)
	if w != nil {
		close(w.applied)
	}
}

// publish numbers a message through the stream: it guesses the channel's last message from what
// this node has applied, publishes seq+1 expecting that last message (compare-and-set), and on
// a conflict reads the real last message and tries again. With wait it also waits for this
// node's consumer to deliver it, to report the local subscribers reached.
func (c *cluster) publish(ctx context.Context, channel, id string, data []byte, wait bool) (PublishOutcome, error) {
	out, w, err := c.number(ctx, channel, id, data, wait)
	if w != nil {
		// Outside the channel's lock: the next publish need not wait for this one's delivery.
		select {
		case <-w.applied:
			w.fw.wg.Wait()
			out.Delivered = int(w.fw.n.Load())
		case <-ctx.Done():
			c.dropWaiter(waitKey{channel, out.Seq}, w)
		}
	}
	return out, err
}

// number gets the message into the stream under the next number of its channel (see publish),
// and returns the waiter of its local delivery when wait is set and it was numbered.
func (c *cluster) number(ctx context.Context, channel, id string, data []byte, wait bool) (PublishOutcome, *applyWait, error) {
	st := &c.stripes[xxhash.Sum64String(channel)&63]
	st.mu.Lock()
	defer st.mu.Unlock()
	if !c.nc.IsConnected() {
		return PublishOutcome{}, nil, fmt.Errorf("%w: NATS connection is %s", ErrUnavailable, strings.ToLower(c.nc.Status().String()))
	}
	subj := c.subject(channel)
	last, seq, epoch := c.p.table.Last(channel)
	if mine, ok := st.last[channel]; ok {
		if mine.streamSeq > last {
			last, seq, epoch = mine.streamSeq, mine.seq, mine.epoch
		} else {
			delete(st.last, channel) // the consumer has caught up
		}
	}
	for attempt := 0; ; attempt++ {
		if last == 0 {
			seq, epoch = 0, shard.NewEpoch() // the channel's numbering starts here
		}
		msg := nats.NewMsg(subj)
		msg.Data = data
		msg.Header.Set(hdrSeq, strconv.FormatUint(seq+1, 10))
		msg.Header.Set(hdrEpoch, epoch)
		opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(last)}
		if id != "" {
			msg.Header.Set(hdrID, id)
			if c.p.cfg.DedupWindow > 0 {
				// Ids are per channel; JetStream's are per stream, so the channel is part of it.
				opts = append(opts, jetstream.WithMsgID(channel+"|"+base64.RawURLEncoding.EncodeToString([]byte(id))))
			}
		}
		var w *applyWait
		key := waitKey{channel, seq + 1}
		if wait {
			w = &applyWait{applied: make(chan struct{})}
			c.waitMu.Lock()
			c.waiters[key] = w
			c.waitMu.Unlock()
		}
		ack, err := c.js.PublishMsg(ctx, msg, opts...)
		if err != nil || ack.Duplicate {
			c.dropWaiter(key, w)
		}
		switch {
		case err == nil && ack.Duplicate:
			return PublishOutcome{Duplicate: true}, nil, nil
		case err == nil:
			if st.last == nil {
				st.last = map[string]lastKnown{}
			}
			st.last[channel] = lastKnown{ack.Sequence, seq + 1, epoch}
			return PublishOutcome{Seq: seq + 1, Epoch: epoch}, w, nil
		case isWrongLastSeq(err) && attempt < 100:
			c.conflicts.Add(1)
			last, seq, epoch, err = c.lastOf(ctx, subj)
			if err != nil {
				return PublishOutcome{}, nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
			}
		default:
			return PublishOutcome{}, nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
}

func (c *cluster) dropWaiter(key waitKey, w *applyWait) {
	if w == nil {
		return
	}
	c.waitMu.Lock()
	if c.waiters[key] == w {
		delete(c.waiters, key)
	}
	c.waitMu.Unlock()
}

// lastOf reads a subject's last message from the stream (direct get).
func (c *cluster) lastOf(ctx context.Context, subj string) (last, seq uint64, epoch string, err error) {
	raw, err := c.stream.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, 0, "", nil
	}
	if err != nil {
		return 0, 0, "", err
	}
	seq, _ = strconv.ParseUint(raw.Header.Get(hdrSeq), 10, 64)
	return raw.Sequence, seq, raw.Header.Get(hdrEpoch), nil
}

func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// broadcast tells the other nodes to deliver a broadcast (this node delivers its own). Broadcasts
// are not numbered or kept: core NATS, at most once.
func (c *cluster) broadcast(payload []byte) error {
	msg := nats.NewMsg(c.bcastSubj)
	msg.Data = payload
	msg.Header.Set(hdrNode, c.cfg.NodeID)
	if err := c.nc.PublishMsg(msg); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// onBroadcast delivers another node's broadcast here. NATS subscription goroutine.
func (c *cluster) onBroadcast(msg *nats.Msg) {
	if msg.Header.Get(hdrNode) == c.cfg.NodeID {
		return
	}
	c.p.broadcastLocal(msg.Data, false)
}

// disconnect tells the other nodes to close a user's connections (this node closes its own).
// Core NATS, at most once, like broadcasts.
func (c *cluster) disconnect(user string) error {
	msg := nats.NewMsg(c.discSubj)
	msg.Data = []byte(user)
	msg.Header.Set(hdrNode, c.cfg.NodeID)
	if err := c.nc.PublishMsg(msg); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// onDisconnect closes another node's disconnected user's connections here. NATS subscription
// goroutine.
func (c *cluster) onDisconnect(msg *nats.Msg) {
	if msg.Header.Get(hdrNode) == c.cfg.NodeID {
		return
	}
	c.p.disconnectLocal(string(msg.Data))
}

// health is nil while the node can publish, else the reason (for /healthz).
func (c *cluster) health() error {
	if c.nc.IsConnected() {
		return nil
	}
	return fmt.Errorf("NATS connection %s", strings.ToLower(c.nc.Status().String()))
}

func (c *cluster) close() {
	c.closing.Store(true)
	if c.consume != nil {
		c.consume.Stop()
	}
	if c.bsub != nil {
		c.bsub.Unsubscribe()
	}
	if c.dsub != nil {
		c.dsub.Unsubscribe()
	}
	c.nc.Close()
}
