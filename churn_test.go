package wsgate

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/pubsub"
)

// TestPubSubChurn: while two publishers publish continuously, clients on three loops subscribe,
// unsubscribe and disconnect at random. Nothing panics or races, a subscriber that stays sees
// every seq in order, and when everyone is gone no subscription is left.
func TestPubSubChurn(t *testing.T) {
	s := pubsubServer(t, Config{Loops: 3}, pubsub.Config{})
	stable := dialSub(t, s)
	stable.subscribe("hot")
	var stop atomic.Bool
	var wg sync.WaitGroup
	var published atomic.Int64
	for p := 0; p < 2; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				resp, err := http.Post("http://"+s.AdminAddr()+"/api/publish", "application/json",
					strings.NewReader(`{"channel":"hot","data":1}`))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				published.Add(1)
			}
		}()
	}
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 9))
			for i := 0; i < 15; i++ {
				c, _, err := websocket.DefaultDialer.Dial(wsURL(s, "/"), nil)
				if err != nil {
					t.Error(err)
					return
				}
				go func() { // drain, so that no churner becomes a slow consumer
					for {
						if _, _, err := c.ReadMessage(); err != nil {
							return
						}
					}
				}()
				for k := 0; k < 1+r.IntN(6); k++ {
					ch := []string{"hot", "cold", fmt.Sprint("w", w)}[r.IntN(3)]
					op := []string{"subscribe", "unsubscribe"}[r.IntN(2)]
					c.WriteMessage(websocket.TextMessage, []byte(`{"op":"`+op+`","channel":"`+ch+`"}`))
				}
				time.Sleep(time.Duration(r.IntN(3)) * time.Millisecond)
				c.Close() // often with subscriptions left: OnClose must clean them up
			}
		}(w)
	}
	// The stable subscriber reads while the churn goes on.
	var next uint64 = 1
	deadline := time.Now().Add(30 * time.Second)
	for published.Load() < 300 && time.Now().Before(deadline) {
		m := stable.read()
		if m.Op != "message" || m.Seq != next {
			t.Fatalf("stable subscriber: got %+v, want message seq %d", m, next)
		}
		next++
	}
	stop.Store(true)
	wg.Wait()
	for next <= uint64(published.Load()) {
		if m := stable.read(); m.Seq != next {
			t.Fatalf("stable subscriber: seq %d, want %d", m.Seq, next)
		}
		next++
	}
	stable.c.Close()
	waitFor(t, "all connections gone", func() bool { return s.Connections() == 0 })
	if st, stats := apiGet(t, s, "/api/stats", ""); st != 200 || stats["subscriptions"] != float64(0) {
		t.Fatalf("subscriptions left with no connection: %d %v", st, stats)
	}
	// Channels keep their numbering (history), but none has a subscriber left.
	_, list := apiGet(t, s, "/api/channels", "")
	for _, c := range list["channels"].([]any) {
		if n := c.(map[string]any)["subscribers"]; n != float64(0) {
			t.Fatalf("channel %v has %v subscribers with no connection", c, n)
		}
	}
}
