package client

// itemKind says what a delivery queue item carries.
type itemKind uint8

const (
	itemMessage   itemKind = iota // msg for sub's handler
	itemPosition                  // sub moved to pos; failed: call OnRecoveryFailed
	itemState                     // OnState(state)
	itemError                     // OnError(err)
	itemBroadcast                 // OnBroadcast(msg)
)

// item is one entry of the delivery queue: everything the user's code sees goes through it, so
// it sees it in the order the reader decided.
type item struct {
	kind   itemKind
	sub    *subscription
	msg    Message
	pos    position
	failed bool
	state  State
	err    error
}

// pushLocked queues it for the delivery goroutine.
func (c *Client) pushLocked(it item) {
	if it.kind == itemMessage {
		c.pending++
	}
	c.queue = append(c.queue, it)
	c.dcond.Signal()
}

func (c *Client) pushState(s State) {
	c.mu.Lock()
	c.pushLocked(item{kind: itemState, state: s})
	c.mu.Unlock()
}

func (c *Client) pushError(err error) {
	if c.opts.OnError == nil {
		return
	}
	c.mu.Lock()
	c.pushLocked(item{kind: itemError, err: err})
	c.mu.Unlock()
}

// dropMessagesLocked empties the queue of messages and of position changes, keeping the
// callbacks of states and errors, and moves every subscription's pos back to what its handler
// was last given (or to the newest position change the queue still holds for it), so that
// the next subscribe asks for what was dropped.
func (c *Client) dropMessagesLocked() {
	for _, s := range c.subs {
		s.pos = s.delivered
	}
	kept := c.queue[:0]
	for _, it := range c.queue {
		switch it.kind {
		case itemMessage:
			continue
		case itemPosition:
			it.sub.pos = it.pos
		}
		kept = append(kept, it)
	}
	clear(c.queue[len(kept):])
	c.queue = kept
	c.pending = 0
}

// deliver is the delivery goroutine: it calls the handlers and callbacks, one at a time, in
// queue order, and returns after OnState(StateClosed).
func (c *Client) deliver() {
	c.mu.Lock()
	for {
		for len(c.queue) == 0 {
			c.dcond.Wait()
		}
		it := c.queue[0]
		c.queue[0] = item{}
		c.queue = c.queue[1:]
		current := it.sub != nil && c.subs[it.sub.channel] == it.sub
		switch it.kind {
		case itemMessage:
			c.pending--
			if current {
				it.sub.delivered = position{seq: it.msg.Seq, epoch: it.msg.Epoch, known: true}
			}
		case itemPosition:
			if current {
				it.sub.delivered = it.pos
			}
		}
		c.mu.Unlock()
		switch it.kind {
		case itemMessage:
			if current {
				it.sub.h(it.msg)
			}
		case itemPosition:
			if current && it.failed && c.opts.OnRecoveryFailed != nil {
				c.opts.OnRecoveryFailed(it.sub.channel)
			}
		case itemState:
			if c.opts.OnState != nil {
				c.opts.OnState(it.state)
			}
			if it.state == StateClosed {
				return
			}
		case itemError:
			c.opts.OnError(it.err)
		case itemBroadcast:
			if c.opts.OnBroadcast != nil {
				c.opts.OnBroadcast(it.msg)
			}
		}
		c.mu.Lock()
	}
}
