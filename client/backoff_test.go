package client_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsgate/wsgate/client"
)

// refusing is a server that answers every opening handshake with 503.
func refusing(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	return "ws" + srv.URL[len("http"):] + "/"
}

// delays dials a gateway that refuses every handshake and returns the first n backoff delays the
// client asks for, read from the injected clock: no real waiting.
func delays(t *testing.T, o client.Options, n int) []time.Duration {
	t.Helper()
	sl := newSleeper()
	o.Sleep = sl.Sleep
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		c, err := client.Dial(ctx, refusing(t), o)
		if c != nil {
			c.Close()
		}
		errc <- err
	}()
	var out []time.Duration
	for range n {
		out = append(out, sl.next(t))
		sl.release(t)
	}
	sl.next(t)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial ended with %v, want context.Canceled", err)
	}
	return out
}

// TestBackoffSchedule: the first retry waits 500 ms ± jitter, each failure doubles the delay,
// and 30 s caps it, jitter included.
func TestBackoffSchedule(t *testing.T) {
	ms := time.Millisecond
	t.Run("nominal", func(t *testing.T) {
		got := delays(t, client.Options{Rand: func() float64 { return 0.5 }}, 9)
		want := []time.Duration{500 * ms, 1000 * ms, 2000 * ms, 4000 * ms, 8000 * ms, 16000 * ms, 30000 * ms, 30000 * ms, 30000 * ms}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("delays %v, want %v", got, want)
			}
		}
	})
	t.Run("least jitter is 100ms", func(t *testing.T) {
		o := client.Options{JitterFraction: -1, Rand: func() float64 { return 0 }}
		if got := delays(t, o, 2); got[0] != 400*ms || got[1] != 900*ms {
			t.Fatalf("delays %v with the least draw, want [400ms 900ms]", got)
		}
		o.Rand = func() float64 { return 1 - 1e-12 }
		if got := delays(t, o, 1); got[0] < 599*ms || got[0] > 600*ms {
			t.Fatalf("delay %v with the largest draw, want 600ms", got[0])
		}
	})
	t.Run("seeded jitter", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		got := delays(t, client.Options{Rand: r.Float64}, 12)
		distinct := map[time.Duration]bool{}
		for i, d := range got {
			nominal := min(30*time.Second, 500*ms<<i)
			j := max(100*ms, nominal/2)
			if d < nominal-j || d > min(30*time.Second, nominal+j) {
				t.Fatalf("delay %d is %v, outside %v ± %v (capped at 30s)", i, d, nominal, j)
			}
			distinct[d] = true
		}
		if len(distinct) < 8 { // those at the cap may repeat
			t.Fatalf("delays %v: the jitter does not vary", got)
		}
	})
	t.Run("configured", func(t *testing.T) {
		o := client.Options{BackoffInitial: time.Second, BackoffMax: 5 * time.Second, BackoffMultiplier: 3,
			Jitter: -1, JitterFraction: -1, Rand: func() float64 { return 0 }}
		got := delays(t, o, 4)
		want := []time.Duration{time.Second, 3 * time.Second, 5 * time.Second, 5 * time.Second}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("delays %v, want %v", got, want)
			}
		}
	})
}

// TestBackoffAfterServedConnection: a connection the gateway served (it sent a frame) starts
// the delays over; connections refused at once (closed before any frame, as a gateway
// shedding load with 1013 does) keep doubling them.
func TestBackoffAfterServedConnection(t *testing.T) {
	s := startScripted(t, func(n int, ws *websocket.Conn) {
		switch n {
		case 0, 3:
			ws.Write(context.Background(), websocket.MessageText, hello)
			ws.Close(websocket.StatusTryAgainLater, "busy")
		case 1, 2:
			ws.Close(websocket.StatusTryAgainLater, "busy")
		default:
			keep(ws)
		}
	})
	b, sl := newInbox(), newSleeper()
	o := b.options()
	o.Sleep, o.Rand = sl.Sleep, func() float64 { return 0.5 }
	o.BackoffInitial, o.BackoffMax = 0, 0
	dial(t, s.url(), o)
	var got []time.Duration
	for range 4 {
		got = append(got, sl.next(t))
		sl.release(t)
	}
	ms := time.Millisecond
	want := []time.Duration{500 * ms, 1000 * ms, 2000 * ms, 500 * ms}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
	b.waitFor(t, "5 connections", func() bool { return b.countLocked(client.StateConnected) == 5 })
}

// TestHealthProbe: with a health URL, each reconnect attempt asks it first, and a gateway that
// says it is unhealthy is not dialled.
func TestHealthProbe(t *testing.T) {
	var probes atomic.Int32
	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if probes.Add(1) <= 3 {
			http.Error(w, "unavailable: NATS connection lost", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(health.Close)
	probesAtFirst := atomic.Int32{}
	probesAtFirst.Store(-1)
	s := startScripted(t, func(n int, ws *websocket.Conn) {
		if n == 0 {
			probesAtFirst.Store(probes.Load()) // before the first connection: none
			ws.Write(context.Background(), websocket.MessageText, hello)
			ws.Close(websocket.StatusServiceRestart, "restart")
			return
		}
		keep(ws)
	})
	b, sl := newInbox(), newSleeper()
	o := b.options()
	o.Sleep, o.HealthURL = sl.Sleep, health.URL+"/healthz"
	close(sl.open)
	dial(t, s.url(), o)
	// The check is made when the server takes the first connection: once Dial returns, the
	// reconnect after the 1012 may already have probed.
	b.waitFor(t, "reconnected", func() bool { return b.countLocked(client.StateConnected) == 2 })
	if p := probesAtFirst.Load(); p != 0 {
		t.Fatalf("Dial's first attempt was probed (%d probes before the first connection)", p)
	}
	if p, h, n := probes.Load(), len(s.handshakes()), sl.count(); p != 4 || h != 2 || n != 4 {
		t.Fatalf("%d probes, %d handshakes, %d sleeps; want 4, 2, 4", p, h, n)
	}
}
