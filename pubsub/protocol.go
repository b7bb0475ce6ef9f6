package pubsub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/conn"
	"github.com/wsgate/wsgate/shard"
)

// request is a client operation. Data stays raw JSON.
type request struct {
	Op      string          `json:"op"`
	Channel string          `json:"channel"`
	ID      string          `json:"id"`
	Data    json.RawMessage `json:"data"`
	Since   json.RawMessage `json:"since"` // subscribe: {"seq":N,"epoch":"E"}, the last message seen
	Token   string          `json:"token"` // refresh: the new token
}

var errBadSince = errors.New(`invalid "since": want {"seq":N,"epoch":"E"} with the seq and epoch of the last message seen`)

// parseSince decodes a subscribe's "since"; nil when absent.
func parseSince(raw json.RawMessage) (*shard.Position, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var v struct {
		Seq   *uint64 `json:"seq"`
		Epoch *string `json:"epoch"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil || v.Seq == nil || v.Epoch == nil {
		return nil, errBadSince
	}
	return &shard.Position{Seq: *v.Seq, Epoch: *v.Epoch}, nil
}

// Error codes of {"op":"error"} replies (docs/protocol.md).
const (
	ErrCodeBadRequest    = 400 // not JSON, unknown op, binary frame, missing field
	ErrCodeForbidden     = 403 // publishing from clients is disabled, or the token does not allow the channel
	ErrCodeBadChannel    = 422 // invalid channel name or id
	ErrCodeTooMany       = 429 // too many channels on this connection
	ErrCodeNotSubscribed = 404 // unsubscribe from a channel not subscribed
	ErrCodeUnavailable   = 503 // cluster mode: NATS cannot be reached; retry
)

const (
	maxChannelName        = 128
	maxPublishID          = 128
	closeReasonTooManyErr = "too many invalid requests"
)

// OnMessage implements conn.Handler: one client operation.
func (p *PubSub) OnMessage(c *conn.Conn, op ws.OpCode, payload []byte) {
	cl := c.Data.(*client)
	if op != ws.OpText {
		p.replyError(c, cl, ErrCodeBadRequest, "binary frames are not part of the protocol")
		return
	}
	var req request
	if err := json.Unmarshal(payload, &req); err != nil {
		p.replyError(c, cl, ErrCodeBadRequest, "invalid JSON")
		return
	}
	loop := c.Engine().Loop().Index()
	switch req.Op {
	case "subscribe":
		if !ValidChannel(req.Channel) {
			p.replyError(c, cl, ErrCodeBadChannel, "invalid channel name")
			return
		}
		if ok, why := p.maySubscribe(cl, req.Channel); !ok {
			p.forbidden(c, cl, why)
			return
		}
		if cl.subs.Len() >= p.cfg.MaxChannels {
			p.replyError(c, cl, ErrCodeTooMany, "too many channels (limit "+strconv.Itoa(p.cfg.MaxChannels)+")")
			return
		}
		since, err := parseSince(req.Since)
		if err != nil {
			p.replyError(c, cl, ErrCodeBadRequest, err.Error())
			return
		}
		top, replay, recovered, _ := p.subs[loop].Subscribe(c, &cl.subs, req.Channel, since)
		p.reply(c, func(b []byte) []byte {
			return appendSubscribed(b, req.Channel, top, since != nil, recovered)
		})
		// The missed messages, as the very frames their subscribers got, before anything live.
		for _, f := range replay {
			if c.WriteFrame(f) != nil {
				break // closed as a slow consumer
			}
		}
	case "unsubscribe":
		if !ValidChannel(req.Channel) {
			p.replyError(c, cl, ErrCodeBadChannel, "invalid channel name")
			return
		}
		if cl.claims != nil && cl.claims.IsPersonal(req.Channel) {
			p.forbidden(c, cl, "the personal channel cannot be left")
			return
		}
		if !p.subs[loop].Unsubscribe(&cl.subs, req.Channel) {
			p.replyError(c, cl, ErrCodeNotSubscribed, "not subscribed to "+req.Channel)
			return
		}
		p.reply(c, func(b []byte) []byte {
			b = append(b, `{"op":"unsubscribed","channel":"`...)
			b = append(b, req.Channel...)
			return append(b, `"}`...)
		})
	case "publish":
		if !p.cfg.ClientPublish {
			p.replyError(c, cl, ErrCodeForbidden, "publishing from clients is disabled")
			return
		}
		if err := checkPublish(req.Channel, req.ID, req.Data); err != nil {
			code := ErrCodeBadRequest
			if errors.Is(err, errBadChannel) || errors.Is(err, errBadID) {
				code = ErrCodeBadChannel
			}
			p.replyError(c, cl, code, err.Error())
			return
		}
		if ok, why := p.mayPublish(cl, req.Channel); !ok {
			p.forbidden(c, cl, why)
			return
		}
		if p.cluster != nil {
			p.publishAsync(c, req)
			return
		}
		res, _ := p.Publish(context.Background(), req.Channel, req.ID, req.Data, false) // no error on a single node
		p.replyPublished(c, req.Channel, req.ID, res)
	case "refresh":
		p.refresh(c, cl, req.Token)
	default:
		p.replyError(c, cl, ErrCodeBadRequest, "unknown op")
	}
}

// replyPublished answers a client's publish: published with its seq, or duplicate.
func (p *PubSub) replyPublished(c *conn.Conn, channel, id string, res PublishOutcome) {
	p.reply(c, func(b []byte) []byte {
		if res.Duplicate {
			b = append(b, `{"op":"duplicate","channel":"`...)
			b = append(b, channel...)
			b = append(b, `","id":`...)
			b = appendJSONString(b, id)
			return append(b, '}')
		}
		b = append(b, `{"op":"published","channel":"`...)
		b = append(b, channel...)
		b = append(b, `","seq":`...)
		b = strconv.AppendUint(b, res.Seq, 10)
		if id != "" {
			b = append(b, `,"id":`...)
			b = appendJSONString(b, id)
		}
		return append(b, '}')
	})
}

// publishAsync sends a client's publish through the cluster off the loop (it waits for NATS) and
// brings the answer back to the connection, if it is still there, on its loop. Loop goroutine.
// req's fields are the request's own copies (json.Unmarshal copies strings and RawMessage).
func (p *PubSub) publishAsync(c *conn.Conn, req request) {
	select {
	case p.publishing <- struct{}{}:
	default:
		p.replyStatus(c, ErrCodeUnavailable, "too many publishes in flight on this node; retry")
		return
	}
	e, id := c.Engine(), c.ID()
	go func() {
		defer func() { <-p.publishing }()
		ctx, cancel := context.WithTimeout(context.Background(), clientPublishTimeout)
		res, err := p.Publish(ctx, req.Channel, req.ID, req.Data, false)
		cancel()
		e.Post(func() {
			c := e.Lookup(id)
			if c == nil {
				return // gone meanwhile
			}
			if err != nil {
				p.replyStatus(c, ErrCodeUnavailable, err.Error())
				return
			}
			p.replyPublished(c, req.Channel, req.ID, res)
		})
	}()
}

// replyStatus sends {"op":"error","code":N,"reason":R} without counting it against the client
// (the server's trouble, not the client's).
func (p *PubSub) replyStatus(c *conn.Conn, code int, reason string) {
	p.reply(c, func(b []byte) []byte {
		b = append(b, `{"op":"error","code":`...)
		b = strconv.AppendInt(b, int64(code), 10)
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, reason)
		return append(b, '}')
	})
}

// clientPublishTimeout bounds a client publish's round trip through the cluster.
const clientPublishTimeout = 10 * time.Second

// reply encodes a text message with fill into pooled scratch and queues it (copied) on c.
func (p *PubSub) reply(c *conn.Conn, fill func([]byte) []byte) {
	bp := p.scratch.Get().(*[]byte)
	b := fill((*bp)[:0])
	c.WriteMessage(ws.OpText, b)
	*bp = b
	p.scratch.Put(bp)
}

// replyError answers a bad request; it counts toward MaxErrors.
func (p *PubSub) replyError(c *conn.Conn, cl *client, code int, reason string) {
	cl.errors++
	p.replyStatus(c, code, reason)
	if cl.errors >= p.cfg.MaxErrors {
		c.Close(ws.StatusPolicyViolation, closeReasonTooManyErr)
	}
}

var (
	errBadChannel = errors.New("invalid channel name")
	errBadID      = errors.New("invalid id (at most 128 bytes of UTF-8)")
	errNoData     = errors.New(`"data" is required and must be JSON`)
	errDataUTF8   = errors.New(`"data" is not valid UTF-8 (it is sent in text frames, which clients reject otherwise)`)
)

// checkPublish validates a publish's fields.
func checkPublish(channel, id string, data json.RawMessage) error {
	if !ValidChannel(channel) {
		return errBadChannel
	}
	if len(id) > maxPublishID || !utf8.ValidString(id) {
		return errBadID
	}
	if len(bytes.TrimSpace(data)) == 0 || !json.Valid(data) {
		return errNoData
	}
	// encoding/json accepts invalid UTF-8 inside strings; a text frame carrying it makes every
	// RFC 6455 client fail the connection with 1007, so one bad publish would cut a channel.
	if !utf8.Valid(data) {
		return errDataUTF8
	}
	return nil
}

// ValidChannel reports whether name is a valid channel name: 1 to 128 bytes of ASCII letters,
// digits and _ - . : @ / (no escaping is ever needed to put it in JSON), or a user's personal
// channel: '#' followed by a user id (auth.ValidUser).
func ValidChannel(name string) bool {
	if len(name) == 0 || len(name) > maxChannelName {
		return false
	}
	i := 0
	if name[0] == '#' {
		if len(name) == 1 {
			return false
		}
		i = 1
	}
	for ; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '-', c == '.', c == ':', c == '@', c == '/':
		default:
			return false
		}
	}
	return true
}
