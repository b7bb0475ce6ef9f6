package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/bench/peers/peerproto"
)

// sendQueueLen bounds each client's queue of outgoing messages; a client
// that falls this far behind is disconnected. 256 is gorilla's chat example's
// value; a slot is one pointer, so an idle client's queue costs 2 KiB.
const sendQueueLen = 256

// subscribers is a channel's subscriber set, guarded by the channel mutex.
type subscribers map[*client]struct{}

// server is one peer process: an HTTP server upgrading every request to a
// WebSocket and serving it in echo or pub/sub mode.
type server struct {
	pubsub   bool
	upgrader websocket.Upgrader
	reg      *peerproto.Registry[subscribers]
	http     *http.Server
}

// newServer returns a server for mode "echo" or "pubsub".
func newServer(mode string) (*server, error) {
	s := &server{
		upgrader: websocket.Upgrader{
			ReadBufferSize:  1024,
			WriteBufferSize: 1024,
			WriteBufferPool: &sync.Pool{},
		},
		reg: peerproto.NewRegistry(func() subscribers { return make(subscribers) }),
	}
	switch mode {
	case "echo":
	case "pubsub":
		s.pubsub = true
	default:
		return nil, fmt.Errorf("unknown -mode %q (want echo or pubsub)", mode)
	}
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// Serve accepts connections on ln until Close; it returns nil after Close.
func (s *server) Serve(ln net.Listener) error {
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops accepting. Upgraded connections are hijacked, so net/http no
// longer tracks them; they end when their clients go or the process exits.
func (s *server) Close() error { return s.http.Close() }

// ServeHTTP upgrades any path and serves the connection on the handler's
// goroutine until it closes.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has already answered with an HTTP error.
	}
	if s.pubsub {
		s.servePubSub(conn)
		return
	}
	serveEcho(conn)
}

// serveEcho copies every message back with the same type, one message at a
// time, until the connection fails or the client closes it.
func serveEcho(conn *websocket.Conn) {
	defer conn.Close()
	for {
		mt, r, err := conn.NextReader()
		if err != nil {
			return
		}
		w, err := conn.NextWriter(mt)
		if err != nil {
			return
		}
		if _, err := io.Copy(w, r); err != nil {
			return
		}
		if err := w.Close(); err != nil {
			return
		}
	}
}

// client is one pub/sub connection.
type client struct {
	conn *websocket.Conn
	// send queues whole frames: a broadcast's PreparedMessage is shared by
	// every subscriber, a reply's is this client's own.
	send chan *websocket.PreparedMessage
	done chan struct{} // closed when the reader goroutine exits
	// subs maps channel names to the channels this client is in; reader
	// goroutine only.
	subs    map[string]*peerproto.Channel[subscribers]
	dropped atomic.Bool
}

// enqueue queues pm without blocking; any goroutine may call it. A full
// queue means the client is too slow: its connection is closed, which ends
// its reader, which unsubscribes it everywhere.
func (c *client) enqueue(pm *websocket.PreparedMessage) {
	select {
	case c.send <- pm:
	default:
		if c.dropped.CompareAndSwap(false, true) {
			_ = c.conn.NetConn().Close()
		}
	}
}

// prepare frames a text message once for any number of connections.
func prepare(payload []byte) *websocket.PreparedMessage {
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, payload)
	if err != nil {
		panic("BUG: framing an uncompressed text message failed: " + err.Error())
	}
	return pm
}

// reply queues a text message for this client only.
func (c *client) reply(payload []byte) { c.enqueue(prepare(payload)) }

// writeLoop is the connection's only writer of data messages. It runs until
// the reader exits or a write fails.
func (c *client) writeLoop() {
	for {
		select {
		case pm := <-c.send:
			if err := c.conn.WritePreparedMessage(pm); err != nil {
				_ = c.conn.NetConn().Close()
				return
			}
		case <-c.done:
			return
		}
	}
}

// servePubSub runs the reader side of a pub/sub connection on the calling
// goroutine and its writer on a new one.
func (s *server) servePubSub(conn *websocket.Conn) {
	c := &client{
		conn: conn,
		send: make(chan *websocket.PreparedMessage, sendQueueLen),
		done: make(chan struct{}),
		subs: make(map[string]*peerproto.Channel[subscribers]),
	}
	go c.writeLoop()
	defer func() {
		for name, ch := range c.subs {
			ch.Lock()
			delete(ch.Subs, c)
			ch.Unlock()
			delete(c.subs, name)
		}
		close(c.done)
		_ = conn.Close()
	}()
	for {
		mt, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		if mt != websocket.TextMessage {
			c.reply(peerproto.AppendRequestError(nil, peerproto.ErrBinary))
			continue
		}
		s.handle(c, msg)
	}
}

// handle executes one client request; reader goroutine only.
func (s *server) handle(c *client, msg []byte) {
	req, rerr := peerproto.ParseRequest(msg)
	if rerr != nil {
		c.reply(peerproto.AppendRequestError(nil, rerr))
		return
	}
	switch req.Op {
	case peerproto.OpSubscribe:
		ch := s.reg.Channel(req.Channel)
		ch.Lock()
		if _, in := c.subs[req.Channel]; !in {
			ch.Subs[c] = struct{}{}
			c.subs[req.Channel] = ch
		}
		// Queued under the lock: every message with a greater seq follows it.
		c.reply(peerproto.AppendSubscribed(nil, ch.Name, ch.Seq()))
		ch.Unlock()

	case peerproto.OpUnsubscribe:
		ch, in := c.subs[req.Channel]
		if !in {
			c.reply(peerproto.AppendRequestError(nil, peerproto.NotSubscribed(req.Channel)))
			return
		}
		ch.Lock()
		delete(ch.Subs, c)
		ch.Unlock()
		delete(c.subs, req.Channel)
		c.reply(peerproto.AppendUnsubscribed(nil, req.Channel))

	case peerproto.OpPublish:
		ch := s.reg.Channel(req.Channel)
		ch.Lock()
		seq, dup := ch.Next(req.ID)
		if dup {
			ch.Unlock()
			c.reply(peerproto.AppendDuplicate(nil, req.Channel, req.ID))
			return
		}
		if len(ch.Subs) > 0 {
			pm := prepare(peerproto.AppendMessage(nil, ch.Name, seq, req.ID, req.Data))
			for sub := range ch.Subs {
				sub.enqueue(pm)
			}
		}
		ch.Unlock()
		c.reply(peerproto.AppendPublished(nil, req.Channel, seq, req.ID))
	}
}
