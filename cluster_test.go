package wsgate

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgate/wsgate/pubsub"
)

// End-to-end tests of cluster mode: several wsgate nodes in this process, each with its own NATS
// connection, on one real nats-server with JetStream, and gorilla/websocket clients.

// TestClusterOneNumberingAcrossNodes: subscribers on three nodes, four publishers on different
// nodes at once: every subscriber receives every message once, in order, with the same
// contiguous seq and the same epoch everywhere.
func TestClusterOneNumberingAcrossNodes(t *testing.T) {
	b := startNATS(t)
	nodes := []*Server{clusterNode(t, b, "n1", pubsub.Config{}), clusterNode(t, b, "n2", pubsub.Config{}), clusterNode(t, b, "n3", pubsub.Config{})}
	var subs []*sub
	var epoch string
	for _, n := range nodes {
		for i := 0; i < 2; i++ {
			c := dialSub(t, n)
			c.send(`{"op":"subscribe","channel":"prices:EUR.USD"}`)
			r := c.readRaw()
			if r["op"] != "subscribed" || r["seq"] != float64(0) {
				t.Fatalf("subscribe: %v", r)
			}
			subs = append(subs, c)
		}
	}
	const publishers, each = 4, 25
	var wg sync.WaitGroup
	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func(n *Server) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if st, rep := publishOn(t, n, "prices:EUR.USD", "", fmt.Sprint(i)); st != 200 {
					t.Errorf("publish: %d %v", st, rep)
					return
				}
			}
		}(nodes[p%len(nodes)])
	}
	wg.Wait()
	for k, c := range subs {
		for want := uint64(1); want <= publishers*each; want++ {
			r := c.readRaw()
			if r["op"] == "subscribed" { // the channel's first epoch, before its first message
				if want != 1 || r["seq"] != float64(0) {
					t.Fatalf("subscriber %d: %v before seq %d", k, r, want)
				}
				if epoch == "" {
					epoch = r["epoch"].(string)
				} else if r["epoch"] != epoch {
					t.Fatalf("subscriber %d got epoch %v, another got %s", k, r["epoch"], epoch)
				}
				r = c.readRaw()
			}
			if r["op"] != "message" || r["seq"] != float64(want) {
				t.Fatalf("subscriber %d: %v, want message seq %d", k, r, want)
			}
		}
	}
	for _, n := range nodes {
		st, stats := apiGet(t, n, "/api/stats", "")
		if st != 200 || stats["node_id"] == "" || stats["node_id"] == nil {
			t.Fatalf("stats: %d %v", st, stats)
		}
		if v := metricValue(t, n, fmt.Sprintf(`wsgate_node_info{node_id=%q}`, stats["node_id"])); v != 1 {
			t.Fatalf("wsgate_node_info = %v", v)
		}
		_, h := apiGet(t, n, "/api/history?channel=prices:EUR.USD&limit=1", "")
		if h["seq"] != float64(publishers*each) || h["epoch"] != epoch {
			t.Fatalf("history on %v: %v", stats["node_id"], h)
		}
	}
}

// TestClusterDedupAcrossNodes: the same id through two nodes is delivered once; the second
// publish answers 208.
func TestClusterDedupAcrossNodes(t *testing.T) {
	b := startNATS(t)
	n1, n2 := clusterNode(t, b, "n1", pubsub.Config{}), clusterNode(t, b, "n2", pubsub.Config{})
	c := dialSub(t, n2)
	c.subscribe("orders")
	if st, rep := publishOn(t, n1, "orders", "evt-1", `"first"`); st != 200 || rep["seq"] != float64(1) {
		t.Fatalf("first: %d %v", st, rep)
	}
	if st, rep := publishOn(t, n2, "orders", "evt-1", `"again"`); st != 208 || rep["duplicate"] != true {
		t.Fatalf("same id through another node: %d %v, want 208", st, rep)
	}
	publishOn(t, n1, "orders", "evt-2", `"second"`)
	var got []string
	for len(got) < 2 {
		if m := c.read(); m.Op == "message" {
			got = append(got, fmt.Sprintf("%d:%s", m.Seq, m.Data))
		}
	}
	if strings.Join(got, " ") != `1:"first" 2:"second"` {
		t.Fatalf("delivered %v", got)
	}
}

// TestClusterRecoveryOnAnotherNode: a client leaves node 1, messages are published, it comes back
// on node 2 with since and gets exactly what it missed; with a stale epoch or a position older
// than history, recovered:false and no replay.
func TestClusterRecoveryOnAnotherNode(t *testing.T) {
	b := startNATS(t)
	n1, n2 := clusterNode(t, b, "n1", pubsub.Config{HistorySize: 5}), clusterNode(t, b, "n2", pubsub.Config{HistorySize: 5})
	for i := 1; i <= 3; i++ {
		publishOn(t, n1, "news", "", fmt.Sprint(i))
	}
	a := dialSub(t, n1)
	a.send(`{"op":"subscribe","channel":"news"}`)
	r := a.readRaw()
	epoch, _ := r["epoch"].(string)
	if r["seq"] != float64(3) || epoch == "" {
		t.Fatalf("subscribe on n1: %v", r)
	}
	a.c.Close()
	for i := 4; i <= 6; i++ {
		publishOn(t, n2, "news", "", fmt.Sprint(i))
	}
	c := dialSub(t, n2)
	// The consumer of n2 may still be applying its own publishes: ask until it is at 6.
	c.send(`{"op":"subscribe","channel":"news","since":{"seq":3,"epoch":"` + epoch + `"}}`)
	r = c.readRaw()
	if r["recovered"] != true || r["epoch"] != epoch {
		t.Fatalf("recovery on n2: %v", r)
	}
	top := uint64(r["seq"].(float64))
	for want := uint64(4); want <= top; want++ {
		if m := c.read(); m.Seq != want {
			t.Fatalf("replayed %+v, want seq %d", m, want)
		}
	}
	for want := top + 1; want <= 6; want++ { // live, if the consumer had not applied them yet
		if m := c.read(); m.Seq != want {
			t.Fatalf("live %+v, want seq %d", m, want)
		}
	}
	// n1's consumer applies n2's publishes in its own time; what follows needs it at 6 (else
	// history still holds 1-3, since 0 would be recoverable and 4-6 would arrive live).
	waitFor(t, "n1 to apply 4-6", func() bool {
		st, r := apiGet(t, n1, "/api/history?channel=news", "")
		return st == 200 && r["seq"] == float64(6)
	})
	for _, since := range []string{`{"seq":3,"epoch":"STALE"}`, `{"seq":0,"epoch":"` + epoch + `"}`} {
		d := dialSub(t, n1)
		d.send(`{"op":"subscribe","channel":"news","since":` + since + `}`)
		if r := d.readRaw(); r["recovered"] != false {
			t.Fatalf("since %s: %v, want recovered:false", since, r)
		}
		publishOn(t, n2, "news", "", "0")
		if m := d.read(); m.Op != "message" || m.Seq < 7 {
			t.Fatalf("since %s: %+v replayed, want only live messages", since, m)
		}
	}
}

// TestClusterSurvivesNodeAndBrokerLoss: a node that dies costs only its own connections; while
// NATS is down publishes answer 503 and /healthz says why; once NATS is back delivery resumes.
func TestClusterSurvivesNodeAndBrokerLoss(t *testing.T) {
	b := startNATS(t)
	n1, n2, n3 := clusterNode(t, b, "n1", pubsub.Config{}), clusterNode(t, b, "n2", pubsub.Config{}), clusterNode(t, b, "n3", pubsub.Config{})
	c1, c2 := dialSub(t, n1), dialSub(t, n2)
	c1.subscribe("feed")
	c2.subscribe("feed")
	publishOn(t, n3, "feed", "", "1")
	n3.Close() // its loops and its NATS connection go at once
	publishOn(t, n1, "feed", "", "2")
	for _, c := range []*sub{c1, c2} {
		var seqs []uint64
		for len(seqs) < 2 {
			if m := c.read(); m.Op == "message" {
				seqs = append(seqs, m.Seq)
			}
		}
		if fmt.Sprint(seqs) != "[1 2]" {
			t.Fatalf("after a node died: %v", seqs)
		}
	}

	b.stop()
	waitFor(t, "publishes refused while NATS is down", func() bool {
		st, rep := publishOn(t, n1, "feed", "", "3")
		return st == 503 && strings.Contains(fmt.Sprint(rep["error"]), "unavailable")
	})
	resp, err := http.Get("http://" + n1.AdminAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), "NATS") {
		t.Fatalf("/healthz while NATS is down: %d %q", resp.StatusCode, body)
	}

	b.start()
	var seq float64
	waitFor(t, "publishes accepted once NATS is back", func() bool {
		st, rep := publishOn(t, n2, "feed", "", "4")
		seq, _ = rep["seq"].(float64)
		return st == 200
	})
	// Both subscribers get it (and nothing published while NATS was down, which was refused).
	for _, c := range []*sub{c1, c2} {
		for {
			m := c.read()
			if m.Op == "message" && float64(m.Seq) == seq {
				break
			}
			if m.Op == "message" && (m.Seq < 3 || float64(m.Seq) > seq) {
				t.Fatalf("after NATS came back: %+v, want seq %v", m, seq)
			}
		}
	}
	if resp, err := http.Get("http://" + n1.AdminAddr() + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz after NATS came back: %v %v", resp, err)
	}
}

// TestClusterStartWithoutNATS: a node whose NATS cannot be reached gives up with a clear error.
func TestClusterStartWithoutNATS(t *testing.T) {
	b := startNATS(t)
	url := b.url()
	b.stop()
	app, err := pubsub.New(pubsub.Config{Cluster: &pubsub.ClusterConfig{URLs: url, NodeID: "lonely", ConnectTimeout: 500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Handler: app, Addr: "127.0.0.1:0", Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start()
	if err == nil {
		s.Close()
		t.Fatal("started without NATS")
	}
	if !strings.Contains(err.Error(), "NATS at "+url+" not reachable") {
		t.Fatalf("error %q does not say what is missing", err)
	}
}

// TestClusterNumberingRestart: when a channel's numbering starts again (here its messages are
// purged from the stream, as an operator resetting it would), subscribers on every node get a
// fresh subscribed frame with the new epoch and recovered:false before the first new message,
// and a client recovering with the old epoch is told to resync.
func TestClusterNumberingRestart(t *testing.T) {
	b := startNATS(t)
	n1, n2 := clusterNode(t, b, "n1", pubsub.Config{}), clusterNode(t, b, "n2", pubsub.Config{})
	publishOn(t, n1, "alerts", "", "1")
	publishOn(t, n1, "alerts", "", "2")
	c := dialSub(t, n2)
	c.send(`{"op":"subscribe","channel":"alerts"}`)
	r := c.readRaw()
	old, _ := r["epoch"].(string)
	if r["seq"] != float64(2) || old == "" {
		t.Fatalf("subscribe: %v", r)
	}
	nc, err := nats.Connect(b.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(ctxT(t), pubsub.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(ctxT(t), jetstream.WithPurgeSubject("wsgate.ch.alerts")); err != nil {
		t.Fatal(err)
	}
	if st, rep := publishOn(t, n1, "alerts", "", "3"); st != 200 || rep["seq"] != float64(1) {
		t.Fatalf("first publish after the purge: %d %v, want seq 1", st, rep)
	}
	r = c.readRaw()
	if r["op"] != "subscribed" || r["recovered"] != false || r["seq"] != float64(0) || r["epoch"] == old || r["epoch"] == "" {
		t.Fatalf("notice of the restart: %v (old epoch %s)", r, old)
	}
	if m := c.read(); m.Op != "message" || m.Seq != 1 || string(m.Data) != "3" {
		t.Fatalf("first message of the new numbering: %+v", m)
	}
	d := dialSub(t, n1)
	d.send(`{"op":"subscribe","channel":"alerts","since":{"seq":2,"epoch":"` + old + `"}}`)
	if r := d.readRaw(); r["recovered"] != false || r["seq"] != float64(1) {
		t.Fatalf("recovery with the old epoch: %v", r)
	}
}
