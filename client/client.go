package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// Client is a connection to a wsgate gateway that survives disconnections. Its methods may be
// called from any goroutine, including from handlers and callbacks.
type Client struct {
	opts      Options    // immutable after Dial, defaults applied
	endpoints []endpoint // immutable after Dial
	ctx       context.Context
	cancel    context.CancelFunc // ends ctx: Close, or the client stopping by itself
	done      chan struct{}      // closed when the run goroutine has finished
	wake      chan struct{}      // wakes the writer (capacity 1: wake-ups coalesce)
	wg        sync.WaitGroup     // the writer and publish-retry goroutines
	randMu    sync.Mutex         // serialises opts.Rand

	// Run goroutine only.
	step int // backoff step: failed attempts since a connection last received a frame
	next int // index in endpoints of the next attempt

	mu         sync.Mutex
	dcond      sync.Cond // signals the delivery goroutine; L is &mu
	conn       *wsConn   // the open connection, nil while there is none
	gen        uint64    // generation of the last connection attached
	subs       map[string]*subscription
	pubs       []*pubOp // unanswered publishes, in the order Publish was called
	queue      []item   // delivery queue
	pending    int      // message items in queue
	closing    bool     // Close was called
	stopped    bool     // the client has stopped; err says why
	err        error
	retryArmed bool // a publish retry after a 503 is scheduled
}

// wsConn is one WebSocket connection and what is pending on it.
type wsConn struct {
	ws  *websocket.Conn
	url string
	gen uint64
	// Guarded by Client.mu.
	out  [][]byte  // frames for the writer, in order
	reqs []request // subscribes and unsubscribes sent and not answered, in send order
}

// request is a subscribe or unsubscribe waiting for its answer on a connection.
type request struct {
	unsub   bool
	channel string
	sub     *subscription // subscribe: the subscription it is for
	since   bool          // subscribe: it asked for recovery
	waiter  chan error    // the call waiting for the answer, nil for a resubscribe
}

// subscription is one channel the client is subscribed to. Its fields are guarded by Client.mu.
type subscription struct {
	channel   string
	h         func(Message)
	pos       position // the last message accepted into the delivery queue
	delivered position // the last message given to h (delivery goroutine)
}

// position is a place in a channel's numbering; known is false before the first answer.
type position struct {
	seq   uint64
	epoch string
	known bool
}

// pubOp is a publish waiting for its answer.
type pubOp struct {
	channel, id string
	frame       []byte
	gen         uint64          // connection it was last sent on; 0: not sent yet
	done        chan pubOutcome // capacity 1; receives exactly once
}

type pubOutcome struct {
	res PublishResult
	err error
}

// Dial connects to the gateway at url (ws:// or wss://) and returns once the first connection
// is open. While it cannot connect it retries with backoff until ctx ends, and then returns
// ctx's error with the last failure. ctx bounds Dial only: the client lives until Close or a
// 4002 close from the gateway.
func Dial(ctx context.Context, url string, opts Options) (*Client, error) {
	o := opts.withDefaults()
	eps, err := o.endpoints(url)
	if err != nil {
		return nil, err
	}
	c := &Client{
		opts:      o,
		endpoints: eps,
		done:      make(chan struct{}),
		wake:      make(chan struct{}, 1),
		subs:      make(map[string]*subscription),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.dcond.L = &c.mu
	go c.deliver()
	c.pushState(StateConnecting)
	cn, err := c.connectLoop(ctx, true)
	if err != nil {
		c.cancel()
		c.finish(err)
		close(c.done)
		return nil, err
	}
	c.attach(cn) // before Dial returns: a Subscribe that follows waits for its answer
	c.wg.Add(1)
	go c.write()
	go c.run(cn)
	c.kick()
	return c, nil
}

// Subscribe starts delivering channel's messages to h, from the next message published. h is
// called on the client's delivery goroutine, one message at a time, in sequence order, exactly
// once per message across reconnects. When connected, Subscribe waits for the gateway's answer
// and returns its refusal (a *ServerError, e.g. 429 too many channels); when not, or when the
// connection drops first, the subscription is made on the next connection and Subscribe returns
// nil.
func (c *Client) Subscribe(channel string, h func(Message)) error {
	if !validChannel(channel) {
		return fmt.Errorf("wsgate: subscribe: invalid channel name %q", channel)
	}
	if h == nil {
		return errors.New("wsgate: subscribe: nil handler")
	}
	c.mu.Lock()
	if c.closing || c.stopped {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.subs[channel] != nil {
		c.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrAlreadySubscribed, channel)
	}
	s := &subscription{channel: channel, h: h}
	c.subs[channel] = s
	var w chan error
	if cn := c.conn; cn != nil {
		w = make(chan error, 1)
		c.subscribeLocked(cn, s, w)
	}
	c.mu.Unlock()
	if w == nil {
		return nil
	}
	c.kick()
	return <-w // answered, or resolved when the connection goes (detach)
}

// Unsubscribe stops the delivery of channel's messages: no handler call starts after it returns
// (one already running may finish). When connected it waits for the gateway's answer.
func (c *Client) Unsubscribe(channel string) error {
	c.mu.Lock()
	if c.closing || c.stopped {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.subs[channel] == nil {
		c.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNotSubscribed, channel)
	}
	delete(c.subs, channel)
	var w chan error
	if cn := c.conn; cn != nil {
		w = make(chan error, 1)
		cn.out = append(cn.out, appendUnsubscribe(nil, channel))
		cn.reqs = append(cn.reqs, request{unsub: true, channel: channel, waiter: w})
	}
	c.mu.Unlock()
	if w == nil {
		return nil
	}
	c.kick()
	<-w
	return nil // a 404 (not subscribed there) is what was wanted too
}

// Publish publishes data (one JSON value, sent byte for byte) to channel with the given id ("" for
// none) and waits for the gateway's answer or the end of ctx. The gateway must run with
// -client-publish. While the client is disconnected the publish waits for the next connection.
// A publish with an id that was sent but not answered when the connection dropped is sent again
// on the next one: the gateway's dedup answers `duplicate` if the first copy got through, so it
// is published once. Without an id it fails with ErrUnconfirmed instead. When ctx ends first,
// Publish returns ctx's error and the client forgets the publish, which may still have reached
// the gateway if it had been sent.
func (c *Client) Publish(ctx context.Context, channel, id string, data []byte) (PublishResult, error) {
	switch {
	case !validChannel(channel):
		return PublishResult{}, fmt.Errorf("wsgate: publish: invalid channel name %q", channel)
	case len(id) > maxID || !utf8.ValidString(id):
		return PublishResult{}, fmt.Errorf("wsgate: publish: invalid id (at most %d bytes of UTF-8)", maxID)
	case !json.Valid(data) || !utf8.Valid(data):
		return PublishResult{}, errors.New("wsgate: publish: data must be one JSON value in UTF-8")
	}
	op := &pubOp{channel: channel, id: id, frame: appendPublish(nil, channel, id, data), done: make(chan pubOutcome, 1)}
	c.mu.Lock()
	if c.closing || c.stopped {
		c.mu.Unlock()
		return PublishResult{}, ErrClosed
	}
	c.pubs = append(c.pubs, op)
	if cn := c.conn; cn != nil {
		cn.out = append(cn.out, op.frame)
		op.gen = cn.gen
	}
	c.mu.Unlock()
	c.kick()
	select {
	case r := <-op.done:
		return r.res, r.err
	case <-ctx.Done():
		c.mu.Lock()
		c.dropPubLocked(op)
		c.mu.Unlock()
		select {
		case r := <-op.done: // answered meanwhile
			return r.res, r.err
		default:
			return PublishResult{}, ctx.Err()
		}
	}
}

// Close closes the connection with 1000 and stops the client: pending calls return ErrClosed,
// undelivered messages are dropped, OnState(StateClosed) is the last callback. It waits for the
// client's network goroutines, not for a handler that is running, so a handler may call it.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closing || c.stopped {
		c.mu.Unlock()
		<-c.done
		return nil
	}
	c.closing = true
	cn := c.conn
	c.mu.Unlock()
	c.cancel() // ends backoff sleeps, dials and the writer
	if cn != nil {
		cn.ws.Close(websocket.StatusNormalClosure, "") // the run goroutine reads the answer
	}
	<-c.done
	c.wg.Wait()
	return nil
}

// Done is closed when the client has stopped: after Close, or when the gateway disconnected it
// (4002).
func (c *Client) Done() <-chan struct{} { return c.done }

// Err says why the client stopped: nil while it runs and after Close, an error wrapping
// ErrDisconnected after a 4002 close.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// kick wakes the writer.
func (c *Client) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// subscribeLocked queues a subscribe for s on cn, with `since` when s has a position.
func (c *Client) subscribeLocked(cn *wsConn, s *subscription, w chan error) {
	cn.out = append(cn.out, appendSubscribe(nil, s.channel, s.pos))
	cn.reqs = append(cn.reqs, request{channel: s.channel, sub: s, since: s.pos.known, waiter: w})
}

// resolveLocked answers op once and forgets it.
func (c *Client) resolveLocked(op *pubOp, res PublishResult, err error) {
	if c.dropPubLocked(op) {
		op.done <- pubOutcome{res, err}
	}
}

// dropPubLocked removes op from the pending publishes; false if it was not there.
func (c *Client) dropPubLocked(op *pubOp) bool {
	for i, p := range c.pubs {
		if p == op {
			c.pubs = append(c.pubs[:i], c.pubs[i+1:]...)
			return true
		}
	}
	return false
}

// finish stops the client for good with err (nil: closed by Close or its Dial's ctx).
func (c *Client) finish(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	c.err = err
	if err == nil || !errors.Is(err, ErrDisconnected) {
		c.dropMessagesLocked() // closed by the user: nothing more to deliver
	}
	failed := ErrClosed
	if err != nil {
		failed = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	for _, op := range c.pubs {
		op.done <- pubOutcome{err: failed}
	}
	c.pubs = nil
	c.pushLocked(item{kind: itemState, state: StateClosed})
}
