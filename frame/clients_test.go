package frame

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	coder "github.com/coder/websocket"
	"github.com/gobwas/ws"
	gorilla "github.com/gorilla/websocket"
)

// These tests run this package as the server side of real, independent
// client implementations (gorilla/websocket, coder/websocket, gobwas/ws's
// Dialer) over net.Pipe: the clients write their own handshake requests and
// frames, the server side below uses only this package to answer them.

// echoServer answers one connection: it reads the request head in whatever
// pieces the pipe delivers, runs Upgrade, independently verifies the accept
// value it wrote, then echoes messages until a close frame, which it echoes
// too. It returns the handshake result, or the first error.
func echoServer(c net.Conn, check func(r *Request) (int, string)) (Result, error) {
	defer c.Close()
	var buf []byte
	tmp := make([]byte, 1500)
	read := func() error {
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		return err
	}
	end := HeaderEnd(buf)
	for end < 0 {
		if err := read(); err != nil {
			return Result{}, fmt.Errorf("reading head: %w", err)
		}
		end = HeaderEnd(buf)
	}
	resp, res := Upgrade(nil, buf[:end], check)
	if err := verifyAccept(buf[:end], resp); err != nil {
		return res, err
	}
	if _, err := c.Write(resp); err != nil {
		return res, fmt.Errorf("writing response: %w", err)
	}
	if res.Status != http.StatusSwitchingProtocols {
		return res, nil
	}
	buf = buf[end:]

	var (
		fragmented bool
		msgOp      ws.OpCode
		msg        []byte
		text       UTF8
	)
	for {
		h, n, perr := ParseHeader(buf)
		if perr != nil {
			return res, perr
		}
		if n == 0 || int64(len(buf)-n) < h.Length {
			if err := read(); err != nil {
				return res, fmt.Errorf("reading frame: %w", err)
			}
			continue
		}
		if err := CheckHeader(h, fragmented); err != nil {
			return res, err
		}
		payload := buf[n : n+int(h.Length)]
		// Unmask in two pieces, as two reads would.
		half := len(payload) / 2
		Unmask(payload[:half], h.Mask, 0)
		Unmask(payload[half:], h.Mask, half)
		buf = buf[n+int(h.Length):]

		switch h.OpCode {
		case ws.OpClose:
			code, reason, err := ParseClose(payload)
			if err != nil {
				return res, err
			}
			if _, err := c.Write(AppendClose(nil, code, string(reason))); err != nil {
				return res, fmt.Errorf("writing close: %w", err)
			}
			return res, nil
		case ws.OpPing:
			if _, err := c.Write(AppendFrame(nil, ws.OpPong, payload)); err != nil {
				return res, err
			}
		case ws.OpPong:
		default:
			if h.OpCode != ws.OpContinuation {
				msgOp, msg = h.OpCode, msg[:0]
				text.Reset()
			}
			if msgOp == ws.OpText && !text.Write(payload) {
				return res, ErrInvalidUTF8
			}
			msg = append(msg, payload...)
			fragmented = !h.Fin
			if h.Fin {
				if msgOp == ws.OpText && !text.Done() {
					return res, ErrInvalidUTF8
				}
				if _, err := c.Write(AppendFrame(nil, msgOp, msg)); err != nil {
					return res, fmt.Errorf("writing echo: %w", err)
				}
			}
		}
	}
}

// verifyAccept parses the client's request and our response with net/http
// and checks a 101's Sec-WebSocket-Accept against acceptFor.
func verifyAccept(head, resp []byte) error {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
	if err != nil {
		return fmt.Errorf("client request does not parse: %w", err)
	}
	r, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(resp)), req)
	if err != nil {
		return fmt.Errorf("response does not parse: %w", err)
	}
	if r.StatusCode != http.StatusSwitchingProtocols {
		return nil
	}
	key := req.Header.Get("Sec-WebSocket-Key")
	if got, want := r.Header.Get("Sec-WebSocket-Accept"), acceptFor(key); got != want {
		return fmt.Errorf("accept %q for key %q, want %q", got, key, want)
	}
	return nil
}

// writeFrame writes f with one Write: ws.WriteFrame writes the header and
// the payload separately, and net.Pipe blocks even a 0-byte Write until the
// other side reads, which would deadlock against a server that answers a
// frame as soon as its header and payload are in.
func writeFrame(c net.Conn, f ws.Frame) error {
	var b bytes.Buffer
	if err := ws.WriteFrame(&b, f); err != nil {
		return err
	}
	_, err := c.Write(b.Bytes())
	return err
}

type serverResult struct {
	res Result
	err error
}

// startServer runs echoServer on one end of a pipe and returns the other.
func startServer(check func(r *Request) (int, string)) (net.Conn, <-chan serverResult) {
	cli, srv := net.Pipe()
	done := make(chan serverResult, 1)
	go func() {
		res, err := echoServer(srv, check)
		done <- serverResult{res: res, err: err}
	}()
	return cli, done
}

func TestGorillaClient(t *testing.T) {
	cli, done := startServer(nil)
	d := gorilla.Dialer{
		NetDial:      func(string, string) (net.Conn, error) { return cli, nil },
		Subprotocols: []string{"other", "chat"},
	}
	conn, resp, err := d.Dial("ws://example.com/echo?room=1", nil)
	if err != nil {
		t.Fatalf(
			"gorilla Dial: %v (server: %v)",
			err, <-done,
		)
	}
	// The server negotiates no subprotocol: the client must accept none.
	if resp.StatusCode != 101 || conn.Subprotocol() != "" {
		t.Fatalf(
			"status %d, subprotocol %q",
			resp.StatusCode, conn.Subprotocol(),
		)
	}
	messages := []struct {
		typ  int
		data []byte
	}{
		{typ: gorilla.TextMessage, data: []byte("hello, κόσμε €")},
		{typ: gorilla.BinaryMessage, data: bytes.Repeat([]byte{0, 1, 2, 0xff}, 300)},
		{typ: gorilla.BinaryMessage, data: bytes.Repeat([]byte{7}, 70000)},
		{typ: gorilla.TextMessage, data: nil},
	}
	for _, m := range messages {
		if err := conn.WriteMessage(m.typ, m.data); err != nil {
			t.Fatal(err)
		}
		typ, data, err := conn.ReadMessage()
		if err != nil || typ != m.typ || !bytes.Equal(data, m.data) {
			t.Fatalf(
				"echo of %d-byte message: type %d, %d bytes, %v",
				len(m.data), typ, len(data), err,
			)
		}
	}
	if err := conn.WriteMessage(gorilla.CloseMessage, gorilla.FormatCloseMessage(4001, "bye")); err != nil {
		t.Fatal(err)
	}
	_, _, err = conn.ReadMessage()
	var ce *gorilla.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || ce.Text != "bye" {
		t.Fatalf(
			"close echo: %v",
			err,
		)
	}
	conn.Close()
	sr := <-done
	if sr.err != nil || sr.res != (Result{Status: 101}) {
		t.Fatalf(
			"server: %+v %v",
			sr.res, sr.err,
		)
	}
}

func TestGorillaClientRejected(t *testing.T) {
	cli, done := startServer(func(r *Request) (int, string) {
		if strings.HasPrefix(string(r.URI), "/private") {
			return http.StatusNotFound, "no such channel\n"
		}
		return 0, ""
	})
	d := gorilla.Dialer{NetDial: func(string, string) (net.Conn, error) { return cli, nil }}
	_, resp, err := d.Dial("ws://example.com/private/x", nil)
	if !errors.Is(err, gorilla.ErrBadHandshake) || resp == nil || resp.StatusCode != 404 {
		t.Fatalf(
			"Dial: %v, resp %v",
			err, resp,
		)
	}
	sr := <-done
	if sr.err != nil || sr.res.Status != 404 || sr.res.Reason != ReasonRejected {
		t.Fatalf(
			"server: %+v %v",
			sr.res, sr.err,
		)
	}
}

func TestCoderClient(t *testing.T) {
	cli, done := startServer(nil)
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) { return cli, nil },
	}}
	ctx := context.Background()
	conn, resp, err := coder.Dial(ctx, "ws://example.com/feed", &coder.DialOptions{
		HTTPClient:   hc,
		Subprotocols: []string{"v2"},
	})
	if err != nil {
		t.Fatalf(
			"coder Dial: %v (server: %v)",
			err, <-done,
		)
	}
	// The server negotiates no subprotocol: the client must accept none.
	if resp.StatusCode != 101 || conn.Subprotocol() != "" {
		t.Fatalf(
			"status %d, subprotocol %q",
			resp.StatusCode, conn.Subprotocol(),
		)
	}
	conn.SetReadLimit(1 << 20)
	for _, m := range []string{"first", strings.Repeat("ü", 40000), ""} {
		if err := conn.Write(ctx, coder.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
		typ, data, err := conn.Read(ctx)
		if err != nil || typ != coder.MessageText || string(data) != m {
			t.Fatalf(
				"echo of %d bytes: %v, %d bytes, %v",
				len(m), typ, len(data), err,
			)
		}
	}
	// coder waits for the server's close frame, which the server echoes.
	if err := conn.Close(coder.StatusGoingAway, "done"); err != nil {
		t.Fatalf(
			"close handshake: %v",
			err,
		)
	}
	sr := <-done
	if sr.err != nil || sr.res.Status != 101 {
		t.Fatalf(
			"server: %+v %v",
			sr.res, sr.err,
		)
	}
}

func TestGobwasDialer(t *testing.T) {
	cli, done := startServer(nil)
	u, err := url.Parse("ws://127.0.0.1:9000/x?y=z")
	if err != nil {
		t.Fatal(err)
	}
	br, hs, err := ws.Dialer{}.Upgrade(cli, u)
	if err != nil {
		t.Fatalf(
			"gobwas Dialer: %v (server: %v)",
			err, <-done,
		)
	}
	if hs.Protocol != "" {
		t.Fatalf("unexpected protocol %q", hs.Protocol)
	}
	if br != nil {
		// Nothing but the response may have been buffered.
		if br.Buffered() != 0 {
			t.Fatalf("%d bytes after the response", br.Buffered())
		}
	}
	// A fragmented text message with a ping between its fragments, and a
	// code point split across the fragments.
	parts := []ws.Frame{
		ws.NewFrame(ws.OpText, false, []byte("ab\xe2")),
		ws.NewPingFrame([]byte("p")),
		ws.NewFrame(ws.OpContinuation, false, []byte("\x82")),
		ws.NewFrame(ws.OpContinuation, true, []byte("\xacz")),
	}
	var wire bytes.Buffer
	for _, f := range parts {
		if err := ws.WriteFrame(&wire, ws.MaskFrame(f)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Write(wire.Bytes()); err != nil {
		t.Fatal(err)
	}
	pong, err := ws.ReadFrame(cli)
	if err != nil || pong.Header.OpCode != ws.OpPong || string(pong.Payload) != "p" {
		t.Fatalf(
			"pong: %+v %q %v",
			pong.Header, pong.Payload, err,
		)
	}
	echo, err := ws.ReadFrame(cli)
	if err != nil || echo.Header.OpCode != ws.OpText || !echo.Header.Fin || string(echo.Payload) != "ab€z" {
		t.Fatalf(
			"echo: %+v %q %v",
			echo.Header, echo.Payload, err,
		)
	}
	// A close without status is echoed without status.
	if err := writeFrame(cli, ws.MaskFrame(ws.NewCloseFrame(nil))); err != nil {
		t.Fatal(err)
	}
	closing, err := ws.ReadFrame(cli)
	if err != nil || closing.Header.OpCode != ws.OpClose || len(closing.Payload) != 0 {
		t.Fatalf(
			"close echo: %+v %x %v",
			closing.Header, closing.Payload, err,
		)
	}
	cli.Close()
	if sr := <-done; sr.err != nil || sr.res.Status != 101 {
		t.Fatalf(
			"server: %+v %v",
			sr.res, sr.err,
		)
	}
}

// TestGobwasDialerProtocolError: a client that breaks the protocol (an
// unmasked frame) is failed with the right error.
func TestGobwasDialerProtocolError(t *testing.T) {
	cli, done := startServer(nil)
	u, _ := url.Parse("ws://localhost/")
	if _, _, err := (ws.Dialer{}).Upgrade(cli, u); err != nil {
		t.Fatal(err)
	}
	// Drain whatever the server writes, so a server that wrongly echoes the
	// frame ends in a test failure rather than blocking on the pipe.
	drained := make(chan struct{})
	go func() {
		io.Copy(io.Discard, cli)
		close(drained)
	}()
	if err := writeFrame(cli, ws.NewTextFrame([]byte("unmasked"))); err != nil {
		t.Fatal(err)
	}
	// A well-behaved client closes after its frame; the server must have
	// failed the connection before reading that far.
	if err := writeFrame(cli, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(1000, "")))); err != nil && !errors.Is(err, io.ErrClosedPipe) {
		t.Fatal(err)
	}
	sr := <-done
	cli.Close()
	<-drained
	if sr.err != ErrNotMasked {
		t.Fatalf(
			"server error %v, want ErrNotMasked",
			sr.err,
		)
	}
}
