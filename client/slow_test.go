package client_test

import (
	"fmt"
	"testing"

	"github.com/wsgate/wsgate/client"
)

// TestSlowHandlerRecovers: a handler that stops makes the queue of waiting messages pass
// MaxPending; the client drops them and the connection instead of growing, and once the handler
// goes on, the messages it had not been given come back from the gateway's history: all of
// them, in order, each once.
func TestSlowHandlerRecovers(t *testing.T) {
	g := startGateway(t, "127.0.0.1:0", nil)
	p := startProxy(t, g.s.Addr().String())
	b := newInbox()
	o := b.options()
	o.MaxPending = 8
	stuck, gate := make(chan struct{}), make(chan struct{})
	c := dial(t, p.url(), o)
	err := c.Subscribe("slow", func(m client.Message) {
		if m.Seq == 1 {
			close(stuck)
			<-gate
		}
		b.handle(m)
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 50; i++ {
		g.publish(t, "slow", "", fmt.Sprintf(`{"n":%d}`, i))
	}
	<-stuck
	// The handler holds the delivery goroutine, so no callback can say it: the proxy sees the
	// client come back.
	eventually(t, "a reconnect while the handler is stuck", func() bool { return p.accepted() >= 2 })
	close(gate)
	b.checkComplete(t, 50)
}
