package conn

import (
	"bytes"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/frame"
)

// TestCheckRoutesAndAttachesData: Config.Check sees the request's target and headers on the
// loop, refuses with its status and body (no OnOpen, no OnClose, counted as rejected), and what
// it stores in c.Data is there for the connection once open; a refused connection's Data does
// not survive into the next user of the pooled struct.
func TestCheckRoutesAndAttachesData(t *testing.T) {
	var seen []string
	h := newHarness(t, Config{Check: func(c *Conn, r *frame.Request) (int, string) {
		tok, ok := r.Header("X-Token")
		seen = append(seen, string(r.Path())+" "+string(tok))
		c.Data = "user:" + string(tok)
		if !ok {
			return 401, "token required\n"
		}
		return 0, ""
	}})

	p := h.dial()
	p.send([]byte(upgradeRequest))
	p.readHTTP(401)
	if !bytes.HasPrefix(p.in, []byte("token required")) {
		t.Fatalf("body %q", p.in)
	}
	if h.rec.opened != 0 || len(h.rec.closed) != 0 {
		t.Fatalf("a refused connection reached the handler: opened %d closed %v", h.rec.opened, h.rec.closed)
	}
	if n := h.e.Stats.Rejects[RejectRejected].Load(); n != 1 {
		t.Fatalf("rejected count %d", n)
	}
	h.step(testTick)

	q := h.dial()
	q.send([]byte(strings.Replace(upgradeRequest, "Host: localhost\r\n", "Host: localhost\r\nx-token: 42\r\n", 1)))
	q.readHTTP(101)
	c := h.e.Lookup(q.id)
	if c == nil || c.Data != "user:42" {
		t.Fatalf("open connection's Data = %v", c)
	}
	if len(seen) != 2 || seen[0] != "/ws " || seen[1] != "/ws 42" {
		t.Fatalf("check saw %q", seen)
	}
}
