package client_test

import (
	"fmt"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/wsgate/wsgate/pubsub"
)

// startNATS runs a nats-server with JetStream in this process, its store in the test's
// temporary directory, and returns its client URL.
func startNATS(t testing.TB) string {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT,
		JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(20 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	return ns.ClientURL()
}

// TestClusterFailover: a client given the URLs of two cluster nodes loses the one it is on (the
// node is closed), moves to the other, and recovers there what was published meanwhile,
// then carries on live: the numbering is the cluster's, so the position is valid on any node.
// It also subscribes before the channel's first message, so it meets the first-epoch notice.
func TestClusterFailover(t *testing.T) {
	nats := startNATS(t)
	node := func(id string) *gateway {
		return startGateway(t, "127.0.0.1:0", &pubsub.ClusterConfig{URLs: nats, NodeID: id, ConnectTimeout: 20 * time.Second})
	}
	n1, n2 := node("n1"), node("n2")
	b, sl := newInbox(), newSleeper()
	o := b.options()
	o.Sleep = sl.Sleep
	o.URLs = []string{n2.url()}
	o.HealthURLs = []string{n1.health(), n2.health()}
	c := dial(t, n1.url(), o)
	if err := c.Subscribe("ticks", b.handle); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		n1.publish(t, "ticks", "", fmt.Sprintf(`{"n":%d}`, i))
	}
	checkSequence(t, b.waitMessages(t, 3), 1)

	n1.s.Close()
	sl.next(t)
	for i := 4; i <= 6; i++ { // n2 has applied 1..6 when its publish of 6 returns
		n2.publish(t, "ticks", "", fmt.Sprintf(`{"n":%d}`, i))
	}
	sl.release(t)
	b.waitMessages(t, 6)
	n2.publish(t, "ticks", "", `{"n":7}`)
	b.checkComplete(t, 7)
}
