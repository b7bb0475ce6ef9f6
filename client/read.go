package client

import (
	"encoding/json"
	"fmt"
)

// handle processes one text frame from cn. It returns true when the delivery queue has
// overflowed (Options.MaxPending): the queued messages were dropped and the caller must drop the
// connection. Run goroutine.
func (c *Client) handle(cn *wsConn, b []byte) (overflow bool) {
	var f frameIn
	if err := json.Unmarshal(b, &f); err != nil {
		c.pushError(fmt.Errorf("wsgate: unreadable frame from the gateway: %w", err))
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch f.Op {
	case "message":
		c.onMessageLocked(cn, &f)
	case "subscribed":
		c.onSubscribedLocked(cn, &f)
	case "unsubscribed":
		if k := cn.firstReq(f.Channel, true); k >= 0 {
			cn.answer(k, nil)
		}
	case "published", "duplicate":
		for _, op := range c.pubs {
			if op.gen == cn.gen && op.channel == f.Channel && op.id == f.ID {
				c.resolveLocked(op, PublishResult{Seq: f.Seq, Duplicate: f.Op == "duplicate"}, nil)
				break
			}
		}
	case "broadcast":
		c.pushLocked(item{kind: itemBroadcast, msg: Message{ID: f.ID, Data: f.Data}})
	case "error":
		c.onErrorLocked(cn, &ServerError{Code: f.Code, Reason: f.Reason})
	}
	if c.pending > c.opts.MaxPending {
		c.dropMessagesLocked()
		return true
	}
	return false
}

// onMessageLocked queues a channel message unless it is a duplicate (at or below the
// subscription's position) or belongs to no current subscription.
func (c *Client) onMessageLocked(cn *wsConn, f *frameIn) {
	if cn.pendingFor(f.Channel) {
		return // an old subscription's, before its unsubscribed; or no subscription yet
	}
	s := c.subs[f.Channel]
	if s == nil || (s.pos.known && f.Seq <= s.pos.seq) {
		return
	}
	s.pos.seq, s.pos.known = f.Seq, true
	c.pushLocked(item{kind: itemMessage, sub: s, msg: Message{
		Channel: f.Channel, Seq: f.Seq, Epoch: s.pos.epoch, ID: f.ID, Data: f.Data,
	}})
}

// onSubscribedLocked takes a subscribed frame: the answer to the channel's first pending
// subscribe, or, when none is pending, a notice that the channel's numbering changed under the
// subscription (its first epoch in a cluster, or a restart with recovered:false).
func (c *Client) onSubscribedLocked(cn *wsConn, f *frameIn) {
	to := position{seq: f.Seq, epoch: f.Epoch, known: true}
	failed := f.Recovered != nil && !*f.Recovered
	if k := cn.firstReq(f.Channel, false); k >= 0 {
		r := cn.reqs[k]
		if r.unsub {
			return // a notice for the subscription being unsubscribed
		}
		if s := r.sub; c.subs[f.Channel] == s && (!r.since || failed) {
			// A first subscribe starts at the channel's top; a failed recovery moves there.
			s.pos = to
			c.pushLocked(item{kind: itemPosition, sub: s, pos: to, failed: r.since})
		}
		cn.answer(k, nil)
		return
	}
	if s := c.subs[f.Channel]; s != nil {
		s.pos = to
		c.pushLocked(item{kind: itemPosition, sub: s, pos: to, failed: failed})
	}
}

// onErrorLocked gives an error reply to what it answers. The gateway's error frames name no
// request, so it goes by what each code can answer: 429 a subscribe, 404 an unsubscribe, 403
// and 503 a publish, others the oldest request. What matches nothing goes to OnError.
func (c *Client) onErrorLocked(cn *wsConn, e *ServerError) {
	k := -1
	switch e.Code {
	case 429:
		k = cn.firstReqKind(false)
	case 404:
		k = cn.firstReqKind(true)
	case 403, 503:
	default:
		if len(cn.reqs) > 0 {
			k = 0
		}
	}
	if k >= 0 {
		r := cn.reqs[k]
		if e.Code == 404 {
			cn.answer(k, nil) // unsubscribed from what was not subscribed: done all the same
			return
		}
		if !r.unsub && c.subs[r.channel] == r.sub {
			delete(c.subs, r.channel)
			if r.waiter == nil {
				c.pushLocked(item{kind: itemError, err: fmt.Errorf("wsgate: resubscribe to %s refused: %w", r.channel, e)})
			}
		}
		cn.answer(k, e)
		return
	}
	if e.Code == 503 {
		c.unavailableLocked(cn, e)
		return
	}
	for _, op := range c.pubs {
		if op.gen == cn.gen {
			c.resolveLocked(op, PublishResult{}, e)
			return
		}
	}
	if c.opts.OnError != nil {
		c.pushLocked(item{kind: itemError, err: e})
	}
}

// unavailableLocked handles a 503 (cluster mode: NATS unreachable, or too many publishes in
// flight on the node): the publish it refused was not numbered. Which one is unknown, so every
// publish with an id that is waiting on cn is sent again after a backoff delay (the gateway's
// dedup answers duplicate for those that did get through). Without one, the oldest publish
// without id fails with the error.
func (c *Client) unavailableLocked(cn *wsConn, e *ServerError) {
	var noID *pubOp
	for _, op := range c.pubs {
		if op.gen != cn.gen {
			continue
		}
		if op.id != "" {
			if !c.retryArmed {
				c.retryArmed = true
				c.wg.Add(1)
				go c.retryPublishes(cn)
			}
			return
		}
		if noID == nil {
			noID = op
		}
	}
	if noID != nil {
		c.resolveLocked(noID, PublishResult{}, e)
	} else if c.opts.OnError != nil {
		c.pushLocked(item{kind: itemError, err: e})
	}
}

// retryPublishes sends cn's unanswered publishes with an id again after a delay.
func (c *Client) retryPublishes(cn *wsConn) {
	defer c.wg.Done()
	err := c.opts.Sleep(c.ctx, c.delay(0))
	c.mu.Lock()
	c.retryArmed = false
	if err == nil && c.conn == cn {
		for _, op := range c.pubs {
			if op.gen == cn.gen && op.id != "" {
				cn.out = append(cn.out, op.frame)
			}
		}
	}
	c.mu.Unlock()
	c.kick()
}

// firstReq returns the index of the first unanswered request for channel (only unsubscribes
// when unsub), or -1.
func (cn *wsConn) firstReq(channel string, unsub bool) int {
	for i, r := range cn.reqs {
		if r.channel == channel && (!unsub || r.unsub) {
			return i
		}
	}
	return -1
}

// firstReqKind returns the index of the first unanswered subscribe (or unsubscribe), or -1.
func (cn *wsConn) firstReqKind(unsub bool) int {
	for i, r := range cn.reqs {
		if r.unsub == unsub {
			return i
		}
	}
	return -1
}

// pendingFor reports whether a request for channel is unanswered: until then the frames of that
// channel belong to what came before it.
func (cn *wsConn) pendingFor(channel string) bool { return cn.firstReq(channel, false) >= 0 }

// answer resolves request k with err and removes it.
func (cn *wsConn) answer(k int, err error) {
	if w := cn.reqs[k].waiter; w != nil {
		w <- err
	}
	cn.reqs = append(cn.reqs[:k], cn.reqs[k+1:]...)
}
