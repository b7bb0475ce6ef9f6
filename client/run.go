package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/coder/websocket"
)

// Close codes that change how the client reconnects (docs/clients.md has the whole table).
const (
	// CloseTokenExpired: the gateway closed because the connection's token expired. The client
	// reconnects at once with a fresh token from Options.Token.
	CloseTokenExpired = 4001
	// CloseDisconnected: the gateway disconnected the client on purpose (the operator or the
	// application said so). The client stops: it does not reconnect.
	CloseDisconnected = 4002
)

// ended is how a connection ended.
type ended struct {
	code     int    // the close code, 1006 when the connection dropped without one
	reason   string // the close reason
	err      error
	gotFrame bool // the connection received at least one frame
}

// run is the run goroutine: it serves cn (attached), and after each lost connection decides between a
// reconnect (after a backoff delay, or at once for 4001) and stopping (Close, 4002).
func (c *Client) run(cn *wsConn) {
	defer close(c.done)
	immediate := false // the last reconnect was an immediate one after a 4001
	for {
		e := c.serve(cn)
		c.detach(cn)
		if c.isClosing() {
			c.finish(nil)
			return
		}
		if e.code == CloseDisconnected {
			c.cancel()
			c.finish(fmt.Errorf("%w (close %d %q)", ErrDisconnected, e.code, e.reason))
			return
		}
		c.pushError(fmt.Errorf("wsgate: connection to %s lost: %w", cn.url, e.err))
		// A 4001 reconnects at once, unless the previous reconnect was that too and the
		// connection it made received nothing: a token the gateway refuses at once must not
		// make the client spin.
		immediate = e.code == CloseTokenExpired && (e.gotFrame || !immediate)
		c.next = (c.next + 1) % len(c.endpoints)
		c.pushState(StateReconnecting)
		var err error
		if cn, err = c.connectLoop(c.ctx, immediate); err != nil || !c.attach(cn) {
			if cn != nil {
				cn.ws.CloseNow()
			}
			c.finish(nil) // only Close ends the loop
			return
		}
		c.kick()
	}
}

// isClosing reports whether Close was called.
func (c *Client) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// connectLoop makes attempts until one connects or ctx ends, waiting out the backoff delay
// before each attempt except the first when now is true. initial (Dial's loop) skips the health
// probe of the first attempt. Run goroutine (or Dial, before it starts).
func (c *Client) connectLoop(ctx context.Context, now bool) (*wsConn, error) {
	probe := !now || c.gen > 0
	var last error
	for {
		if !now {
			if err := c.opts.Sleep(ctx, c.delay(c.step)); err != nil {
				return nil, errors.Join(err, last)
			}
			c.step++
		}
		now = false
		cn, err := c.connect(ctx, probe)
		if err == nil {
			return cn, nil
		}
		if ctx.Err() != nil {
			return nil, errors.Join(ctx.Err(), err)
		}
		last = err
		probe = true
		c.pushError(err)
		c.next = (c.next + 1) % len(c.endpoints)
	}
}

// connect makes one attempt on the current endpoint: health probe, token, opening handshake.
func (c *Client) connect(ctx context.Context, probe bool) (*wsConn, error) {
	ep := c.endpoints[c.next]
	ctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	if probe && ep.health != "" {
		if err := c.probe(ctx, ep.health); err != nil {
			return nil, err
		}
	}
	u := ep.url
	if c.opts.Token != nil {
		tok, err := c.opts.Token(ctx)
		if err != nil {
			return nil, fmt.Errorf("wsgate: token for %s: %w", ep.url, err)
		}
		if u, err = withToken(u, tok); err != nil {
			return nil, err
		}
	}
	ws, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: c.opts.HTTPClient, HTTPHeader: c.opts.Header})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("wsgate: dial %s: HTTP %d: %w", ep.url, resp.StatusCode, err)
		}
		return nil, fmt.Errorf("wsgate: dial %s: %w", ep.url, err)
	}
	ws.SetReadLimit(c.opts.ReadLimit)
	return &wsConn{ws: ws, url: ep.url}, nil
}

// probe GETs a health URL; anything but 2xx is an error.
func (c *Client) probe(ctx context.Context, health string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, health, nil)
	if err != nil {
		return fmt.Errorf("wsgate: health URL: %w", err)
	}
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("wsgate: health probe %s: %w", health, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("wsgate: health probe %s: %s", health, resp.Status)
	}
	return nil
}

// withToken sets the token query parameter of u.
func withToken(u, token string) (string, error) {
	p, err := url.Parse(u)
	if err != nil {
		return "", err
	}
	q := p.Query()
	q.Set("token", token)
	p.RawQuery = q.Encode()
	return p.String(), nil
}

// serve reads cn, attached, until it ends.
func (c *Client) serve(cn *wsConn) ended {
	got := false
	for {
		typ, b, err := cn.ws.Read(context.Background())
		if err != nil {
			e := ended{code: 1006, err: err, gotFrame: got}
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				e.code, e.reason = int(ce.Code), ce.Reason
			}
			return e
		}
		if !got {
			got = true
			c.step = 0 // the gateway is serving again: the next reconnect starts from the first delay
		}
		if typ == websocket.MessageText && c.handle(cn, b) {
			cn.ws.CloseNow()
			return ended{code: 1008, err: errors.New("handlers fell behind (Options.MaxPending): dropped the connection to recover from history"), gotFrame: true}
		}
	}
}

// attach makes cn the client's connection and queues on it a subscribe for every subscription
// (with `since` where the client has a position) and every unanswered publish. False when the
// client is closing.
func (c *Client) attach(cn *wsConn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.gen++
	cn.gen = c.gen
	c.conn = cn
	for _, s := range c.subs {
		c.subscribeLocked(cn, s, nil)
	}
	for i := 0; i < len(c.pubs); {
		op := c.pubs[i]
		if op.gen != 0 && op.id == "" {
			c.resolveLocked(op, PublishResult{}, ErrUnconfirmed) // removes it from c.pubs
			continue
		}
		op.gen = cn.gen
		cn.out = append(cn.out, op.frame)
		i++
	}
	c.pushLocked(item{kind: itemState, state: StateConnected})
	return true
}

// detach forgets cn: calls waiting for an answer on it return (their work is redone on the next
// connection), its queued output is dropped.
func (c *Client) detach(cn *wsConn) {
	cn.ws.CloseNow()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == cn {
		c.conn = nil
	}
	for k := len(cn.reqs) - 1; k >= 0; k-- {
		cn.answer(k, nil)
	}
	cn.out = nil
}
