package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsgate/wsgate/client"
)

// scripted is a WebSocket server of the test's own (coder/websocket's Accept in an httptest
// server) that treats its n-th connection as script(n, conn) says. It records the token of every
// handshake.
type scripted struct {
	srv    *httptest.Server
	mu     sync.Mutex
	tokens []string
}

// keep holds a connection open, answering pings and closes, until the client goes.
func keep(ws *websocket.Conn) {
	for {
		if _, _, err := ws.Read(context.Background()); err != nil {
			return
		}
	}
}

func startScripted(t testing.TB, script func(n int, ws *websocket.Conn)) *scripted {
	t.Helper()
	s := &scripted{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		n := len(s.tokens)
		s.tokens = append(s.tokens, r.URL.Query().Get("token"))
		s.mu.Unlock()
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		script(n, ws)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *scripted) url() string { return "ws" + s.srv.URL[len("http"):] + "/" }

func (s *scripted) handshakes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tokens...)
}

// hello is a frame the test servers send so that the client counts the connection as served.
var hello = []byte(`{"op":"broadcast","data":"hello"}`)

// TestClose4002StopsReconnecting: "disconnected by the server" is final.
func TestClose4002StopsReconnecting(t *testing.T) {
	s := startScripted(t, func(n int, ws *websocket.Conn) {
		ws.Write(context.Background(), websocket.MessageText, hello)
		ws.Close(client.CloseDisconnected, "disconnected by the operator")
	})
	b, sl := newInbox(), newSleeper()
	o := b.options()
	o.Sleep = sl.Sleep
	c := dial(t, s.url(), o)
	select {
	case <-c.Done():
	case <-time.After(wait):
		t.Fatal("the client did not stop after a 4002 close")
	}
	if err := c.Err(); !errors.Is(err, client.ErrDisconnected) {
		t.Fatalf("Err() = %v, want ErrDisconnected", err)
	}
	if n := len(s.handshakes()); n != 1 || sl.count() != 0 {
		t.Fatalf("%d handshakes and %d backoff sleeps after a 4002, want 1 and 0", n, sl.count())
	}
	if err := c.Subscribe("x", b.handle); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Subscribe after a 4002: %v", err)
	}
	b.waitFor(t, "state closed", func() bool { return len(b.states) > 0 && b.states[len(b.states)-1] == client.StateClosed })
}

// TestClose4001ReconnectsAtOnceWithFreshToken: an expired token is replaced without a backoff
// delay, but a gateway that refuses the fresh one at once too gets the backoff.
func TestClose4001ReconnectsAtOnceWithFreshToken(t *testing.T) {
	s := startScripted(t, func(n int, ws *websocket.Conn) {
		switch n {
		case 0: // served for a while, then the token expires
			ws.Write(context.Background(), websocket.MessageText, hello)
			ws.Close(client.CloseTokenExpired, "token expired")
		case 1, 2: // refused at once: after an immediate retry, the next one waits
			ws.Close(client.CloseTokenExpired, "token expired")
		default:
			keep(ws)
		}
	})
	b, sl := newInbox(), newSleeper()
	o := b.options()
	o.Sleep = sl.Sleep
	var mu sync.Mutex
	issued := 0
	o.Token = func(ctx context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		issued++
		return "t" + string(rune('0'+issued)), nil
	}
	dial(t, s.url(), o)
	sl.next(t) // after the 4001 of connection 1, which was an immediate retry refused at once
	if got := s.handshakes(); len(got) != 2 || got[0] != "t1" || got[1] != "t2" {
		t.Fatalf("handshakes with tokens %v before the first backoff sleep, want [t1 t2]", got)
	}
	sl.release(t) // connection 2 is refused at once too, and retried at once: the last retry waited
	b.waitFor(t, "4 connections", func() bool { return b.countLocked(client.StateConnected) == 4 })
	if got := s.handshakes(); len(got) != 4 || got[3] != "t4" || sl.count() != 1 {
		t.Fatalf("tokens %v and %d sleeps, want [t1 t2 t3 t4] and 1", got, sl.count())
	}
}

// TestOtherClosesReconnectWithBackoff: every other close, and a connection that just drops,
// reconnects after the backoff delay, the first one after a served connection being the
// initial delay.
func TestOtherClosesReconnectWithBackoff(t *testing.T) {
	for _, code := range []websocket.StatusCode{1000, 1001, 1006, 1008, 1011, 1012, 1013, 4000, 4003} {
		t.Run(code.String(), func(t *testing.T) {
			s := startScripted(t, func(n int, ws *websocket.Conn) {
				if n > 0 {
					keep(ws)
					return
				}
				ws.Write(context.Background(), websocket.MessageText, hello)
				if code == 1006 {
					ws.CloseNow() // no close frame: the TCP connection just ends
					return
				}
				ws.Close(code, "bye")
			})
			b, sl := newInbox(), newSleeper()
			o := b.options()
			o.Sleep, o.Rand = sl.Sleep, func() float64 { return 0.5 }
			o.BackoffInitial, o.BackoffMax = 0, 0 // defaults
			dial(t, s.url(), o)
			if d := sl.next(t); d != 500*time.Millisecond {
				t.Fatalf("first delay %v, want 500ms (jitter drawn at the middle)", d)
			}
			if n := len(s.handshakes()); n != 1 {
				t.Fatalf("%d handshakes before the delay ended", n)
			}
			sl.release(t)
			b.waitFor(t, "reconnected", func() bool { return b.countLocked(client.StateConnected) == 2 })
			if got := b.countState(client.StateReconnecting); got != 1 {
				t.Fatalf("reconnecting reported %d times", got)
			}
		})
	}
}
