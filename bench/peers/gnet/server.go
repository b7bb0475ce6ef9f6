package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"
	"github.com/wsgate/wsgate/bench/peers/peerproto"
)

const (
	// maxHandshake bounds the bytes buffered while waiting for the end of the
	// upgrade request's header.
	maxHandshake = 8 << 10
	// maxMessage bounds one message, fragments included (gws's default).
	maxMessage = 16 << 20
)

// wsConn is one connection's WebSocket state. It is touched only by the
// connection's event loop: in OnOpen, OnTraffic, OnClose and in fan-out
// tasks the loop executes.
type wsConn struct {
	c        gnet.Conn
	upgraded bool
	// need is how many buffered bytes the next frame needs in all, so that
	// a large frame arriving in pieces is not re-peeked at every read.
	need int
	// fragOp is the opcode of the fragmented message being reassembled, or
	// zero; frag holds its payload after peerproto.MaxFrameHeaderSize bytes
	// reserved for the header its echo will need.
	fragOp ws.OpCode
	frag   []byte
	// subs maps channel names to the channels the connection is in.
	subs map[string]*peerproto.Channel[loopSets]
}

// server is one peer process: a gnet engine whose event handler speaks
// WebSocket with gobwas/ws framing.
type server struct {
	gnet.BuiltinEventEngine

	pubsub   bool
	addr     string
	upgrader ws.Upgrader
	reg      *peerproto.Registry[loopSets]

	mu     sync.Mutex
	eng    gnet.Engine
	booted chan struct{} // closed by OnBoot
	runErr chan error    // gnet.Run's result
}

// newServer returns a server for mode "echo" or "pubsub" that will listen on
// addr (host:port) once started.
func newServer(mode, addr string) (*server, error) {
	s := &server{
		addr:     addr,
		reg:      peerproto.NewRegistry(func() loopSets { return make(loopSets) }),
		booted:   make(chan struct{}),
		runErr:   make(chan error, 1),
		upgrader: ws.Upgrader{},
	}
	switch mode {
	case "echo":
	case "pubsub":
		s.pubsub = true
	default:
		return nil, fmt.Errorf("unknown -mode %q (want echo or pubsub)", mode)
	}
	return s, nil
}

// Start runs the engine on its own goroutine, as gnet's WebSocket example
// configures it: one event loop per CPU (WithMulticore) and one
// SO_REUSEPORT listener per loop. It returns once the listeners are bound
// (gnet calls OnBoot after binding, just before its loops start; a client
// connecting in between waits in the listen backlog) or Run failed.
func (s *server) Start() error {
	go func() {
		s.runErr <- gnet.Run(s, "tcp://"+s.addr,
			gnet.WithMulticore(true),
			gnet.WithReusePort(true),
			gnet.WithLogLevel(logging.WarnLevel),
		)
	}()
	select {
	case <-s.booted:
		return nil
	case err := <-s.runErr:
		return err
	}
}

// Close stops the engine, closing every connection, and waits for gnet.Run
// to return.
func (s *server) Close() error {
	s.mu.Lock()
	eng := s.eng
	s.mu.Unlock()
	if err := eng.Stop(context.Background()); err != nil {
		return err
	}
	return <-s.runErr
}

// OnBoot runs once, after the listeners are bound and before the loops run.
func (s *server) OnBoot(eng gnet.Engine) gnet.Action {
	s.mu.Lock()
	s.eng = eng
	s.mu.Unlock()
	close(s.booted)
	return gnet.None
}

// OnOpen runs on the connection's loop when it is accepted.
func (s *server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	c.SetContext(&wsConn{c: c})
	return nil, gnet.None
}

// OnClose runs on the connection's loop; it removes the connection from
// every channel it was in.
func (s *server) OnClose(c gnet.Conn, _ error) gnet.Action {
	wc, ok := c.Context().(*wsConn)
	if !ok {
		return gnet.None
	}
	for name, ch := range wc.subs {
		ch.Lock()
		removeSub(ch, c.EventLoop(), wc)
		ch.Unlock()
		delete(wc.subs, name)
	}
	return gnet.None
}

// OnTraffic runs on the connection's loop when bytes arrive: it completes
// the handshake, then handles every complete frame buffered so far. Frames
// are parsed and unmasked in place in the bytes gnet's Peek returns, which
// stay valid until Discard.
func (s *server) OnTraffic(c gnet.Conn) gnet.Action {
	wc := c.Context().(*wsConn)
	if !wc.upgraded {
		if done, act := s.handshake(c, wc); !done {
			return act
		}
	}
	if c.InboundBuffered() < wc.need {
		return gnet.None
	}
	wc.need = 0
	buf, _ := c.Peek(-1) // -1 never exceeds what is buffered
	off := 0
	for off < len(buf) {
		h, n, err := parseHeader(buf[off:])
		if err != nil {
			return fail(c, ws.StatusProtocolError, err.Error())
		}
		if n == 0 {
			break
		}
		state := ws.StateServerSide
		if wc.fragOp != 0 {
			state = state.Set(ws.StateFragmented)
		}
		if err := ws.CheckHeader(h, state); err != nil {
			return fail(c, ws.StatusProtocolError, err.Error())
		}
		if h.Length > int64(maxMessage-len(wc.frag)) {
			return fail(c, ws.StatusMessageTooBig, "message too big")
		}
		total := n + int(h.Length)
		if len(buf)-off < total {
			wc.need = total // counted from off, which Discard makes the start
			break
		}
		frame := buf[off : off+total]
		ws.Cipher(frame[n:], h.Mask, 0)
		if act := s.frame(c, wc, h, frame, n); act != gnet.None {
			return act
		}
		off += total
	}
	if off > 0 {
		_, _ = c.Discard(off)
	}
	return gnet.None
}

// handshake answers the upgrade request once its header is complete
// (RFC 6455, section 4.2). gobwas/ws's Upgrader reads the header from memory,
// never the socket, and writes its response to c.
func (s *server) handshake(c gnet.Conn, wc *wsConn) (done bool, act gnet.Action) {
	buf, _ := c.Peek(-1)
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		if len(buf) > maxHandshake {
			return false, gnet.Close
		}
		return false, gnet.None
	}
	end += 4
	_, err := s.upgrader.Upgrade(struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(buf[:end]), c})
	if err != nil {
		return false, gnet.Close // Upgrade has written the HTTP error.
	}
	_, _ = c.Discard(end)
	wc.upgraded = true
	return true, gnet.None
}

// frame handles one complete, unmasked frame. frame holds the whole frame,
// its header in frame[:n]; it is valid only during the call.
func (s *server) frame(c gnet.Conn, wc *wsConn, h ws.Header, frame []byte, n int) gnet.Action {
	payload := frame[n:]
	switch h.OpCode {
	case ws.OpPing:
		// RFC 6455, 5.5.3: the pong carries the ping's application data.
		start := putServerHeader(frame, n, ws.OpPong, len(payload))
		return write(c, frame[start:])
	case ws.OpPong:
		return gnet.None
	case ws.OpClose:
		return closeReply(c, payload)
	}
	if h.OpCode != ws.OpContinuation && h.Fin {
		return s.message(c, wc, h.OpCode, frame, n)
	}
	if h.OpCode != ws.OpContinuation {
		wc.fragOp = h.OpCode
		wc.frag = append(make([]byte, peerproto.MaxFrameHeaderSize, peerproto.MaxFrameHeaderSize+2*len(payload)), payload...)
	} else {
		wc.frag = append(wc.frag, payload...)
	}
	if !h.Fin {
		return gnet.None
	}
	op, msg := wc.fragOp, wc.frag
	wc.fragOp, wc.frag = 0, nil
	return s.message(c, wc, op, msg, peerproto.MaxFrameHeaderSize)
}

// message handles one complete data message: buf[n:] is the payload and
// buf[:n] has room for its echo's header. buf is valid only during the call.
func (s *server) message(c gnet.Conn, wc *wsConn, op ws.OpCode, buf []byte, n int) gnet.Action {
	if !s.pubsub {
		start := putServerHeader(buf, n, op, len(buf)-n)
		return write(c, buf[start:])
	}
	if op != ws.OpText {
		return writeText(c, peerproto.AppendRequestError(nil, peerproto.ErrBinary))
	}
	return s.handle(c, wc, buf[n:])
}

// write writes p on the connection's loop; gnet keeps what the socket does
// not take. A failed write has already closed the connection.
func write(c gnet.Conn, p []byte) gnet.Action {
	if _, err := c.Write(p); err != nil {
		return gnet.Close
	}
	return gnet.None
}

// writeText frames and writes one text message.
func writeText(c gnet.Conn, payload []byte) gnet.Action {
	return write(c, peerproto.AppendFrame(nil, peerproto.OpcodeText, payload))
}

// fail closes the connection with a close frame carrying code and reason
// (RFC 6455, section 7.1.7: fail the WebSocket connection).
func fail(c gnet.Conn, code ws.StatusCode, reason string) gnet.Action {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	_, _ = c.Write(ws.MustCompileFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(code, reason))))
	return gnet.Close
}

// closeReply answers a close frame (RFC 6455, section 5.5.1) by echoing its
// status code, or an empty close when it had none, then closes; an invalid
// close payload fails the connection with 1002.
func closeReply(c gnet.Conn, payload []byte) gnet.Action {
	switch {
	case len(payload) == 0:
		_, _ = c.Write(peerproto.AppendFrame(nil, peerproto.OpcodeClose, nil))
		return gnet.Close
	case len(payload) == 1:
		return fail(c, ws.StatusProtocolError, "close payload of one byte")
	}
	code := ws.StatusCode(binary.BigEndian.Uint16(payload))
	if err := ws.CheckCloseFrameData(code, string(payload[2:])); err != nil {
		return fail(c, ws.StatusProtocolError, err.Error())
	}
	_, _ = c.Write(peerproto.AppendFrame(nil, peerproto.OpcodeClose, payload[:2]))
	return gnet.Close
}
