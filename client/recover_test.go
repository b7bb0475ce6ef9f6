package client_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/wsgate/wsgate/client"
)

// TestRecoverAfterCut: the client reaches the gateway through a TCP proxy that cuts its
// connection, once while the gateway's frames were held (so they are lost on the way) and once
// while a backend publishes; after each reconnect the missed messages arrive in order, each
// once, and the gateway never had to say recovered:false.
func TestRecoverAfterCut(t *testing.T) {
	g := startGateway(t, "127.0.0.1:0", nil)
	p := startProxy(t, g.s.Addr().String())
	b, sl := newInbox(), newSleeper()
	o := b.options()
	o.Sleep = sl.Sleep
	c := dial(t, p.url(), o)
	if err := c.Subscribe("feed", b.handle); err != nil {
		t.Fatal(err)
	}
	n := uint64(0)
	pub := func(k int) {
		for range k {
			n++
			if got := g.publish(t, "feed", "", fmt.Sprintf(`{"n":%d}`, n)); got != n {
				t.Fatalf("gateway numbered publish %d as %d", n, got)
			}
		}
	}
	pub(5)
	b.waitMessages(t, 5)

	// Frames in flight are lost with the connection; more are published while it is down.
	p.hold(true)
	pub(5)
	p.cut()
	sl.next(t)
	pub(5)
	p.hold(false)
	sl.release(t)
	checkSequence(t, b.waitMessages(t, 15), 1)

	// A cut while a backend publishes.
	var wg sync.WaitGroup
	halfway := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 40 {
			if i == 10 {
				close(halfway)
			}
			n2 := uint64(16 + i)
			if got := g.publish(t, "feed", "", fmt.Sprintf(`{"n":%d}`, n2)); got != n2 {
				t.Errorf("gateway numbered publish %d as %d", n2, got)
				return
			}
		}
	}()
	<-halfway
	p.cut()
	sl.next(t)
	sl.release(t)
	wg.Wait()
	b.checkComplete(t, 55)
	if p.accepted() != 3 {
		t.Fatalf("%d connections through the proxy, want 3", p.accepted())
	}
}

// TestSubscribePublishUnsubscribe: the calls against a real gateway, and the answers they wait
// for.
func TestSubscribePublishUnsubscribe(t *testing.T) {
	g := startGateway(t, "127.0.0.1:0", nil)
	b := newInbox()
	c := dial(t, g.url(), b.options())
	ctx := context.Background()
	if err := c.Subscribe("a", b.handle); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe("a", b.handle); err == nil {
		t.Fatal("a second Subscribe to the same channel succeeded")
	}
	if err := c.Subscribe("bad channel", b.handle); err == nil {
		t.Fatal("Subscribe accepted an invalid channel name")
	}
	r, err := c.Publish(ctx, "a", "x1", []byte(`{"n":1}`))
	if err != nil || r.Seq != 1 || r.Duplicate {
		t.Fatalf("Publish: %+v, %v", r, err)
	}
	r, err = c.Publish(ctx, "a", "x1", []byte(`{"n":1}`))
	if err != nil || !r.Duplicate {
		t.Fatalf("Publish of the same id again: %+v, %v, want duplicate", r, err)
	}
	r, err = c.Publish(ctx, "a", "", []byte(`{"n":2}`))
	if err != nil || r.Seq != 2 {
		t.Fatalf("Publish without id: %+v, %v", r, err)
	}
	if _, err := c.Publish(ctx, "a", "", []byte(`{"n":`)); err == nil {
		t.Fatal("Publish accepted invalid JSON")
	}
	ms := b.waitMessages(t, 2)
	checkSequence(t, ms, 1)
	if ms[0].ID != "x1" || ms[1].ID != "" || ms[0].Channel != "a" {
		t.Fatalf("messages %+v", ms)
	}
	if err := c.Unsubscribe("a"); err != nil {
		t.Fatal(err)
	}
	if err := c.Unsubscribe("a"); err == nil {
		t.Fatal("a second Unsubscribe succeeded")
	}
	// A message published after Unsubscribe returned is not delivered; one to another channel
	// subscribed afterwards shows that the first had its chance.
	g.publish(t, "a", "", `{"n":3}`)
	if err := c.Subscribe("b", b.handle); err != nil {
		t.Fatal(err)
	}
	g.publish(t, "b", "", `{"n":1}`)
	ms = b.waitMessages(t, 3)
	if len(ms) != 3 || ms[2].Channel != "b" {
		t.Fatalf("after Unsubscribe: %+v", ms)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, "a", "", []byte(`1`)); err != client.ErrClosed {
		t.Fatalf("Publish after Close: %v", err)
	}
	b.waitFor(t, "closed", func() bool { return len(b.states) > 0 && b.states[len(b.states)-1] == client.StateClosed })
}
