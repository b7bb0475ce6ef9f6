package wsgate

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/wsgate/wsgate/pubsub"
)

// natsBroker is a real nats-server with JetStream, run in this process on a loopback port with
// its store in the test's temporary directory. restart stops it and starts it again on the same
// port and store, as an operator restarting the broker would.
type natsBroker struct {
	t    testing.TB
	opts natsserver.Options
	srv  *natsserver.Server
}

func startNATS(t testing.TB) *natsBroker {
	t.Helper()
	b := &natsBroker{t: t, opts: natsserver.Options{
		Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true, ServerName: "test-nats",
	}}
	b.start()
	// Keep the port the kernel chose, so that a restart comes back where clients reconnect.
	b.opts.Port = b.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(func() { b.srv.Shutdown() })
	return b
}

func (b *natsBroker) start() {
	b.t.Helper()
	s, err := natsserver.NewServer(&b.opts)
	if err != nil {
		b.t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		b.t.Fatal("nats-server did not start")
	}
	b.srv = s
}

func (b *natsBroker) url() string { return "nats://127.0.0.1:" + strconv.Itoa(b.opts.Port) }

func (b *natsBroker) stop() {
	b.srv.Shutdown()
	b.srv.WaitForShutdown()
}

// clusterNode runs one wsgate node of the cluster on b, with history on and pubsub config pc.
func clusterNode(t testing.TB, b *natsBroker, id string, pc pubsub.Config) *Server {
	t.Helper()
	pc.Cluster = &pubsub.ClusterConfig{URLs: b.url(), NodeID: id, ConnectTimeout: 20 * time.Second}
	if pc.HistorySize == 0 {
		pc.HistorySize = 1000
	}
	if pc.HistoryTTL == 0 {
		pc.HistoryTTL = time.Hour
	}
	return pubsubServer(t, Config{Loops: 2}, pc)
}

func publishOn(t testing.TB, s *Server, channel, id, data string) (int, map[string]any) {
	t.Helper()
	body := fmt.Sprintf(`{"channel":%q,"data":%s}`, channel, data)
	if id != "" {
		body = fmt.Sprintf(`{"channel":%q,"id":%q,"data":%s}`, channel, id, data)
	}
	return apiPost(t, s, "/api/publish", "", "", body)
}
