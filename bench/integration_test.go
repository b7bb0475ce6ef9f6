package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary double as a worker process for the
// multi-process tests, the way wsbench re-executes itself with -worker.
func TestMain(m *testing.M) {
	if os.Getenv("WSBENCH_TEST_WORKER") == "1" {
		if err := WorkerMain(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}

func testConfig(url, scenario string) Config {
	cfg := DefaultConfig(scenario)
	cfg.URL = url
	cfg.Label = "test"
	cfg.Procs = "1"
	cfg.Loops = 2
	cfg.DialRate = 0
	cfg.Conns = 100
	cfg.Drain = 30 * time.Second
	return cfg
}

func runConfig(t *testing.T, cfg Config) *Result {
	t.Helper()
	r := &Runner{Config: cfg, Log: logWriter{t}, PlainEvery: time.Second, WorkerCommand: testWorkerCommand}
	res, err := r.Run(t.Context())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Log(res.SummaryLine())
	return res
}

func testWorkerCommand() *exec.Cmd {
	c := exec.Command(os.Args[0], "-test.run=^$")
	c.Env = append(os.Environ(), "WSBENCH_TEST_WORKER=1")
	return c
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestConnectScenarioCountsAddUp(t *testing.T) {
	s := newTestServer(t)
	cfg := testConfig(s.wsURL("/"), ScenarioConnect)
	cfg.Conns = 300
	cfg.DialRate = 5000
	cfg.Hold = 100 * time.Millisecond
	res := runConfig(t, cfg)
	eq(t, "attempts", res.Attempts, 300)
	eq(t, "opened", res.Opened, 300)
	eq(t, "failed", res.Failed, 0)
	eq(t, "open at end", res.OpenAtEnd, 300)
	eq(t, "all open", res.AllOpen, true)
	eq(t, "handshake samples", res.Handshake.Count(), 300)
	eq(t, "server accepted", s.total.Load(), 300)
	if res.TimeToAllOpenS <= 0 || res.ConnectRate <= 0 {
		t.Errorf("time to all open %v, rate %v: want both positive", res.TimeToAllOpenS, res.ConnectRate)
	}
	if len(res.Failures) != 0 || len(res.Drops) != 0 {
		t.Errorf("failures %v drops %v, want none", res.Failures, res.Drops)
	}
	if p := Problems(res); len(p) != 0 {
		t.Errorf("problems: %v", p)
	}
}

// TestEngineAnswersPings holds connections open while the server pings them
// and waits until the server has seen at least two pongs per connection.
func TestEngineAnswersPings(t *testing.T) {
	s := newTestServer(t, func(s *testServer) { s.pingEvery = 10 * time.Millisecond })
	cfg := testConfig(s.wsURL("/"), ScenarioConnect)
	cfg.Conns = 50
	tg, err := resolveTarget(t.Context(), cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	sc := newScenario(&cfg, cfg.Conns, 2, cfg.Conns)
	e, err := NewEngine(EngineConfig{Addr: tg.addr, Port: tg.port, Host: tg.host, Path: tg.path, Loops: 2, Slots: cfg.Conns}, sc)
	if err != nil {
		t.Fatal(err)
	}
	e.Start()
	defer e.Stop()
	sc.setup(e)
	waitFor(t, "all open", func() bool { return e.Stats().Open == 50 })
	waitFor(t, "pongs", func() bool { return s.pongs.Load() >= 100 })
	if got := e.Stats().PingsIn; got < 100 {
		t.Errorf("pings answered = %d, want >= 100", got)
	}
	eq(t, "failed", e.Stats().Failed, 0)
}

func TestEchoClosedLoopCountsAddUp(t *testing.T) {
	s := newTestServer(t)
	cfg := testConfig(s.wsURL("/echo"), ScenarioEcho)
	cfg.Conns = 200
	cfg.Size = 100
	cfg.Duration = 300 * time.Millisecond
	res := runConfig(t, cfg)
	e := res.Echo
	if e.Sent == 0 {
		t.Fatal("nothing sent")
	}
	eq(t, "received", e.Received, e.Sent)
	eq(t, "lost", e.Lost, 0)
	eq(t, "mismatched", e.Mismatched, 0)
	eq(t, "unexpected", e.Unexpected, 0)
	eq(t, "latency samples", res.Latency.Count(), e.Received)
	eq(t, "server echoed", s.echoed.Load(), e.Sent)
	eq(t, "ops", res.Ops, e.Received)
	if res.Throughput <= 0 || res.LatencyUs.P50 <= 0 || res.LatencyUs.Max < res.LatencyUs.P99 {
		t.Errorf("throughput %v, latency %+v", res.Throughput, res.LatencyUs)
	}
	if res.DriverCPUSeconds <= 0 || res.DriverCPUMicrosPerOp <= 0 {
		t.Errorf("driver CPU %v s, %v µs/op: want both positive", res.DriverCPUSeconds, res.DriverCPUMicrosPerOp)
	}
}

// TestLiveProgressRedrawsOneLine: on a terminal the progress line is
// redrawn in place and ended before anything else is printed.
func TestLiveProgressRedrawsOneLine(t *testing.T) {
	s := newTestServer(t)
	cfg := testConfig(s.wsURL("/echo"), ScenarioEcho)
	cfg.Conns = 20
	cfg.Duration = 600 * time.Millisecond
	var out strings.Builder
	r := &Runner{Config: cfg, Log: &out, Live: true}
	if _, err := r.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	log := out.String()
	if !strings.HasPrefix(log, "\r\x1b[K[echo ") || !strings.HasSuffix(log, "\n") {
		t.Fatalf("live output %q", log)
	}
	if n := strings.Count(log, "\n"); n != 1 {
		t.Errorf("live output has %d newlines, want 1 (the line is redrawn): %q", n, log)
	}
	for _, want := range []string{"open 20/20", "errors 0", "elapsed"} {
		if !strings.Contains(log, want) {
			t.Errorf("progress %q lacks %q", log, want)
		}
	}
}

// TestPlainProgressLines: off a terminal, progress is plain lines.
func TestPlainProgressLines(t *testing.T) {
	s := newTestServer(t)
	cfg := testConfig(s.wsURL("/echo"), ScenarioEcho)
	cfg.Conns = 20
	cfg.Duration = 600 * time.Millisecond
	var out strings.Builder
	r := &Runner{Config: cfg, Log: &out, PlainEvery: 250 * time.Millisecond}
	if _, err := r.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if strings.ContainsAny(out.String(), "\r\x1b") {
		t.Fatalf("plain output %q", out.String())
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "[echo ") || !strings.Contains(l, "open ") {
			t.Errorf("line %q", l)
		}
	}
	// The last line is the final state, printed after the workers ended.
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "[echo done] open 20/20") {
		t.Errorf("last line %q", last)
	}
}

func TestEchoPacedCountsAddUp(t *testing.T) {
	s := newTestServer(t)
	cfg := testConfig(s.wsURL("/echo"), ScenarioEcho)
	cfg.Conns = 50
	cfg.MsgRate = 2000
	cfg.Size = 1
	cfg.Duration = 400 * time.Millisecond
	res := runConfig(t, cfg)
	e := res.Echo
	if e.Sent == 0 {
		t.Fatal("nothing sent")
	}
	eq(t, "received", e.Received, e.Sent)
	eq(t, "lost", e.Lost, 0)
	eq(t, "mismatched", e.Mismatched, 0)
	eq(t, "server echoed", s.echoed.Load(), e.Sent)
	// Pacing never runs ahead of the schedule: at most rate*elapsed
	// messages, plus one tick's worth per loop. The workers pace from
	// their own start and hear the stop a little after the measured window
	// closes: on a busy machine (make stress-test) that is some
	// milliseconds, so the window gets 50 ms of slack. A pacer that ran
	// free would still be far over it.
	if limit := int64(cfg.MsgRate*(res.MeasuredS+0.05)) + 2*int64(cfg.Loops) + 2; e.Sent > limit {
		t.Errorf("sent %d messages in %.3fs at %v/s: over the pace (limit %d)", e.Sent, res.MeasuredS, cfg.MsgRate, limit)
	}
}

func checkPubSub(t *testing.T, res *Result, subsPerChannel int64) {
	t.Helper()
	p := res.PubSub
	if p.Published == 0 {
		t.Fatal("nothing published")
	}
	eq(t, "subscribed", p.Subscribed, int64(res.Conns))
	eq(t, "acked", p.PublishAcked, p.Published)
	eq(t, "publish errors", p.PublishErrors, 0)
	eq(t, "expected", p.Expected, p.Published*subsPerChannel)
	eq(t, "delivered", p.Delivered, p.Expected)
	eq(t, "lost", p.Lost, 0)
	eq(t, "duplicated", p.Duplicated, 0)
	eq(t, "unexpected", p.Unexpected, 0)
	eq(t, "latency samples", res.Latency.Count(), p.Delivered)
	var finals int64
	for _, f := range p.Final {
		finals += f
	}
	eq(t, "sum of final seqs", finals, p.Published)
	if pr := Problems(res); len(pr) != 0 {
		t.Errorf("problems: %v", pr)
	}
}

func TestPubSubWebSocketPublishCountsAddUp(t *testing.T) {
	s := newTestServer(t)
	cfg := testConfig(s.wsURL("/ws"), ScenarioPubSub)
	cfg.Conns = 200
	cfg.Channels = 5
	cfg.PublishRate = 500
	cfg.Duration = 400 * time.Millisecond
	res := runConfig(t, cfg)
	checkPubSub(t, res, 40)
}

// TestPubSubEpochNoticeIsNotUnexpected: a second subscribed frame at the
// subscriber's own position (a cluster channel's first epoch) is protocol,
// not an anomaly: the counts add up with nothing unexpected.
func TestPubSubEpochNoticeIsNotUnexpected(t *testing.T) {
	s := newTestServer(t, func(s *testServer) { s.epochNotice = true })
	cfg := testConfig(s.wsURL("/ws"), ScenarioPubSub)
	cfg.Conns = 60
	cfg.Channels = 3
	cfg.PublishRate = 200
	cfg.Duration = 300 * time.Millisecond
	res := runConfig(t, cfg)
	checkPubSub(t, res, 20)
	eq(t, "unexpected messages", res.PubSub.Unexpected, 0)
}

func TestPubSubHTTPPublishCountsAddUp(t *testing.T) {
	s := newTestServer(t, func(s *testServer) { s.apiKey = "sekret" })
	cfg := testConfig(s.wsURL("/ws"), ScenarioPubSub)
	cfg.Conns = 120
	cfg.Channels = 3
	cfg.PublishRate = 300
	cfg.Duration = 400 * time.Millisecond
	cfg.PublishURL = s.httpURL("/api/publish")
	cfg.APIKey = "sekret"
	res := runConfig(t, cfg)
	checkPubSub(t, res, 40)
	eq(t, "server-reported deliveries", res.PubSub.ServerDelivered, res.PubSub.Delivered)
	// Every answered publish is timed: the call latency covers them all.
	c := res.PubSub.PublishCallUs
	if c == nil {
		t.Fatal("no publish call latency for HTTP publishes")
	}
	eq(t, "timed publishes", c.Count, res.PubSub.PublishAcked)
	if !(c.P50 > 0 && c.P99 >= c.P50 && c.Max >= c.P99) {
		t.Errorf("publish call latency %+v", *c)
	}
	if line := res.SummaryLine(); !strings.Contains(line, "publish_call_p50_us=") {
		t.Errorf("summary %q lacks the publish call latency", line)
	}
}

func TestPubSubHTTPPublishWrongKeyCountsErrors(t *testing.T) {
	s := newTestServer(t, func(s *testServer) { s.apiKey = "sekret" })
	cfg := testConfig(s.wsURL("/ws"), ScenarioPubSub)
	cfg.Conns = 10
	cfg.Channels = 2
	cfg.PublishRate = 200
	cfg.Duration = 200 * time.Millisecond
	cfg.PublishURL = s.httpURL("/api/publish")
	cfg.APIKey = "wrong"
	res := runConfig(t, cfg)
	p := res.PubSub
	if p.Published == 0 {
		t.Fatal("nothing published")
	}
	eq(t, "publish errors", p.PublishErrors, p.Published)
	eq(t, "delivered", p.Delivered, 0)
	eq(t, "expected", p.Expected, 0)
	// The cause is the HTTP status and body, and it makes the run unusable.
	eq(t, "HTTP 401 errors", p.PublishErrorReasons["HTTP 401: unauthorized"], p.Published)
	eq(t, "distinct causes", len(p.PublishErrorReasons), 1)
	why := strings.Join(Unusable(res), "; ")
	if !strings.Contains(why, "no publish was accepted") || !strings.Contains(why, "HTTP 401: unauthorized: ") {
		t.Errorf("Unusable = %q, want the refused publishes and their cause", why)
	}
	if line := res.SummaryLine(); !strings.Contains(line, `publish_error_reasons="HTTP 401: unauthorized: `) {
		t.Errorf("summary %q lacks the publish errors' cause", line)
	}
}

// TestPubSubWebSocketPublishRefusedNamesTheCause: a server that does not let
// clients publish answers every publish with an error message and, after a
// few, closes the publisher's connection. The result counts both causes,
// and the run is unusable because no publish was accepted.
func TestPubSubWebSocketPublishRefusedNamesTheCause(t *testing.T) {
	s := newTestServer(t, func(s *testServer) { s.noClientPublish = true })
	cfg := testConfig(s.wsURL("/ws"), ScenarioPubSub)
	cfg.Conns = 10
	cfg.Channels = 2
	cfg.PublishRate = 200
	cfg.Duration = 300 * time.Millisecond
	res := runConfig(t, cfg)
	p := res.PubSub
	eq(t, "acked", p.PublishAcked, 0)
	// Three errors precede the close frame in the stream; a publish sent
	// before the close arrived is answered after it, so never seen, and
	// counted as unanswered when the connection closed.
	eq(t, "403 errors", p.PublishErrorReasons["error 403: publishing from clients is disabled"], 3)
	eq(t, "publish errors", p.PublishErrors, p.Published)
	eq(t, "unanswered", p.PublishErrorReasons["unanswered when the connection closed"], p.Published-3)
	const closed = "server close 1008 (policy violation) 'too many errors'"
	eq(t, "publisher closed", p.PublisherClosed, closed)
	why := strings.Join(Unusable(res), "; ")
	for _, want := range []string{"no publish was accepted (", "error 403: publishing from clients is disabled: 3",
		"; the publisher's connection was closed: " + closed} {
		if !strings.Contains(why, want) {
			t.Errorf("Unusable = %q, lacks %q", why, want)
		}
	}
	if pr := strings.Join(Problems(res), "; "); !strings.Contains(pr, "publish errors (error 403: publishing from clients is disabled: 3") ||
		!strings.Contains(pr, "the publisher's connection was closed: "+closed) {
		t.Errorf("Problems %q lack the publish errors' causes", pr)
	}
}

// TestWSPublisherCountsUnansweredPublishesOnClose: publishes in flight when
// the publisher's connection closes will never be answered; they are
// errors, and the close is named.
func TestWSPublisherCountsUnansweredPublishesOnClose(t *testing.T) {
	cfg := DefaultConfig(ScenarioPubSub)
	p := newWSPublisher(&cfg, "run")
	p.sent.Store(10)
	p.acked.Store(4)
	p.errs.Store(1)
	p.OnClose(nil, CloseEvent{Opened: true, Reason: ReasonEOF})
	eq(t, "errors", p.errs.Load(), 6)
	eq(t, "unanswered", p.reasons["unanswered when the connection closed"], 5)
	eq(t, "closed", p.closed, "server closed TCP without a close frame")
	eq(t, "down", p.down.Load(), true)
}

// TestDropsNameTheCloseCodeAndReason: subscribers the server closes with a
// close frame are counted by code and reason, those it resets as
// "connection reset"; neither run can do its job.
func TestDropsNameTheCloseCodeAndReason(t *testing.T) {
	for _, tc := range []struct {
		how, key, words string
	}{
		{"close", "server_close_1008 bye from the test", "server close 1008 (policy violation) 'bye from the test': 12"},
		{"reset", ReasonReset, "connection reset: 12"},
	} {
		t.Run(tc.how, func(t *testing.T) {
			s := newTestServer(t, func(s *testServer) { s.onSubscribe = tc.how })
			cfg := testConfig(s.wsURL("/ws"), ScenarioPubSub)
			cfg.Conns = 12
			cfg.Channels = 2
			cfg.PublishRate = 100
			cfg.Duration = 100 * time.Millisecond
			res := runConfig(t, cfg)
			eq(t, "opened", res.Opened, 12)
			eq(t, tc.key, res.Drops[tc.key], 12)
			eq(t, "distinct drop reasons", len(res.Drops), 1)
			eq(t, "client closes", res.ClientCloses, 0)
			if line := res.SummaryLine(); !strings.Contains(line, `drops="`+tc.words+`"`) {
				t.Errorf("summary %q lacks drops=%q", line, tc.words)
			}
			if why := strings.Join(Unusable(res), "; "); !strings.Contains(why, "no subscription was acknowledged: "+tc.words) {
				t.Errorf("Unusable = %q", why)
			}
		})
	}
}

func TestChurnReconnects(t *testing.T) {
	s := newTestServer(t)
	cfg := testConfig(s.wsURL("/"), ScenarioChurn)
	cfg.Conns = 40
	cfg.Hold = 20 * time.Millisecond
	cfg.Backoff = Backoff{Base: 10 * time.Millisecond, Max: 50 * time.Millisecond, Jitter: 5 * time.Millisecond}
	cfg.Duration = 500 * time.Millisecond
	res := runConfig(t, cfg)
	c := res.Churn
	if c.Reconnects == 0 {
		t.Fatal("no reconnects")
	}
	eq(t, "failed", res.Failed, 0)
	eq(t, "connects", c.Connects, res.Opened)
	eq(t, "first connects", c.Connects-c.Reconnects, 40)
	eq(t, "server accepted", s.total.Load(), res.Opened)
	eq(t, "disconnects", res.Disconnects, res.Opened-res.OpenAtEnd)
	eq(t, "handshake samples", res.Handshake.Count(), res.Opened)
	// Every disconnect was the driver's own close frame, answered: none
	// is a drop.
	eq(t, "client closes", res.ClientCloses, res.Disconnects)
	if len(res.Drops) != 0 {
		t.Errorf("drops %v, want none", res.Drops)
	}
	if p := Problems(res); len(p) != 0 {
		t.Errorf("problems: %v", p)
	}
}

func TestMultiProcessEchoAggregates(t *testing.T) {
	s := newTestServer(t)
	cfg := testConfig(s.wsURL("/echo"), ScenarioEcho)
	cfg.Conns = 150
	cfg.Procs = "3"
	cfg.Loops = 1
	cfg.Duration = 300 * time.Millisecond
	res := runConfig(t, cfg)
	eq(t, "procs", res.Procs, 3)
	eq(t, "opened", res.Opened, 150)
	eq(t, "handshake samples", res.Handshake.Count(), 150)
	e := res.Echo
	if e.Sent == 0 {
		t.Fatal("nothing sent")
	}
	eq(t, "received", e.Received, e.Sent)
	eq(t, "lost", e.Lost, 0)
	eq(t, "latency samples", res.Latency.Count(), e.Received)
	eq(t, "server echoed", s.echoed.Load(), e.Sent)
	eq(t, "server accepted", s.total.Load(), 150)
}

func TestMultiProcessPubSubAggregates(t *testing.T) {
	s := newTestServer(t)
	cfg := testConfig(s.wsURL("/ws"), ScenarioPubSub)
	cfg.Conns = 90
	cfg.Procs = "2"
	cfg.Loops = 1
	cfg.Channels = 3
	cfg.PublishRate = 300
	cfg.Duration = 300 * time.Millisecond
	res := runConfig(t, cfg)
	checkPubSub(t, res, 30)
}

func TestSourceAddressesAreSpread(t *testing.T) {
	s := newTestServer(t)
	cfg := testConfig(s.wsURL("/"), ScenarioConnect)
	cfg.Conns = 40
	cfg.Hold = 0
	cfg.Src = "127.0.0.2-127.0.0.5"
	res := runConfig(t, cfg)
	eq(t, "opened", res.Opened, 40)
	ips := s.sourceIPs()
	slices.Sort(ips)
	want := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}
	if !slices.Equal(ips, want) {
		t.Fatalf("server saw sources %v, want %v", ips, want)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ip := range want {
		eq(t, "connections from "+ip, s.sources[ip], 10)
	}
}

func TestRefusedConnectionsAreCountedByReason(t *testing.T) {
	cfg := testConfig("ws://"+closedAddr(t)+"/", ScenarioConnect)
	cfg.Conns = 20
	cfg.Hold = 0
	res := runConfig(t, cfg)
	eq(t, "failed", res.Failed, 20)
	eq(t, "refused", res.Failures[ReasonRefused], 20)
	eq(t, "opened", res.Opened, 0)
	if len(Problems(res)) == 0 {
		t.Error("Problems reported nothing for a run where every connection failed")
	}
	if why := Unusable(res); !slices.Equal(why, []string{"no connection opened: connection refused: 20"}) {
		t.Errorf("Unusable = %q", why)
	}
}

func TestRejectedHandshakesAreCountedByStatus(t *testing.T) {
	s := newTestServer(t, func(s *testServer) { s.reject = 403 })
	cfg := testConfig(s.wsURL("/"), ScenarioConnect)
	cfg.Conns = 20
	cfg.Hold = 0
	res := runConfig(t, cfg)
	eq(t, "failed", res.Failed, 20)
	eq(t, "http_403", res.Failures["http_403"], 20)
}

func TestSilentServerHitsHandshakeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // accept, never answer
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	})
	cfg := testConfig("ws://"+ln.Addr().String()+"/", ScenarioConnect)
	cfg.Conns = 10
	cfg.Hold = 0
	cfg.Timeout = 100 * time.Millisecond
	res := runConfig(t, cfg)
	eq(t, "handshake timeouts", res.Failures[ReasonHandshakeTime], 10)
}

// TestMultiProcessConnectKeepsTheTotalRate: -rate is the rate of the whole
// run, so workers split it. Pacing can only make a run slower than its
// schedule, never faster: the last connection is dialled no earlier than
// (conns-procs)/rate after the first.
func TestMultiProcessConnectKeepsTheTotalRate(t *testing.T) {
	s := newTestServer(t)
	cfg := testConfig(s.wsURL("/"), ScenarioConnect)
	cfg.Conns = 400
	cfg.Procs = "2"
	cfg.Loops = 1
	cfg.DialRate = 2000
	cfg.Hold = 0
	res := runConfig(t, cfg)
	eq(t, "opened", res.Opened, 400)
	if floor := float64(cfg.Conns-2) / cfg.DialRate; res.TimeToAllOpenS < floor {
		t.Errorf("all open after %.3fs at %v/s: faster than the schedule allows (%.3fs)", res.TimeToAllOpenS, cfg.DialRate, floor)
	}
}

// rateRE matches a progress line's count and rate: "msgs 123 (456/s)".
var rateRE = regexp.MustCompile(`(opened|msgs|delivered|reconnects) (\d+) \((\d+)/s\)`)

// TestLastProgressLineShowsTheSummarysThroughput: the last progress line and
// the summary compute their rate the same way, over the same measured
// phase, so the line shows the summary's operations and throughput.
func TestLastProgressLineShowsTheSummarysThroughput(t *testing.T) {
	s := newTestServer(t)
	for _, sc := range Scenarios {
		if sc == ScenarioSSE {
			// The test server speaks WebSocket only; the sse scenario's lines are pubsub's,
			// and cmd/wsbench's TestAgainstWsgatePubSubMode runs it against wsgate.
			continue
		}
		t.Run(sc, func(t *testing.T) {
			path := "/echo"
			if sc == ScenarioPubSub {
				path = "/ws"
			}
			cfg := testConfig(s.wsURL(path), sc)
			cfg.Conns = 40
			cfg.Duration = 400 * time.Millisecond
			cfg.Hold = 100 * time.Millisecond
			if sc == ScenarioChurn {
				cfg.Hold = 20 * time.Millisecond
				cfg.Backoff = Backoff{Base: 10 * time.Millisecond, Max: 50 * time.Millisecond}
			}
			cfg.Channels = 2
			cfg.PublishRate = 200
			var out strings.Builder
			r := &Runner{Config: cfg, Log: &out, PlainEvery: 100 * time.Millisecond}
			res, err := r.Run(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			last := lines[len(lines)-1]
			t.Logf("%s\n%s", out.String(), res.SummaryLine())
			if !strings.HasPrefix(last, "["+sc+" done] ") {
				t.Fatalf("last line %q is not the done line", last)
			}
			m := rateRE.FindAllStringSubmatch(last, -1)
			if len(m) == 0 {
				t.Fatalf("no count and rate in %q", last)
			}
			got := m[len(m)-1] // pubsub: delivered, after published
			eq(t, "count on the last line", got[2], strconv.FormatInt(res.Ops, 10))
			eq(t, "rate on the last line", got[3], fmt.Sprintf("%.0f", res.Throughput))
			if res.Throughput <= 0 {
				t.Errorf("throughput %v: the run did nothing", res.Throughput)
			}
		})
	}
}
