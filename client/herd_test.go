package client_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/client"
)

// TestHerdSpreadsReconnects: 2,000 clients dropped at once by a gateway restart spread their
// reconnect attempts over the backoff window instead of coming back together. The verdict is the
// histogram of the delays they ask the injected clock for, drawn from seeded jitter, so it is the
// same on every run and machine; then the clock lets them all go, and every one of them reaches
// the restarted gateway, learns that its position is lost, and receives the next message.
// 2,000 clients hold 4,000 descriptors (both ends in this process) of the 20,000 allowed.
func TestHerdSpreadsReconnects(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 clients")
	}
	const n = 2000
	g1 := startGateway(t, "127.0.0.1:0", nil)
	addr := g1.s.Addr().String()

	asked := make(chan time.Duration, n)
	gate := make(chan struct{})
	var dropped atomic.Bool // before the restart, a failed attempt (a loaded machine) just retries
	var failed, got atomic.Int32
	clients := make([]*client.Client, n)
	var wg sync.WaitGroup
	start := time.Now()
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			o := client.Options{
				Rand: rand.New(rand.NewPCG(uint64(i), 42)).Float64,
				Sleep: func(ctx context.Context, d time.Duration) error {
					if !dropped.Load() {
						return nil
					}
					select {
					case asked <- d:
					case <-ctx.Done():
						return ctx.Err()
					}
					select {
					case <-gate:
						return nil
					case <-ctx.Done():
						return ctx.Err()
					}
				},
				OnRecoveryFailed: func(string) { failed.Add(1) },
				DialTimeout:      herdWait, PingInterval: -1,
			}
			ctx, cancel := context.WithTimeout(context.Background(), herdWait)
			defer cancel()
			c, err := client.Dial(ctx, "ws://"+addr+"/", o)
			if err != nil {
				t.Error(err)
				return
			}
			clients[i] = c
			if err := c.Subscribe("herd", func(client.Message) { got.Add(1) }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d clients connected in %v", n, time.Since(start))
	t.Cleanup(func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	})
	if t.Failed() {
		return
	}
	g1.publish(t, "herd", "", `{"n":1}`) // a position to recover, which the restart loses
	waitCount(t, "messages before the restart", &got, n)

	dropped.Store(true)
	g1.s.Close()
	const bucket = 100 * time.Millisecond
	hist := map[int]int{}
	deadline := time.After(herdWait)
	for range n {
		select {
		case d := <-asked:
			if d < 250*time.Millisecond || d > 750*time.Millisecond {
				t.Fatalf("first reconnect delay %v outside 500ms ± 250ms", d)
			}
			hist[int(d/bucket)]++
		case <-deadline:
			t.Fatalf("only %d of %d clients are waiting to reconnect", len(hist), n)
		}
	}
	most := 0
	for _, k := range hist {
		most = max(most, k)
	}
	t.Logf("first reconnect attempts per 100 ms after the drop: %v", hist)
	if most > n/4 || len(hist) < 5 {
		t.Fatalf("%d of %d attempts in one 100 ms bucket, %d buckets used: %v", most, n, len(hist), hist)
	}

	g2 := startGateway(t, addr, nil)
	start = time.Now()
	close(gate)
	waitCount(t, "recoveries reported failed", &failed, n)
	t.Logf("%d clients reconnected in %v", n, time.Since(start))
	g2.publish(t, "herd", "", `{"n":1}`)
	waitCount(t, "messages after the restart", &got, 2*n)
}

// herdWait bounds each phase of the herd test: 2,000 handshakes at once under -race on a loaded
// 2-core machine take tens of seconds, minutes when other suites share the cores.
const herdWait = 5 * time.Minute

// waitCount waits until v reaches want, polling: only the timeout is the wall clock's.
func waitCount(t testing.TB, what string, v *atomic.Int32, want int) {
	t.Helper()
	deadline := time.Now().Add(herdWait)
	for int(v.Load()) < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d", what, v.Load(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if int(v.Load()) != want {
		t.Fatalf("%s: %d, want %d", what, v.Load(), want)
	}
}
