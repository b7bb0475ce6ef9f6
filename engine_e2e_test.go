package wsgate

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/conn"
	"github.com/wsgate/wsgate/pubsub"
)

// End-to-end tests of the engine's flow control through a whole Server and raw TCP clients:
// read-side backpressure for a client that does not read its answers, whole frames before every
// close the server decides on, and text checked as it arrives.

// engineStats sums one counter over the server's engines.
func engineStats(s *Server, f func(st *conn.Stats) uint64) uint64 {
	var t uint64
	for _, e := range s.Engines() {
		t += f(&e.Stats)
	}
	return t
}

// TestEchoBackpressure: a raw TCP client sends 64 messages of 256 KiB (16 times the default
// MaxQueue) to the echo server from a writer goroutine of its own, and reads nothing until the
// server has stopped reading it: its writes then block (TCP flow control) instead of the server
// queueing the echoes. Then it reads: every echo arrives intact and in order, the connection is
// never failed as a slow consumer, and the most the server queued for it is the high-water mark
// plus one message.
func TestEchoBackpressure(t *testing.T) {
	const (
		size  = 256 << 10
		count = 64
	)
	s, err := New(Config{Handler: Echo{}, Addr: "127.0.0.1:0", Loops: 2,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	r := dialRaw(t, s).handshake()
	msg := func(i int) []byte {
		b := bytes.Repeat([]byte{byte(i), byte(i >> 8), 0x5a}, size/3+1)[:size]
		binary.BigEndian.PutUint32(b, uint32(i))
		return b
	}
	wrote := make(chan error, 1)
	go func() {
		for i := range count {
			if _, err := r.c.Write(clientFrame(ws.OpBinary, true, msg(i))); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	waitFor(t, "the server to stop reading the client", func() bool {
		return metricValue(t, s, "wsgate_read_pauses_total") > 0
	})
	for i := range count {
		f := r.readFrame()
		if f.Header.OpCode != ws.OpBinary || !bytes.Equal(f.Payload, msg(i)) {
			t.Fatalf("echo %d: %v, %d bytes, want message %d unchanged", i, f.Header.OpCode, len(f.Payload), i)
		}
	}
	if err := <-wrote; err != nil {
		t.Fatalf("client write: %v", err)
	}
	if n := engineStats(s, func(st *conn.Stats) uint64 { return st.SlowConsumers.Load() }); n != 0 {
		t.Fatalf("%d slow-consumer closes of a client that reads its echoes", n)
	}
	hw := conn.Config{}.WithDefaults().HighWater
	peak := metricValue(t, s, "wsgate_queue_peak_bytes")
	if peak > float64(hw+size+10) {
		t.Fatalf("the server queued up to %v bytes for the client, over the high-water mark %d plus one message", peak, hw)
	}
	t.Logf("%v read pauses, queue peak %v bytes (high water %d)", metricValue(t, s, "wsgate_read_pauses_total"), peak, hw)
}

// slowSubscriber subscribes a raw TCP client with a small receive buffer to channel feed; it then
// reads nothing until the test says.
func slowSubscriber(t *testing.T, s *Server) *rawClient {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
	}}
	nc, err := d.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	r := (&rawClient{t: t, c: nc, br: bufioReader(nc)}).handshake()
	r.send(ws.OpText, true, []byte(`{"op":"subscribe","channel":"feed"}`))
	if f := r.readFrame(); !bytes.Contains(f.Payload, []byte("subscribed")) {
		t.Fatalf("subscribe: %q", f.Payload)
	}
	return r
}

// publishFeed publishes one message of about 50 KB (an odd size, so that a full socket buffer
// ends inside a frame) to channel feed.
func publishFeed(t *testing.T, s *Server, i int) {
	t.Helper()
	data := `"` + strings.Repeat("x", 50001+i%7) + `"`
	if st, rep := apiPost(t, s, "/api/publish", "", "", `{"channel":"feed","data":`+data+`}`); st != 200 {
		t.Fatalf("publish %d: %d %v", i, st, rep)
	}
}

// readWholeThenClose reads every frame the client gets until the close frame: each must be a
// whole pub/sub message (a text frame holding one JSON object); it returns the close code.
func readWholeThenClose(r *rawClient) (code ws.StatusCode, messages int) {
	r.t.Helper()
	for {
		f := r.readFrame()
		switch f.Header.OpCode {
		case ws.OpClose:
			code, _ := ws.ParseCloseFrameData(f.Payload)
			return code, messages
		case ws.OpText:
			var m map[string]any
			if err := json.Unmarshal(f.Payload, &m); err != nil || m["op"] != "message" {
				r.t.Fatalf("after %d whole messages, a frame that is not one (%v): %.60q", messages, err, f.Payload)
			}
			messages++
		case ws.OpPing:
		default:
			r.t.Fatalf("after %d whole messages, a %v frame", messages, f.Header.OpCode)
		}
	}
}

// TestSlowSubscriberWholeFramesThen1008: a subscriber that stops reading under fan-out is closed
// with 1008 once its queue passes MaxQueue; when it reads at last it gets only whole messages,
// then the close frame, then the end of the stream.
func TestSlowSubscriberWholeFramesThen1008(t *testing.T) {
	s := pubsubServer(t, Config{Loops: 2, Conn: ConnConfig{MaxQueue: 256 << 10}}, pubsub.Config{})
	r := slowSubscriber(t, s)
	for i := 0; metricValue(t, s, "wsgate_slow_consumers_total") == 0; i++ {
		if i == 1000 {
			t.Fatal("no slow-consumer close after 1000 publishes")
		}
		publishFeed(t, s, i)
	}
	code, n := readWholeThenClose(r)
	if code != ws.StatusPolicyViolation {
		t.Fatalf("close code %d after %d messages, want 1008", code, n)
	}
	r.expectEOF()
}

// TestShutdownWholeFramesThen1001: a shutdown with output pending for a subscriber that is not
// reading completes the frame partly written, drops the rest, and sends 1001.
func TestShutdownWholeFramesThen1001(t *testing.T) {
	s := pubsubServer(t, Config{Loops: 2, Conn: ConnConfig{MaxQueue: 64 << 20}}, pubsub.Config{})
	r := slowSubscriber(t, s)
	// Publish until a flush has found 1 MiB queued: the kernel's buffers are full and the rest
	// waits in the server.
	published := 0
	for ; metricValue(t, s, "wsgate_queue_peak_bytes") < 1<<20; published++ {
		if published == 2000 {
			t.Fatal("the server's queue never held 1 MiB")
		}
		publishFeed(t, s, published)
	}
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctxT(t)) }()
	code, n := readWholeThenClose(r)
	if code != ws.StatusGoingAway {
		t.Fatalf("close code %d after %d messages, want 1001", code, n)
	}
	if n >= published {
		t.Fatalf("all %d messages arrived: the output not started was not dropped", n)
	}
	r.c.Write(clientFrame(ws.OpClose, true, []byte{0x03, 0xe9}))
	r.expectEOF()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestInvalidUTF8FailsBeforeTheRestOfTheFrame: a text frame written in three chops whose first
// chop already holds invalid UTF-8 is failed with 1007 before the other chops are sent: a
// single-frame message and a fragmented one (the second fragment chopped).
func TestInvalidUTF8FailsBeforeTheRestOfTheFrame(t *testing.T) {
	s := echoServer(t)
	bad := append([]byte("fine so far \xc0\xaf overlong "), bytes.Repeat([]byte("more text "), 3000)...)
	cases := []struct {
		name   string
		before []byte
		frame  []byte
	}{
		{"single frame", nil, clientFrame(ws.OpText, true, bad)},
		{"fragmented", clientFrame(ws.OpText, false, []byte("first fragment")), clientFrame(ws.OpContinuation, true, bad)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, s).handshake()
			if tc.before != nil {
				r.write(tc.before)
			}
			const hdr = 8 // masked, 16-bit length
			r.write(tc.frame[:hdr+20])
			// Chops two (tc.frame[hdr+20:hdr+2000]) and three are never sent.
			code, _ := r.expectClose()
			if code != ws.StatusInvalidFramePayloadData {
				t.Fatalf("close code %d, want 1007", code)
			}
		})
	}
}
