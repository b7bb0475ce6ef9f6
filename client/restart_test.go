package client_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/wsgate/wsgate/client"
)

// TestRestartRecoveryFailed: a single-node gateway restarts (a new one on the same address, its
// history gone, the channel under a new epoch): the client reconnects, the gateway answers its
// `since` with recovered:false, OnRecoveryFailed says so, and the new numbering's messages
// follow.
func TestRestartRecoveryFailed(t *testing.T) {
	g1 := startGateway(t, "127.0.0.1:0", nil)
	addr := g1.s.Addr().String()
	b, sl := newInbox(), newSleeper()
	o := b.options()
	o.Sleep = sl.Sleep
	c := dial(t, g1.url(), o)
	if err := c.Subscribe("news", b.handle); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		g1.publish(t, "news", "", fmt.Sprintf(`{"n":%d}`, i))
	}
	old := b.waitMessages(t, 3)
	checkSequence(t, old, 1)

	g1.s.Close()
	sl.next(t)
	g2 := startGateway(t, addr, nil)
	sl.release(t)
	b.waitFor(t, "OnRecoveryFailed", func() bool { return len(b.failed) == 1 })
	for i := 1; i <= 2; i++ {
		g2.publish(t, "news", "", fmt.Sprintf(`{"n":%d}`, i))
	}
	all := b.waitMessages(t, 5)
	checkSequence(t, all[3:], 1)
	if all[3].Epoch == old[0].Epoch {
		t.Fatalf("the restarted gateway's messages carry the old epoch %s", old[0].Epoch)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.failed) != 1 || b.failed[0] != "news" || len(b.msgs) != 5 {
		t.Fatalf("recovery failed for %v, %d messages", b.failed, len(b.msgs))
	}
}

// TestPublishRetriedOnce: a publish whose answer is lost with the connection is sent again on
// the next one with the same id; the gateway's dedup answers duplicate, and every subscriber,
// the publishing client included, gets the message once.
func TestPublishRetriedOnce(t *testing.T) {
	g := startGateway(t, "127.0.0.1:0", nil)
	p := startProxy(t, g.s.Addr().String())
	b, sl := newInbox(), newSleeper()
	o := b.options()
	o.Sleep = sl.Sleep
	c := dial(t, p.url(), o)
	if err := c.Subscribe("orders", b.handle); err != nil {
		t.Fatal(err)
	}
	other := newInbox()
	if err := dial(t, g.url(), other.options()).Subscribe("orders", other.handle); err != nil {
		t.Fatal(err)
	}

	p.hold(true) // the gateway's answer and the message will not reach the client
	type result struct {
		r   client.PublishResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		r, err := c.Publish(ctx, "orders", "order-1", []byte(`{"n":1}`))
		done <- result{r, err}
	}()
	other.waitMessages(t, 1) // the gateway took it
	p.cut()
	sl.next(t)
	p.hold(false)
	sl.release(t)
	res := <-done
	if res.err != nil || !res.r.Duplicate {
		t.Fatalf("Publish after a lost answer: %+v, %v; want the retry answered duplicate", res.r, res.err)
	}
	g.publish(t, "orders", "", `{"n":2}`)
	checkSequence(t, b.waitMessages(t, 2), 1)
	checkSequence(t, other.waitMessages(t, 2), 1)
	if g.top(t, "orders") != 2 {
		t.Fatalf("the channel is at %d, want 2", g.top(t, "orders"))
	}

	// Without an id the client cannot tell whether the gateway took it: it says so.
	p.hold(true)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		r, err := c.Publish(ctx, "orders", "", []byte(`{"n":3}`))
		done <- result{r, err}
	}()
	other.waitMessages(t, 3)
	p.cut()
	sl.next(t)
	p.hold(false)
	sl.release(t)
	if res := <-done; !errors.Is(res.err, client.ErrUnconfirmed) {
		t.Fatalf("Publish without id whose answer was lost: %+v, %v; want ErrUnconfirmed", res.r, res.err)
	}
	checkSequence(t, b.waitMessages(t, 3), 1) // recovered from history all the same
}

// TestPublishWaitsForConnection: a publish made while the client is reconnecting is sent on the
// next connection; one whose context ends first is never sent.
func TestPublishWaitsForConnection(t *testing.T) {
	g := startGateway(t, "127.0.0.1:0", nil)
	p := startProxy(t, g.s.Addr().String())
	b, sl := newInbox(), newSleeper()
	o := b.options()
	o.Sleep = sl.Sleep
	c := dial(t, p.url(), o)
	if err := c.Subscribe("q", b.handle); err != nil {
		t.Fatal(err)
	}
	p.cut()
	sl.next(t) // disconnected, waiting out the delay
	short, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Publish(short, "q", "gone", []byte(`{"n":0}`)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with an ended context: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		r, err := c.Publish(ctx, "q", "later", []byte(`{"n":1}`))
		if err == nil && r.Seq != 1 {
			err = fmt.Errorf("seq %d, want 1", r.Seq)
		}
		done <- err
	}()
	sl.release(t)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkSequence(t, b.waitMessages(t, 1), 1)
}
