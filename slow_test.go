package wsgate

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/pubsub"
)

// TestSlowConsumerKicked: a subscriber that never reads is closed with 1008 once its queue passes
// -max-queue, while healthy subscribers receive every message; the server's queue for it never
// grows past the cap.
func TestSlowConsumerKicked(t *testing.T) {
	s := pubsubServer(t, Config{Loops: 2, Conn: ConnConfig{MaxQueue: 256 << 10, CloseTimeout: 200 * time.Millisecond}}, pubsub.Config{})
	// The slow one: a tiny receive buffer, subscribes, then never reads again.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
	}}
	nc, err := d.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	slow := &rawClient{t: t, c: nc, br: bufioReader(nc)}
	slow.handshake()
	slow.send(ws.OpText, true, []byte(`{"op":"subscribe","channel":"feed"}`))
	if f := slow.readFrame(); !bytes.Contains(f.Payload, []byte("subscribed")) {
		t.Fatalf("slow subscribe: %q", f.Payload)
	}
	var healthy []*sub
	for i := 0; i < 4; i++ {
		h := dialSub(t, s)
		h.subscribe("feed")
		healthy = append(healthy, h)
	}
	const n = 200
	data := `"` + strings.Repeat("x", 64<<10) + `"`
	// Publishes go out in lockstep with the healthy readers (each message is read by all four
	// before the next is published), so a healthy reader's queue never holds more than one
	// message however slowly this machine schedules it; the slow one reads nothing and must
	// pass the cap. Every read has a deadline of its own, generous for a loaded machine.
	for i := 1; i <= n; i++ {
		if st, rep := apiPost(t, s, "/api/publish", "", "", `{"channel":"feed","data":`+data+`}`); st != 200 {
			t.Fatalf("publish %d: %d %v", i, st, rep)
		}
		for k, h := range healthy {
			h.c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, b, err := h.c.ReadMessage()
			if err != nil || !bytes.Contains(b, []byte(fmt.Sprintf(`"seq":%d,`, i))) {
				t.Fatalf("healthy subscriber %d: message %d of %d: %v (%.40q)", k, i, n, err, b)
			}
		}
	}
	waitFor(t, "slow consumer kicked", func() bool { return metricValue(t, s, "wsgate_slow_consumers_total") == 1 })
	waitFor(t, "slow consumer's socket closed", func() bool { return s.Connections() == int64(len(healthy)) })
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metricValue reads one unlabelled sample from the server's metric set.
func metricValue(t testing.TB, s *Server, name string) float64 {
	t.Helper()
	var buf bytes.Buffer
	s.Metrics().WritePrometheus(&buf)
	for _, line := range strings.Split(buf.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}
