//go:build !race

package pubsub_test

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/conn"
	wsframe "github.com/wsgate/wsgate/frame"
	"github.com/wsgate/wsgate/pubsub"
)

// TestFanoutNoAllocsPerDelivery: queueing a published frame on a loop's subscribers allocates
// nothing per delivered message (measured on the loop goroutine, where fan-out runs).
func TestFanoutNoAllocsPerDelivery(t *testing.T) {
	testFanoutAllocs(t, false)
}

// TestCompressedFanoutNoAllocsPerDelivery: with compression on, a message compressed once and
// fanned out to a mix of subscribers that agreed on permessage-deflate (they get the compressed
// frame) and subscribers that did not (the plain frame) allocates nothing per subscriber.
func TestCompressedFanoutNoAllocsPerDelivery(t *testing.T) {
	testFanoutAllocs(t, true)
}

func testFanoutAllocs(t *testing.T, compression bool) {
	p, err := pubsub.New(pubsub.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := wsgate.New(wsgate.Config{Handler: p, Addr: "127.0.0.1:0", Loops: 1,
		Conn:   conn.Config{Compression: compression},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const subs = 50
	var cs []*websocket.Conn
	for i := 0; i < subs; i++ {
		d := websocket.Dialer{EnableCompression: compression && i%2 == 0} // half of them
		c, _, err := d.Dial("ws://"+s.Addr().String()+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","channel":"hot"}`)); err != nil {
			t.Fatal(err)
		}
		if _, b, err := c.ReadMessage(); err != nil || !strings.Contains(string(b), `"subscribed"`) {
			t.Fatalf("subscribe: %q %v", b, err)
		}
		c.SetReadDeadline(time.Time{})
		cs = append(cs, c)
	}
	// Keep every subscriber drained so that no queue nears its cap.
	stop := make(chan struct{})
	defer close(stop)
	for _, c := range cs {
		go func(c *websocket.Conn) {
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}(c)
	}
	data := []byte(`{"price":42}`)
	if compression {
		data = []byte(`{"items":[` + strings.Repeat(`{"symbol":"ABC","price":101.25,"volume":1200},`, 20) + `{}]}`)
	}
	frame := pubsub.EncodeMessage("hot", 1<<40, "", data)
	var compressed []byte
	if compression {
		_, hn, _ := wsframe.ParseHeader(frame)
		compressed = s.Engines()[0].CompressFrame(ws.OpText, frame[hn:])
		if compressed == nil {
			t.Fatal("the message did not compress")
		}
	}
	seq := uint64(1 << 41)
	run := func() (allocs float64, delivered int) {
		done := make(chan struct{})
		s.Engines()[0].Post(func() {
			defer close(done)
			allocs = testing.AllocsPerRun(100, func() {
				seq++ // each delivery a later message, as publishes are
				delivered = p.DeliverOn(0, "hot", seq, frame, compressed)
			})
		})
		<-done
		return
	}
	run() // warm: queues and the dirty list grow to their working size once
	allocs, delivered := run()
	if delivered != subs {
		t.Fatalf("delivered to %d subscribers, want %d", delivered, subs)
	}
	if allocs != 0 {
		t.Fatalf("%v allocations per fan-out to %d subscribers, want 0", allocs, subs)
	}
}

// TestSSEFanoutNoAllocsPerDelivery: delivering a message to SSE streams, some of one channel
// (the shared event queued whole) and some of several (their own id line, then the shared
// rest), over HTTP/1.1 (chunked) and HTTP/1.0, allocates nothing per delivery.
func TestSSEFanoutNoAllocsPerDelivery(t *testing.T) {
	p, err := pubsub.New(pubsub.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := wsgate.New(wsgate.Config{Handler: p, Addr: "127.0.0.1:0", Loops: 1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const streams = 40
	for i := 0; i < streams; i++ {
		target := "/sse?channel=hot"
		if i%2 == 1 {
			target += "&channel=other&channel=third"
		}
		proto := "HTTP/1.1"
		if i%4 >= 2 {
			proto = "HTTP/1.0"
		}
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET "+target+" "+proto+"\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
			t.Fatalf("stream %d: %q %v", i, line, err)
		}
		c.SetReadDeadline(time.Time{})
		go io.Copy(io.Discard, br) // keep every stream drained
	}
	frame := pubsub.EncodeMessage("hot", 1<<40, "", []byte(`{"price":42}`))
	ev := pubsub.EncodeEvent("hot", "EPOCH", 1<<40, frame)
	seq := uint64(1 << 41)
	run := func() (allocs float64, delivered int) {
		done := make(chan struct{})
		s.Engines()[0].Post(func() {
			defer close(done)
			allocs = testing.AllocsPerRun(100, func() {
				seq++
				delivered = p.DeliverEventOn(0, "hot", seq, frame, ev)
			})
		})
		<-done
		return
	}
	run() // warm: queues, scratch and the dirty list grow to their working size once
	allocs, delivered := run()
	if delivered != streams {
		t.Fatalf("delivered to %d streams, want %d", delivered, streams)
	}
	if allocs != 0 {
		t.Fatalf("%v allocations per fan-out to %d streams, want 0", allocs, streams)
	}
}
