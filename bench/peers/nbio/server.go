package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"
	"github.com/wsgate/wsgate/bench/peers/peerproto"
)

// subscribers is a channel's subscriber set, guarded by the channel mutex.
// The value is the net.Conn the websocket.Conn itself writes its frames to
// (an *nbhttp.Conn around the *nbio.Conn in IOModNonBlocking).
type subscribers map[*websocket.Conn]net.Conn

// connState is a pub/sub connection's own state.
type connState struct {
	mu   sync.Mutex
	subs map[string]*peerproto.Channel[subscribers]
}

// server is one peer process.
type server struct {
	pubsub   bool
	upgrader *websocket.Upgrader
	reg      *peerproto.Registry[subscribers]
	engine   *nbhttp.Engine
	addr     net.Addr // set by Start
}

// newServer returns a server for mode "echo" or "pubsub" that will listen on
// addr once started.
func newServer(mode, addr string) (*server, error) {
	s := &server{reg: peerproto.NewRegistry(func() subscribers { return make(subscribers) })}
	switch mode {
	case "echo":
	case "pubsub":
		s.pubsub = true
	default:
		return nil, fmt.Errorf("unknown -mode %q (want echo or pubsub)", mode)
	}
	u := websocket.NewUpgrader()
	u.KeepaliveTime = 0
	if s.pubsub {
		u.OnOpen(s.onOpen)
		u.OnMessage(s.onMessage)
		u.OnClose(s.onClose)
	} else {
		u.OnMessage(func(c *websocket.Conn, mt websocket.MessageType, data []byte) {
			_ = c.WriteMessage(mt, data)
		})
	}
	s.upgrader = u
	s.engine = nbhttp.NewEngine(nbhttp.Config{
		Network:                 "tcp",
		Addrs:                   []string{addr},
		Handler:                 http.HandlerFunc(s.upgrade),
		IOMod:                   nbhttp.IOModNonBlocking,
		ReleaseWebsocketPayload: true,
		Listen: func(network, addr string) (net.Listener, error) {
			ln, err := net.Listen(network, addr)
			if err == nil {
				s.addr = ln.Addr()
			}
			return ln, err
		},
	})
	return s, nil
}

// Start binds the listener and starts nbio's pollers; it returns the bound
// address.
func (s *server) Start() (net.Addr, error) {
	if err := s.engine.Start(); err != nil {
		return nil, err
	}
	return s.addr, nil
}

// Close stops the engine and closes every connection.
func (s *server) Close() { s.engine.Stop() }

// upgrade is the HTTP handler for every path; it runs on nbio's pool.
func (s *server) upgrade(w http.ResponseWriter, r *http.Request) {
	_, _ = s.upgrader.Upgrade(w, r, nil) // on error Upgrade has answered.
}

func (s *server) onOpen(c *websocket.Conn) {
	c.SetSession(&connState{subs: make(map[string]*peerproto.Channel[subscribers])})
}

func (s *server) onClose(c *websocket.Conn, _ error) {
	st, ok := c.Session().(*connState)
	if !ok {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for name, ch := range st.subs {
		ch.Lock()
		delete(ch.Subs, c)
		ch.Unlock()
		delete(st.subs, name)
	}
}

// nonBlocking returns the net.Conn under c, after checking that it is the
// non-blocking *nbio.Conn IOModNonBlocking promises: a Write to it never
// waits for the socket, which is what makes writing under the channel lock
// acceptable.
func nonBlocking(c *websocket.Conn) net.Conn {
	nc := c.UnderlayerConn()
	inner := nc
	if hc, ok := nc.(*nbhttp.Conn); ok {
		inner = hc.Conn
	}
	if _, ok := inner.(*nbio.Conn); !ok {
		panic(fmt.Sprintf("BUG: IOModNonBlocking connection is a %T over %T, not *nbio.Conn", nc, inner))
	}
	return nc
}

// reply writes one text message to c; nbio's writes do not block.
func reply(c *websocket.Conn, p []byte) { _ = c.WriteMessage(websocket.TextMessage, p) }

// onMessage executes one client request. data is valid only during the call
// (ReleaseWebsocketPayload); ParseRequest copies what it keeps.
func (s *server) onMessage(c *websocket.Conn, mt websocket.MessageType, data []byte) {
	if mt != websocket.TextMessage {
		reply(c, peerproto.AppendRequestError(nil, peerproto.ErrBinary))
		return
	}
	req, rerr := peerproto.ParseRequest(data)
	if rerr != nil {
		reply(c, peerproto.AppendRequestError(nil, rerr))
		return
	}
	st := c.Session().(*connState)
	st.mu.Lock()
	defer st.mu.Unlock()
	switch req.Op {
	case peerproto.OpSubscribe:
		nc := nonBlocking(c)
		ch := s.reg.Channel(req.Channel)
		ch.Lock()
		if _, in := st.subs[req.Channel]; !in {
			ch.Subs[c] = nc
			st.subs[req.Channel] = ch
		}
		// Written under the lock: every message with a greater seq follows it.
		reply(c, peerproto.AppendSubscribed(nil, ch.Name, ch.Seq()))
		ch.Unlock()

	case peerproto.OpUnsubscribe:
		ch, in := st.subs[req.Channel]
		if !in {
			reply(c, peerproto.AppendRequestError(nil, peerproto.NotSubscribed(req.Channel)))
			return
		}
		ch.Lock()
		delete(ch.Subs, c)
		ch.Unlock()
		delete(st.subs, req.Channel)
		reply(c, peerproto.AppendUnsubscribed(nil, req.Channel))

	case peerproto.OpPublish:
		ch := s.reg.Channel(req.Channel)
		ch.Lock()
		seq, dup := ch.Next(req.ID)
		if dup {
			ch.Unlock()
			reply(c, peerproto.AppendDuplicate(nil, req.Channel, req.ID))
			return
		}
		if len(ch.Subs) > 0 {
			payload := peerproto.AppendMessage(nil, ch.Name, seq, req.ID, req.Data)
			frame := peerproto.AppendFrame(make([]byte, 0, peerproto.MaxFrameHeaderSize+len(payload)), peerproto.OpcodeText, payload)
			for _, nc := range ch.Subs {
				// An error means the subscriber is closing; nbio closes it
				// and onClose removes it.
				if _, err := nc.Write(frame); err != nil && !errors.Is(err, net.ErrClosed) {
					_ = nc.Close()
				}
			}
		}
		ch.Unlock()
		reply(c, peerproto.AppendPublished(nil, req.Channel, seq, req.ID))
	}
}
