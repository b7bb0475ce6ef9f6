package wsgate

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/conn"
	"github.com/wsgate/wsgate/pubsub"
)

// getStats fetches /dashboard/stats with key ("" for none) and returns the status and the body.
func getStats(t testing.TB, s *Server, key string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+s.AdminAddr()+"/dashboard/stats", nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func dashboardStatsOf(t testing.TB, s *Server, key string) DashboardStats {
	t.Helper()
	code, b := getStats(t, s, key)
	if code != http.StatusOK {
		t.Fatalf("/dashboard/stats: %d %s", code, b)
	}
	var d DashboardStats
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("/dashboard/stats is not its JSON: %v\n%s", err, b)
	}
	return d
}

// scrapeHTTP reads GET /metrics from the admin listener: every sample by name with labels.
func scrapeHTTP(t testing.TB, s *Server) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + s.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// sumFamily adds every sample of a metric family (any labels) whose label text contains
// every one of match.
func sumFamily(m map[string]float64, name string, match ...string) float64 {
	var t float64
	for k, v := range m {
		base, labels, _ := strings.Cut(k, "{")
		if base != name {
			continue
		}
		ok := true
		for _, s := range match {
			ok = ok && strings.Contains(labels, s)
		}
		if ok {
			t += v
		}
	}
	return t
}

// TestDashboardPage: /dashboard is one self-contained page under a strict CSP: no external
// resource, only its nonce'd inline script and style, and fetch to its own origin only.
func TestDashboardPage(t *testing.T) {
	s := pubsubServer(t, Config{APIKey: "k"}, pubsub.Config{APIKey: "k"})
	resp, err := http.Get("http://" + s.AdminAddr() + "/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /dashboard: %d %q (no key needed for the page)", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	nonce := regexp.MustCompile(`'nonce-([^']+)'`).FindStringSubmatch(csp)
	if nonce == nil || !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self';") {
		t.Fatalf("CSP %q", csp)
	}
	page := string(body)
	if strings.Count(page, `nonce="`+nonce[1]+`"`) != 2 {
		t.Fatal("the page's script and style do not carry the response's nonce")
	}
	for _, ext := range []string{"http://", "https://", "//cdn", "<link rel=\"stylesheet\"", "<script src"} {
		if strings.Contains(page, ext) {
			t.Errorf("the page refers to an external resource: %q", ext)
		}
	}
	// A second load gets another nonce.
	resp2, err := http.Get("http://" + s.AdminAddr() + "/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.Header.Get("Content-Security-Policy") == csp {
		t.Error("two loads share a nonce")
	}
}

// TestDashboardStatsAuth: the data needs the API key when one is set, as /api/ does.
func TestDashboardStatsAuth(t *testing.T) {
	s := pubsubServer(t, Config{APIKey: "sesame"}, pubsub.Config{APIKey: "sesame"})
	for _, key := range []string{"", "wrong"} {
		code, b := getStats(t, s, key)
		var e map[string]string
		if code != http.StatusUnauthorized || json.Unmarshal(b, &e) != nil || !strings.Contains(e["error"], "API key") {
			t.Fatalf("key %q: %d %s, want 401 with a JSON error", key, code, b)
		}
	}
	dashboardStatsOf(t, s, "sesame")
	open := startServer(t, Config{Handler: Echo{}, AdminAddr: "127.0.0.1:0"})
	if d := dashboardStatsOf(t, open, ""); d.Mode != ModeEcho || d.App != nil {
		t.Fatalf("echo server's stats: mode %q, app %v", d.Mode, d.App)
	}
}

// TestDashboardStatsAtStart: before any traffic every figure the page shows is there, at zero.
func TestDashboardStatsAtStart(t *testing.T) {
	s := pubsubServer(t, Config{Loops: 2}, pubsub.Config{})
	code, b := getStats(t, s, "")
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	var raw map[string]any
	json.Unmarshal(b, &raw)
	for _, k := range []string{"time", "mode", "uptime_seconds", "connections", "counters", "handshake_rejects",
		"close_codes_sent", "close_codes_received", "queued_bytes", "timers_pending", "pass_bounds_seconds", "loops", "process", "app"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("stats lack %q", k)
		}
	}
	d := dashboardStatsOf(t, s, "")
	for _, k := range []string{"accepted", "handshakes", "messages_in", "messages_out", "bytes_in", "bytes_out",
		"slow_consumers", "rate_limited", "ping_timeouts", "socket_errors"} {
		if v, ok := d.Counters[k]; !ok || v != 0 {
			t.Errorf("counter %s = %v (present %v), want 0", k, v, ok)
		}
	}
	if len(d.Rejects) != len(conn.RejectNames) || d.CloseCodesSent["1008"] != 0 || len(d.Loops) != 2 ||
		d.Connections.ByTransport["websocket"] != 0 || d.App == nil || d.App.Counters["deliveries"] != 0 ||
		d.App.TopSubscribers == nil || d.App.TopPublishes == nil || d.App.Cluster != nil {
		t.Fatalf("stats at start: %+v", d)
	}
	if d.Process.MaxFDs == 0 || d.Process.OpenFDs == 0 {
		t.Errorf("process: %+v", d.Process)
	}
	for _, l := range d.Loops {
		if len(l.PassBuckets) != len(d.PassBounds)+1 {
			t.Errorf("loop %d: %d buckets for %d bounds", l.Loop, len(l.PassBuckets), len(d.PassBounds))
		}
	}
}

// TestDashboardStatsAndMetricsFollowTraffic: real gorilla clients and HTTP publishes; the stats
// endpoint and the new metrics show exactly that traffic: connections per loop and transport,
// messages in and out, deliveries, pongs, handshake rejects, close codes, a slow consumer and a
// rate-limited client, the queued bytes, the hottest channels and their publish rates, and the
// loops' passes, events and busy time.
func TestDashboardStatsAndMetricsFollowTraffic(t *testing.T) {
	const key = "k"
	s := pubsubServer(t, Config{Loops: 2, APIKey: key, Conn: ConnConfig{
		MaxQueue: 64 << 10, CloseTimeout: 200 * time.Millisecond, MaxMsgRate: 0.001, MsgBurst: 10,
	}}, pubsub.Config{APIKey: key})
	stats := func() DashboardStats { return dashboardStatsOf(t, s, key) }
	base := stats() // the first sample of the channels' publish rates

	var subs []*sub
	for i, ch := range []string{"hot", "hot", "hot", "cold", "cold"} {
		c := dialSub(t, s)
		if seq := c.subscribe(ch); seq != 0 {
			t.Fatalf("subscriber %d: seq %d", i, seq)
		}
		subs = append(subs, c)
	}
	waitFor(t, "5 open connections in the stats", func() bool { return stats().Connections.Open == 5 })
	for i := 0; i < 4; i++ {
		if code, out := apiPost(t, s, "/api/publish", key, "", `{"channel":"hot","data":{"n":`+strconv.Itoa(i)+`}}`); code != 200 {
			t.Fatalf("publish: %d %v", code, out)
		}
	}
	if code, out := apiPost(t, s, "/api/publish", key, "", `{"channel":"cold","data":1}`); code != 200 {
		t.Fatalf("publish: %d %v", code, out)
	}
	for i, c := range subs {
		n := 4
		if i >= 3 {
			n = 1
		}
		for k := 0; k < n; k++ {
			if m := c.read(); m.Op != "message" {
				t.Fatalf("subscriber %d got %+v", i, m)
			}
		}
	}
	// The publish rates: the first sample a second or more after the one before the publishes.
	var st DashboardStats
	waitFor(t, "publish rates", func() bool {
		st = stats()
		return len(st.App.TopPublishes) > 0
	})
	rates := map[string]float64{}
	for _, r := range st.App.TopPublishes {
		rates[r.Channel] = r.PublishRate
	}
	if len(rates) != 2 || rates["hot"] <= rates["cold"] || rates["cold"] <= 0 || st.App.TopPublishes[0].Channel != "hot" ||
		time.Duration(float64(time.Second)/rates["cold"]) < time.Second {
		t.Errorf("top channels by publishes/s %+v (since %v)", st.App.TopPublishes, time.Since(time.UnixMilli(base.Time)))
	}
	if math.Abs(rates["hot"]/rates["cold"]-4) > 1e-9 {
		t.Errorf("hot had 4 publishes for cold's 1, rates %v", rates)
	}

	// A ping answered with a pong (not a message), read by gorilla's pong handler.
	pong := make(chan struct{})
	subs[0].c.SetPongHandler(func(string) error { close(pong); return nil })
	if err := subs[0].c.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	go subs[0].c.ReadMessage() // runs the pong handler; ends when the test closes the connection
	select {
	case <-pong:
	case <-time.After(20 * time.Second):
		t.Fatal("no pong")
	}

	// A handshake with the wrong version: rejected, "version".
	raw := dialRaw(t, s)
	raw.write([]byte(strings.Replace(upgradeRequest("/"), "Version: 13", "Version: 12", 1)))
	if code, _ := raw.readHTTP(); code != 426 {
		t.Fatalf("version 12: HTTP %d", code)
	}
	// A client closes with 1000: received 1000, sent 1000 (the echo).
	bye := dialSub(t, s)
	bye.c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"))
	bye.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, _, err := bye.c.ReadMessage(); !websocket.IsCloseError(err, 1000) {
		t.Fatalf("closing client: %v", err)
	}
	// A client over the message rate: closed with 1008.
	flood := dialSub(t, s)
	for i := 0; i < 12; i++ {
		flood.c.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","channel":"f`+strconv.Itoa(i)+`"}`))
	}
	// A subscriber that does not read: closed as a slow consumer once its queue passes 64 KiB.
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
	slow.send(ws.OpText, true, []byte(`{"op":"subscribe","channel":"slow"}`))
	if f := slow.readFrame(); !bytes.Contains(f.Payload, []byte("subscribed")) {
		t.Fatalf("slow subscribe: %q", f.Payload)
	}
	big := `{"channel":"slow","data":"` + strings.Repeat("x", 32<<10) + `"}`
	slowPublishes := 0
	for stats().Counters["slow_consumers"] == 0 {
		if slowPublishes++; slowPublishes > 2000 {
			t.Fatal("2000 publishes of 32 KiB did not make a slow consumer")
		}
		if code, out := apiPost(t, s, "/api/publish", key, "", big); code != 200 {
			t.Fatalf("publish: %d %v", code, out)
		}
	}
	waitFor(t, "the rate-limited and slow clients closed, the queue drained", func() bool {
		st := stats()
		return st.Counters["rate_limited"] == 1 && st.Connections.Open == 5 && st.Connections.Held == 5 && st.QueuedBytes == 0
	})

	st = stats()
	// Messages out: 5 subscribe replies, 14 deliveries, the slow client's reply and its
	// deliveries up to the close, the closing client's nothing, the flooder's replies before
	// its close.
	c := st.Counters
	if c["handshakes"] != 8 || c["accepted"] != 9 || c["slow_consumers"] != 1 || c["rate_limited"] != 1 {
		t.Errorf("counters %v: want 8 handshakes, 9 accepted, 1 slow consumer, 1 rate limited", c)
	}
	if st.Rejects["version"] != 1 || st.CloseCodesRecvd["1000"] != 1 || st.CloseCodesSent["1000"] != 1 || st.CloseCodesSent["1008"] != 2 {
		t.Errorf("rejects %v, close codes sent %v received %v", st.Rejects, st.CloseCodesSent, st.CloseCodesRecvd)
	}
	app := st.App.Counters
	if app["publishes"] != int64(5+slowPublishes) || app["channels"] < 3 {
		t.Errorf("app counters %v, want %d publishes", app, 5+slowPublishes)
	}
	// Every delivery is a message out, and so is every reply; nothing else is.
	replies := c["messages_out"] - uint64(app["deliveries"])
	if replies < 6 || replies > 6+12 || c["messages_in"] < 6 {
		t.Errorf("messages out %d with %d deliveries; messages in %d", c["messages_out"], app["deliveries"], c["messages_in"])
	}
	if c["bytes_in"] == 0 || c["bytes_out"] < uint64(32<<10) {
		t.Errorf("bytes in %d out %d", c["bytes_in"], c["bytes_out"])
	}
	top := st.App.TopSubscribers
	if len(top) < 2 || top[0].Channel != "hot" || top[0].Subscribers != 3 || top[1].Channel != "cold" || top[1].Subscribers != 2 {
		t.Errorf("top channels by subscribers %+v", top)
	}
	// The kernel spreads connections over the loops by hash: a loop may have none (and, with no
	// timer either, sleep through the test). A loop that holds connections did work.
	var perLoop int64
	var events uint64
	for _, l := range st.Loops {
		perLoop += l.Connections
		events += l.Events
		if l.Connections > 0 && (l.Passes == 0 || l.Events == 0 || l.BusySeconds <= 0 || l.PassBuckets[len(l.PassBuckets)-1] == 0) {
			t.Errorf("loop %d holds connections but did nothing: %+v", l.Loop, l)
		}
	}
	if events == 0 {
		t.Error("no loop handled an event")
	}
	if perLoop != 5 || st.Connections.ByTransport["websocket"] != 5 {
		t.Errorf("connections per loop add up to %d, by transport %v; want 5", perLoop, st.Connections.ByTransport)
	}

	// The same traffic in /metrics.
	m := scrapeHTTP(t, s)
	want := map[string]float64{
		"wsgate_slow_consumers_total":                      1,
		"wsgate_rate_limited_total":                        1,
		"wsgate_queued_bytes":                              0,
		"wsgate_pongs_sent_total":                          1,
		`wsgate_handshake_rejects_total{reason="version"}`: 1,
		`wsgate_close_codes_received_total{code="1000"}`:   1,
		"wsgate_cluster_enabled":                           0,
		"wsgate_nats_connected":                            0,
	}
	for name, v := range want {
		if got, ok := m[name]; !ok || got != v {
			t.Errorf("%s = %v (exported %v), want %v", name, got, ok, v)
		}
	}
	if got := sumFamily(m, "wsgate_loop_connections", `transport="websocket"`); got != 5 {
		t.Errorf("wsgate_loop_connections sums to %v, want 5", got)
	}
	if m["wsgate_messages_out_total"] < float64(c["messages_out"]) || m["wsgate_deliveries_total"] < float64(app["deliveries"]) {
		t.Errorf("messages out %v, deliveries %v: fewer than the stats before", m["wsgate_messages_out_total"], m["wsgate_deliveries_total"])
	}
	for _, fam := range []string{"wsgate_loop_passes_total", "wsgate_loop_events_total", "wsgate_loop_tasks_total",
		"wsgate_loop_busy_seconds_total", "wsgate_loop_pass_seconds_count", "wsgate_loop_pass_seconds_sum"} {
		if got := sumFamily(m, fam); got <= 0 {
			t.Errorf("%s sums to %v after traffic", fam, got)
		}
	}
	if inf, count := sumFamily(m, "wsgate_loop_pass_seconds_bucket", `le="+Inf"`), sumFamily(m, "wsgate_loop_pass_seconds_count"); inf != count {
		t.Errorf("pass histogram: +Inf bucket %v, count %v", inf, count)
	}
	if m["process_open_fds"] <= 0 || m["process_max_fds"] <= 0 {
		t.Errorf("process_open_fds %v, process_max_fds %v", m["process_open_fds"], m["process_max_fds"])
	}
}

// metricRef matches the metric names in PromQL expressions: wsgate_, process_ and go_ series.
var metricRef = regexp.MustCompile(`\b((?:wsgate|process|go)_[a-zA-Z0-9_]+)`)

// TestGrafanaAndRulesQueryExportedMetrics: docs/grafana/wsgate.json parses as a Grafana
// dashboard, and every metric it and docs/prometheus/wsgate-rules.yml query exists in a fresh
// single node's /metrics (cluster metrics included, at zero).
func TestGrafanaAndRulesQueryExportedMetrics(t *testing.T) {
	s := pubsubServer(t, Config{Loops: 2}, pubsub.Config{})
	m := scrapeHTTP(t, s)
	families := map[string]bool{}
	for k := range m {
		base, _, _ := strings.Cut(k, "{")
		families[base] = true
	}
	check := func(file string, exprs []string) {
		t.Helper()
		if len(exprs) == 0 {
			t.Fatalf("%s: no expressions found", file)
		}
		seen := map[string]bool{}
		for _, e := range exprs {
			for _, name := range metricRef.FindAllString(e, -1) {
				seen[name] = true
			}
		}
		names := make([]string, 0, len(seen))
		for n := range seen {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if !families[n] {
				t.Errorf("%s queries %s, which /metrics does not export", file, n)
			}
		}
		t.Logf("%s: %d expressions, %d metrics, all exported", file, len(exprs), len(names))
	}

	b, err := os.ReadFile("docs/grafana/wsgate.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("docs/grafana/wsgate.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("docs/grafana/wsgate.json: title %q uid %q, %d panels", dash.Title, dash.UID, len(dash.Panels))
	}
	var exprs []string
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(string); ok {
			exprs = append(exprs, q)
		}
	}
	check("docs/grafana/wsgate.json", exprs)

	rules, err := os.ReadFile("docs/prometheus/wsgate-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	exprs = exprs[:0]
	lines := strings.Split(string(rules), "\n")
	for i, line := range lines {
		e, ok := strings.CutPrefix(strings.TrimSpace(line), "expr:")
		if !ok {
			continue
		}
		if e = strings.TrimSpace(e); strings.HasPrefix(e, "|") || strings.HasPrefix(e, ">") {
			// A block scalar: the lines indented deeper than "expr:".
			indent := len(line) - len(strings.TrimLeft(line, " "))
			e = ""
			for _, l := range lines[i+1:] {
				if strings.TrimSpace(l) != "" && len(l)-len(strings.TrimLeft(l, " ")) <= indent {
					break
				}
				e += l + "\n"
			}
		}
		exprs = append(exprs, e)
	}
	check("docs/prometheus/wsgate-rules.yml", exprs)
}

// TestAlertsHaveRunbooks: every alert of docs/prometheus/wsgate-rules.yml names its section of
// docs/operations.md, and that section exists.
func TestAlertsHaveRunbooks(t *testing.T) {
	rules, err := os.ReadFile("docs/prometheus/wsgate-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	ops, err := os.ReadFile("docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	alerts := regexp.MustCompile(`(?m)^\s*- alert: (\w+)$`).FindAllStringSubmatch(string(rules), -1)
	runbooks := regexp.MustCompile(`(?m)^\s*runbook: "docs/operations\.md#([\w-]+)"$`).FindAllStringSubmatch(string(rules), -1)
	if len(alerts) == 0 || len(alerts) != len(runbooks) {
		t.Fatalf("%d alerts, %d runbook annotations", len(alerts), len(runbooks))
	}
	for i, a := range alerts {
		name := a[1]
		if runbooks[i][1] != strings.ToLower(name) {
			t.Errorf("alert %s: runbook anchor #%s, want #%s", name, runbooks[i][1], strings.ToLower(name))
		}
		if !bytes.Contains(ops, []byte("\n### "+name+"\n")) {
			t.Errorf("alert %s: docs/operations.md has no section \"### %s\"", name, name)
		}
	}
}

// TestDashboardClusterState: a cluster node's stats and metrics show NATS connected, then
// disconnected when the broker goes away.
func TestDashboardClusterState(t *testing.T) {
	b := startNATS(t)
	s := clusterNode(t, b, "dash-node", pubsub.Config{})
	d := dashboardStatsOf(t, s, "")
	if c := d.App.Cluster; c == nil || c.NodeID != "dash-node" || !c.Connected || c.Status != "ok" {
		t.Fatalf("cluster state %+v", d.App.Cluster)
	}
	m := scrapeHTTP(t, s)
	if m["wsgate_cluster_enabled"] != 1 || m["wsgate_nats_connected"] != 1 || m[`wsgate_node_info{node_id="dash-node"}`] != 1 {
		t.Fatalf("cluster metrics: enabled %v connected %v", m["wsgate_cluster_enabled"], m["wsgate_nats_connected"])
	}
	b.stop()
	waitFor(t, "NATS disconnected in the stats", func() bool {
		c := dashboardStatsOf(t, s, "").App.Cluster
		return !c.Connected && c.Status != "ok" && c.Disconnects >= 1
	})
	if m := scrapeHTTP(t, s); m["wsgate_nats_connected"] != 0 || m["wsgate_nats_disconnects_total"] < 1 {
		t.Fatalf("after the broker stopped: connected %v, disconnects %v", m["wsgate_nats_connected"], m["wsgate_nats_disconnects_total"])
	}
}
