package client

import (
	"context"
	"time"

	"github.com/coder/websocket"
)

// write is the writer goroutine: it writes the current connection's queued frames in order and
// pings it every PingInterval. A write or ping that fails or times out drops the connection;
// the run goroutine then sees its read fail and reconnects.
func (c *Client) write() {
	defer c.wg.Done()
	var tick <-chan time.Time
	if c.opts.PingInterval > 0 {
		t := time.NewTicker(c.opts.PingInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-tick:
			c.ping()
		case <-c.wake:
			c.flush()
		}
	}
}

// flush writes what is queued on the current connection.
func (c *Client) flush() {
	for {
		c.mu.Lock()
		cn := c.conn
		if cn == nil || len(cn.out) == 0 {
			c.mu.Unlock()
			return
		}
		out := cn.out
		cn.out = nil
		c.mu.Unlock()
		for _, f := range out {
			// Not c.ctx: Close must not cut a frame short before its close handshake.
			ctx, cancel := context.WithTimeout(context.Background(), c.opts.WriteTimeout)
			err := cn.ws.Write(ctx, websocket.MessageText, f)
			cancel()
			if err != nil {
				cn.ws.CloseNow()
				return
			}
		}
	}
}

// ping checks that the current connection is alive.
func (c *Client) ping() {
	c.mu.Lock()
	cn := c.conn
	c.mu.Unlock()
	if cn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.PingTimeout)
	defer cancel()
	if err := cn.ws.Ping(ctx); err != nil && c.ctx.Err() == nil {
		cn.ws.CloseNow()
	}
}
