package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"
)

// Options configure a Client. The zero value is usable: every zero field takes the default
// named in its comment.
type Options struct {
	// URLs are more WebSocket URLs of the same gateway (other cluster nodes), tried after the one
	// given to Dial: each failed attempt and each lost connection moves the client to the next
	// URL of the list, round robin.
	URLs []string

	// Token, when set, is called before every connection attempt (the first one and each
	// reconnect) and its result is sent as the `token` query parameter, so an expired token is
	// replaced by a fresh one. An error counts as a failed attempt.
	Token func(ctx context.Context) (string, error)

	// HealthURL, when set, is fetched with GET before every reconnect attempt (not before Dial's
	// first one); an answer other than 2xx, or no answer within DialTimeout, counts as a failed
	// attempt and the WebSocket URL is not dialled. wsgate's admin listener answers /healthz
	// with 503 while it shuts down or cannot reach NATS.
	HealthURL string
	// HealthURLs, when set, gives each WebSocket URL its own health URL: HealthURLs[0] for the
	// URL given to Dial, HealthURLs[i] for URLs[i-1]; an empty entry means no probe. It takes
	// precedence over HealthURL.
	HealthURLs []string

	// Header is sent with every opening handshake (for example Authorization or Origin).
	Header http.Header
	// HTTPClient makes the opening handshakes and health probes (default http.DefaultClient).
	HTTPClient *http.Client

	// BackoffInitial is the delay before the first reconnect attempt (default 500 ms).
	BackoffInitial time.Duration
	// BackoffMax caps the delay, jitter included (default 30 s).
	BackoffMax time.Duration
	// BackoffMultiplier multiplies the delay after each failed attempt (default 2).
	BackoffMultiplier float64
	// Jitter is the least random spread of every delay: the delay moves by a uniformly drawn
	// amount in [-J, +J] where J = max(Jitter, JitterFraction x delay) (default 100 ms; negative:
	// none).
	Jitter time.Duration
	// JitterFraction is the spread relative to the delay (default 0.5, so the first reconnect of
	// a client lands between 250 and 750 ms; negative: none, Jitter alone applies). It is what
	// keeps many clients dropped at once (a gateway restart) from coming back at once.
	JitterFraction float64

	// DialTimeout bounds each attempt: health probe, token and opening handshake (default 10 s).
	DialTimeout time.Duration
	// WriteTimeout bounds the write of one frame; a write that takes longer drops the
	// connection (default 10 s).
	WriteTimeout time.Duration
	// PingInterval is how often the client pings the gateway to find a connection that died
	// without a close (default 25 s; negative: never). The gateway pings too and the client
	// answers, whatever this says.
	PingInterval time.Duration
	// PingTimeout is how long a ping may wait for its pong before the connection is dropped
	// (default 15 s).
	PingTimeout time.Duration
	// ReadLimit is the largest frame the client accepts (default 32 MiB: the gateway accepts
	// publishes up to 16 MiB of data).
	ReadLimit int64
	// MaxPending is how many received messages may wait for the handlers (default 4096). When
	// the handlers fall further behind, the client drops the waiting messages and the
	// connection, as the gateway drops a slow consumer, and the next connection recovers them
	// from the gateway's history: memory stays bounded and nothing is delivered twice.
	MaxPending int

	// OnState is called at every change of state, on the delivery goroutine, in order with the
	// messages (StateClosed is the last call the client makes).
	OnState func(State)
	// OnRecoveryFailed is called when the gateway says `"recovered":false` for a channel: after a
	// reconnect it could not replay every missed message (history too short, or the channel's
	// numbering started again, e.g. a single-node restart), or the numbering restarted under an
	// open subscription. The messages that follow continue from the new position; the
	// application should fetch the channel's state from its backend. It runs on the delivery
	// goroutine, after the channel's earlier messages and before the later ones.
	OnRecoveryFailed func(channel string)
	// OnBroadcast receives the gateway's broadcasts ({"op":"broadcast"}) with Channel "" and Seq 0.
	OnBroadcast func(Message)
	// OnError receives what no call returns: failed connection attempts, lost connections,
	// refusals of a resubscribe, and error replies the client cannot attribute to a call. It is
	// for logging; the client carries on by itself.
	OnError func(error)

	// Sleep waits for d or until ctx ends; every backoff delay goes through it (default: a
	// timer). Tests inject a fake clock here.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a number in [0, 1) for the jitter (default math/rand/v2's Float64). Calls
	// are serialised by the client, so a seeded *rand.Rand's Float64 is fine.
	Rand func() float64
}

// Defaults of the zero Options fields.
const (
	DefaultBackoffInitial = 500 * time.Millisecond
	DefaultBackoffMax     = 30 * time.Second
	DefaultJitter         = 100 * time.Millisecond
	DefaultJitterFraction = 0.5
	DefaultDialTimeout    = 10 * time.Second
	DefaultWriteTimeout   = 10 * time.Second
	DefaultPingInterval   = 25 * time.Second
	DefaultPingTimeout    = 15 * time.Second
	DefaultReadLimit      = 32 << 20
	DefaultMaxPending     = 4096
)

// withDefaults fills the zero fields.
func (o Options) withDefaults() Options {
	if o.BackoffInitial <= 0 {
		o.BackoffInitial = DefaultBackoffInitial
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = DefaultBackoffMax
	}
	if o.BackoffMultiplier < 1 {
		o.BackoffMultiplier = 2
	}
	switch {
	case o.Jitter == 0:
		o.Jitter = DefaultJitter
	case o.Jitter < 0:
		o.Jitter = 0
	}
	switch {
	case o.JitterFraction == 0:
		o.JitterFraction = DefaultJitterFraction
	case o.JitterFraction < 0:
		o.JitterFraction = 0
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.PingInterval == 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = DefaultPingTimeout
	}
	if o.ReadLimit <= 0 {
		o.ReadLimit = DefaultReadLimit
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.HTTPClient == nil {
		o.HTTPClient = http.DefaultClient
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	return o
}

// endpoint is one WebSocket URL with its health URL ("" for no probe).
type endpoint struct {
	url, health string
}

// endpoints returns the URLs to rotate through, first the one given to Dial.
func (o *Options) endpoints(first string) ([]endpoint, error) {
	urls := append([]string{first}, o.URLs...)
	if len(o.HealthURLs) > 0 && len(o.HealthURLs) != len(urls) {
		return nil, fmt.Errorf("wsgate: %d HealthURLs for %d WebSocket URLs", len(o.HealthURLs), len(urls))
	}
	eps := make([]endpoint, len(urls))
	for i, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("wsgate: URL %q: %w", s, err)
		}
		switch u.Scheme {
		case "ws", "wss", "http", "https":
		default:
			return nil, fmt.Errorf("wsgate: URL %q: scheme must be ws or wss", s)
		}
		eps[i] = endpoint{url: s, health: o.HealthURL}
		if len(o.HealthURLs) > 0 {
			eps[i].health = o.HealthURLs[i]
		}
	}
	return eps, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// State is where a Client stands with its connection.
type State int

// The states, in the order a client usually goes through them.
const (
	// StateConnecting: Dial is making the first connection.
	StateConnecting State = iota
	// StateConnected: a connection is open; subscriptions and pending publishes have been sent.
	StateConnected
	// StateReconnecting: the connection was lost; the client waits out its backoff delay or
	// tries again.
	StateReconnecting
	// StateClosed: Close was called, the gateway closed with 4002, or Dial failed. Final.
	StateClosed
)

func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Message is one channel message as the gateway numbered it.
type Message struct {
	Channel string
	// Seq is the message's number in its channel: the messages a handler receives follow each
	// other by exactly one, unless the gateway lost some (then OnRecoveryFailed was called).
	Seq uint64
	// Epoch names the channel's numbering the message belongs to (docs/protocol.md).
	Epoch string
	// ID is the publish id, "" when the publish had none.
	ID string
	// Data is the published JSON value, byte for byte.
	Data json.RawMessage
}

// PublishResult is the gateway's answer to a publish.
type PublishResult struct {
	// Seq is the number the message got in its channel; 0 when Duplicate.
	Seq uint64
	// Duplicate says the gateway had already taken a publish with this id on this channel
	// within its dedup window (for example the same publish, sent again after a reconnect):
	// nothing was published again.
	Duplicate bool
}

// Errors the client's calls return.
var (
	// ErrClosed: the client is closed (Close, a 4002 close, or Dial failed).
	ErrClosed = errors.New("wsgate: client closed")
	// ErrDisconnected: the gateway closed the connection with 4002 (disconnected by the
	// server); the client does not reconnect. Client.Err wraps it.
	ErrDisconnected = errors.New("wsgate: disconnected by the server")
	// ErrNotSubscribed: Unsubscribe from a channel the client is not subscribed to.
	ErrNotSubscribed = errors.New("wsgate: not subscribed")
	// ErrAlreadySubscribed: Subscribe to a channel twice.
	ErrAlreadySubscribed = errors.New("wsgate: already subscribed")
	// ErrUnconfirmed: a publish without id was sent, and the connection was lost before the
	// gateway answered. It may or may not have been published; without an id the client cannot
	// send it again safely. Give publishes an id to have them retried.
	ErrUnconfirmed = errors.New("wsgate: connection lost before the gateway confirmed the publish (no id to retry it safely)")
)

// ServerError is an {"op":"error"} reply of the gateway (codes in docs/protocol.md: 403
// publishing disabled, 422 invalid channel or id, 429 too many channels, 503 cluster
// unavailable, ...).
type ServerError struct {
	Code   int
	Reason string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("wsgate: gateway error %d: %s", e.Code, e.Reason)
}
