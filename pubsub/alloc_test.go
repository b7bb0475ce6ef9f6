//go:build !race

package pubsub_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate"
	"github.com/wsgate/wsgate/pubsub"
)

// TestFanoutNoAllocsPerDelivery: queueing a published frame on a loop's subscribers allocates
// nothing per delivered message (measured on the loop goroutine, where fan-out runs).
func TestFanoutNoAllocsPerDelivery(t *testing.T) {
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
	const subs = 50
	var cs []*websocket.Conn
	for i := 0; i < subs; i++ {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+s.Addr().String()+"/", nil)
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
	frame := pubsub.EncodeMessage("hot", 1<<40, "", []byte(`{"price":42}`))
	run := func() (allocs float64, delivered int) {
		done := make(chan struct{})
		s.Engines()[0].Post(func() {
			defer close(done)
			allocs = testing.AllocsPerRun(100, func() {
				delivered = p.DeliverOn(0, "hot", 1<<41, frame, nil)
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
