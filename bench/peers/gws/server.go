package main

import (
	"bufio"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/lxzan/gws"
	"github.com/wsgate/wsgate/bench/peers/peerproto"
)

// readBufferSize is each connection's bufio.Reader size.
const readBufferSize = 1024

// stateKey is the session key of a pub/sub connection's *connState.
const stateKey = "peer"

// subscribers is a channel's subscriber set, guarded by the channel mutex.
type subscribers map[*gws.Conn]struct{}

// connState is a pub/sub connection's own state; ReadLoop goroutine only.
type connState struct {
	subs map[string]*peerproto.Channel[subscribers]
}

// server is one peer process.
type server struct {
	pubsub   bool
	upgrader *gws.Upgrader
	reg      *peerproto.Registry[subscribers]

	mu     sync.Mutex
	ln     net.Listener
	closed bool
}

// newServer returns a server for mode "echo" or "pubsub", with permessage-deflate when
// compression is set.
func newServer(mode string, compression bool) (*server, error) {
	s := &server{reg: peerproto.NewRegistry(func() subscribers { return make(subscribers) })}
	switch mode {
	case "echo":
	case "pubsub":
		s.pubsub = true
	default:
		return nil, fmt.Errorf("unknown -mode %q (want echo or pubsub)", mode)
	}
	opt := &gws.ServerOption{
		ParallelEnabled: false,
		ReadBufferSize:  readBufferSize,
	}
	if compression {
		// As wsgate's -compression: no context takeover either way (no window per connection),
		// the fastest level, a 256-byte threshold. gws's Broadcaster compresses a broadcast once
		// for every subscriber that negotiated it.
		opt.PermessageDeflate.Enabled = true
		opt.PermessageDeflate.Level = 1
		opt.PermessageDeflate.Threshold = 256
		opt.PermessageDeflate.ServerContextTakeover = false
		opt.PermessageDeflate.ClientContextTakeover = false
	}
	s.upgrader = gws.NewUpgrader(s, opt)
	return s, nil
}

// Serve accepts connections on ln until Close and returns nil after Close.
// Each connection gets one goroutine that reads its upgrade request, upgrades
// it and runs gws's ReadLoop.
func (s *server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ln.Close()
	}
	s.ln = ln
	s.mu.Unlock()
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and similar: wait and retry, as
			// net/http's Server does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			log.Printf("gws peer: accept: %v; retrying in %v", err, backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		go s.serveConn(conn)
	}
}

// serveConn upgrades one accepted connection and runs it to its end.
func (s *server) serveConn(conn net.Conn) {
	br := bufio.NewReaderSize(conn, readBufferSize)
	req, err := http.ReadRequest(br)
	if err != nil {
		_ = conn.Close()
		return
	}
	socket, err := s.upgrader.UpgradeFromConn(conn, br, req)
	if err != nil {
		return // UpgradeFromConn answered 400 and closed conn.
	}
	socket.ReadLoop()
}

// Close stops accepting. Upgraded connections end when their clients go or
// the process exits.
func (s *server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.ln != nil {
		return s.ln.Close()
	}
	return nil
}

// OnOpen runs on the connection's ReadLoop goroutine before any message.
func (s *server) OnOpen(socket *gws.Conn) {
	if s.pubsub {
		socket.Session().Store(stateKey, &connState{subs: make(map[string]*peerproto.Channel[subscribers])})
	}
}

// OnClose runs on the ReadLoop goroutine after the last message; it removes
// a pub/sub connection from every channel it was in.
func (s *server) OnClose(socket *gws.Conn, _ error) {
	if !s.pubsub {
		return
	}
	st := state(socket)
	for name, ch := range st.subs {
		ch.Lock()
		delete(ch.Subs, socket)
		ch.Unlock()
		delete(st.subs, name)
	}
}

// OnPing answers with a pong carrying the ping's payload (RFC 6455, 5.5.3).
func (s *server) OnPing(socket *gws.Conn, payload []byte) { _ = socket.WritePong(payload) }

// OnPong ignores unsolicited pongs (RFC 6455, 5.5.3).
func (s *server) OnPong(*gws.Conn, []byte) {}

// OnMessage handles one complete message on the ReadLoop goroutine.
func (s *server) OnMessage(socket *gws.Conn, message *gws.Message) {
	defer message.Close()
	if !s.pubsub {
		_ = socket.WriteMessage(message.Opcode, message.Bytes())
		return
	}
	if message.Opcode != gws.OpcodeText {
		reply(socket, peerproto.AppendRequestError(nil, peerproto.ErrBinary))
		return
	}
	s.handle(socket, message.Bytes())
}

func state(socket *gws.Conn) *connState {
	v, _ := socket.Session().Load(stateKey)
	return v.(*connState)
}

// reply queues a text message on the connection's write queue, behind any
// broadcast already queued.
func reply(socket *gws.Conn, p []byte) { socket.WriteAsync(gws.OpcodeText, p, nil) }

// handle executes one client request; ReadLoop goroutine only.
func (s *server) handle(socket *gws.Conn, msg []byte) {
	req, rerr := peerproto.ParseRequest(msg)
	if rerr != nil {
		reply(socket, peerproto.AppendRequestError(nil, rerr))
		return
	}
	st := state(socket)
	switch req.Op {
	case peerproto.OpSubscribe:
		ch := s.reg.Channel(req.Channel)
		ch.Lock()
		if _, in := st.subs[req.Channel]; !in {
			ch.Subs[socket] = struct{}{}
			st.subs[req.Channel] = ch
		}
		// Queued under the lock: every message with a greater seq follows it.
		reply(socket, peerproto.AppendSubscribed(nil, ch.Name, ch.Seq()))
		ch.Unlock()

	case peerproto.OpUnsubscribe:
		ch, in := st.subs[req.Channel]
		if !in {
			reply(socket, peerproto.AppendRequestError(nil, peerproto.NotSubscribed(req.Channel)))
			return
		}
		ch.Lock()
		delete(ch.Subs, socket)
		ch.Unlock()
		delete(st.subs, req.Channel)
		reply(socket, peerproto.AppendUnsubscribed(nil, req.Channel))

	case peerproto.OpPublish:
		ch := s.reg.Channel(req.Channel)
		ch.Lock()
		seq, dup := ch.Next(req.ID)
		if dup {
			ch.Unlock()
			reply(socket, peerproto.AppendDuplicate(nil, req.Channel, req.ID))
			return
		}
		if len(ch.Subs) > 0 {
			b := gws.NewBroadcaster(gws.OpcodeText, peerproto.AppendMessage(nil, ch.Name, seq, req.ID, req.Data))
			for sub := range ch.Subs {
				_ = b.Broadcast(sub)
			}
			_ = b.Close()
		}
		ch.Unlock()
		reply(socket, peerproto.AppendPublished(nil, req.Channel, seq, req.ID))
	}
}
