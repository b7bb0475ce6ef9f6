package pubsub

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"strconv"
	"sync/atomic"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/auth"
	"github.com/wsgate/wsgate/conn"
	"github.com/wsgate/wsgate/frame"
)

// Authentication and authorization (docs/auth.md). With Config.Auth set, every connection
// presents a token in the handshake; its claims travel in the connection's client state and
// decide every subscribe and publish. A user's connections are the subscribers of the user's
// personal channel "#<sub>", which every authenticated connection joins at the handshake and
// may not leave: user-targeted publishes are publishes to that channel, and /api/disconnect
// walks its subscribers on each loop. No second table of users is kept.

// Close codes of the gateway (docs/protocol.md).
const (
	CloseTokenExpired = 4001 // the token's exp passed without a refresh: reconnect with a fresh token
	CloseDisconnected = 4002 // POST /api/disconnect: do not reconnect
)

const (
	reasonTokenExpired = "token expired"
	reasonDisconnected = "disconnected by server"
)

// ErrCodeUnauthorized answers a refresh whose token is refused.
const ErrCodeUnauthorized = 401

// authStats are the counters of authentication; any goroutine (atomics).
type authStats struct {
	refused   [auth.NumReasons]atomic.Uint64 // handshakes refused for a bad or missing token, by reason
	origin    atomic.Uint64                  // handshakes refused by the Origin allow-list
	forbidden atomic.Uint64                  // subscribes and publishes the token does not allow (403)
	refreshed atomic.Uint64                  // successful refreshes
	kicked    atomic.Uint64                  // connections closed with 4002
}

// Admit decides whether a handshake may open a connection, WebSocket or SSE: the Origin
// allow-list first (403), then, with Config.Auth, the token from "?token=" or "Authorization:
// Bearer" (401, with the refusal counted by reason and logged at debug level without the token).
// It returns the token's claims (nil when auth is off) or the HTTP status and a one-line reason
// for the response body. Any goroutine; a token check costs one signature verification
// (docs/auth.md has the figures). r is only read during the call.
func (p *PubSub) Admit(r *frame.Request) (claims *auth.Claims, status int, reason string) {
	if o := p.cfg.Origins; o.Enabled() {
		origin, present := r.Header("Origin")
		if !o.Allowed(origin, present) {
			p.authn.origin.Add(1)
			if !present {
				return nil, 403, "Origin header required"
			}
			return nil, 403, "origin not allowed"
		}
	}
	if p.cfg.Auth == nil {
		return nil, 0, ""
	}
	tok := requestToken(r)
	claims, err := p.cfg.Auth.Verify(tok)
	if err != nil {
		ae, _ := err.(*auth.Error)
		if ae == nil {
			ae = &auth.Error{Reason: auth.ReasonClaims, Msg: err.Error()}
		}
		p.authn.refused[ae.Reason].Add(1)
		if p.log.Enabled(context.Background(), slog.LevelDebug) {
			p.log.Debug("handshake refused: token", "reason", ae.Reason.String(), "detail", ae.Msg,
				"path", string(r.Path()))
		}
		return nil, 401, ae.Msg
	}
	return claims, 0, ""
}

// AllowedOrigin reports whether a request with this Origin header (present: whether it has
// one) passes the allow-list: SSE answers CORS with it. Any goroutine; allocates nothing.
func (p *PubSub) AllowedOrigin(origin []byte, present bool) bool {
	return p.cfg.Origins.Allowed(origin, present)
}

// AuthEnabled reports whether connections must present a token.
func (p *PubSub) AuthEnabled() bool { return p.cfg.Auth != nil }

// requestToken finds the token: the "token" query parameter (browsers cannot set headers on a
// WebSocket), else "Authorization: Bearer <token>". "" when there is none.
func requestToken(r *frame.Request) string {
	q := r.RawQuery()
	for len(q) > 0 {
		var kv []byte
		if i := bytes.IndexByte(q, '&'); i >= 0 {
			kv, q = q[:i], q[i+1:]
		} else {
			kv, q = q, nil
		}
		if v, ok := bytes.CutPrefix(kv, []byte("token=")); ok {
			if bytes.IndexByte(v, '%') < 0 && bytes.IndexByte(v, '+') < 0 {
				return string(v) // base64url and dots: nothing to decode
			}
			s, err := url.QueryUnescape(string(v))
			if err != nil {
				return string(v) // verification refuses it as malformed
			}
			return s
		}
	}
	if h, ok := r.Header("Authorization"); ok {
		if len(h) > 7 && frame.EqualFoldASCII(h[:7], "bearer ") {
			return string(bytes.TrimSpace(h[7:]))
		}
	}
	return ""
}

// Check is the WebSocket handshake's check (conn.Config.Check; the server installs it): Admit,
// and for an admitted token the connection's client state with its claims and expiry. Loop
// goroutine.
func (p *PubSub) Check(c *conn.Conn, r *frame.Request) (int, string) {
	claims, status, reason := p.Admit(r)
	if status != 0 {
		return status, reason
	}
	if claims != nil {
		cl := &client{claims: claims}
		p.setExpiry(c, cl)
		c.Data = cl
	}
	return 0, ""
}

// setExpiry converts the token's exp (wall clock) to the loop's clock, where the connection's
// timer runs. Loop goroutine.
func (p *PubSub) setExpiry(c *conn.Conn, cl *client) {
	if cl.claims.Exp.IsZero() {
		cl.expAt = 0
		return
	}
	left := cl.claims.Exp.Sub(p.cfg.Auth.Now())
	cl.expAt = c.Engine().Loop().Now() + max(int64(left), 1)
}

// Expiry implements conn.Expirer: a connection closes with 4001 at its token's exp. Loop
// goroutine; allocates nothing.
func (p *PubSub) Expiry(c *conn.Conn) (int64, ws.StatusCode, string) {
	if cl, ok := c.Data.(*client); ok && cl.expAt != 0 {
		return cl.expAt, CloseTokenExpired, reasonTokenExpired
	}
	return 0, 0, ""
}

// refresh answers {"op":"refresh","token":"..."}: a valid token for the same user replaces the
// connection's claims (permissions apply to later requests) and moves its expiry. Loop goroutine.
func (p *PubSub) refresh(c *conn.Conn, cl *client, token string) {
	if p.cfg.Auth == nil {
		p.replyError(c, cl, ErrCodeBadRequest, "authentication is off: there is no token to refresh")
		return
	}
	claims, err := p.cfg.Auth.Verify(token)
	if err != nil {
		p.replyError(c, cl, ErrCodeUnauthorized, err.Error())
		return
	}
	if claims.Sub != cl.claims.Sub {
		p.replyError(c, cl, ErrCodeForbidden, "the token is for another user")
		return
	}
	cl.claims = claims
	p.setExpiry(c, cl)
	c.ExpiryChanged()
	p.authn.refreshed.Add(1)
	var exp int64
	if !claims.Exp.IsZero() {
		exp = claims.Exp.Unix()
	}
	p.reply(c, func(b []byte) []byte {
		b = append(b, `{"op":"refreshed","exp":`...)
		b = strconv.AppendInt(b, exp, 10)
		return append(b, '}')
	})
}

// maySubscribe reports whether cl may subscribe to channel, with the reason when not.
func (p *PubSub) maySubscribe(cl *client, channel string) (bool, string) {
	if cl.claims == nil {
		if channel[0] == '#' {
			return false, "personal channels need a token"
		}
		return true, ""
	}
	if !cl.claims.MaySubscribe(channel) {
		if channel[0] == '#' {
			return false, "another user's personal channel"
		}
		return false, "the token does not allow channel " + channel
	}
	return true, ""
}

// mayPublish reports whether cl may publish to channel, with the reason when not.
func (p *PubSub) mayPublish(cl *client, channel string) (bool, string) {
	if channel[0] == '#' {
		return false, "personal channels take messages from the backend only"
	}
	if cl.claims != nil && !cl.claims.MayPublish(channel) {
		return false, "the token does not allow publishing to " + channel
	}
	return true, ""
}

// forbidden answers a request the token does not allow: 403, counted toward MaxErrors.
func (p *PubSub) forbidden(c *conn.Conn, cl *client, reason string) {
	p.authn.forbidden.Add(1)
	p.replyError(c, cl, ErrCodeForbidden, reason)
}

// Disconnect closes every connection of user on this node with 4002 "disconnected by server",
// and, in a cluster, tells the other nodes to do the same. It returns how many connections of
// this node it closed. Any goroutine but a loop's (it waits for the loops).
func (p *PubSub) Disconnect(user string) (int, error) {
	n := p.disconnectLocal(user)
	if p.cluster != nil {
		if err := p.cluster.disconnect(user); err != nil {
			return n, err
		}
	}
	return n, nil
}

// disconnectLocal walks the user's personal channel on every loop.
func (p *PubSub) disconnectLocal(user string) int {
	personal := "#" + user
	var done fanoutWait
	for i, e := range p.engines {
		subs := p.subs[i]
		done.wg.Add(1)
		if !e.Post(func() {
			n := 0
			subs.Each(personal, func(c *conn.Conn) {
				if c.Open() {
					c.Close(CloseDisconnected, reasonDisconnected)
					n++
				}
			})
			p.authn.kicked.Add(uint64(n))
			done.n.Add(int64(n))
			done.wg.Done()
		}) {
			done.wg.Done()
		}
	}
	done.wg.Wait()
	return int(done.n.Load())
}
