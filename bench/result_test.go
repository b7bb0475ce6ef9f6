package bench

import (
	"encoding/json"
	"golang.org/x/sys/unix"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMergeIsExact splits one stream of events over three partial results
// and checks the merge equals recording everything in one.
func TestMergeIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	whole := &Result{Scenario: ScenarioEcho, Conns: 30, Echo: &EchoCounts{Size: 8}, Handshake: new(Histogram), Latency: new(Histogram)}
	parts := make([]*Result, 3)
	for i := range parts {
		parts[i] = &Result{Scenario: ScenarioEcho, Echo: &EchoCounts{Size: 8}, Handshake: new(Histogram), Latency: new(Histogram),
			FirstDial: int64(1000 + i*10), LastOpen: int64(5000 - i*100)}
	}
	for i := range 30000 {
		p := parts[i%3]
		v := int64(rng.ExpFloat64() * 1e5)
		p.Latency.Record(v)
		whole.Latency.Record(v)
		p.Echo.Sent++
		p.Echo.Received++
		whole.Echo.Sent++
		whole.Echo.Received++
		if i%1000 == 0 {
			p.Handshake.Record(v)
			whole.Handshake.Record(v)
			p.Opened++
			whole.Opened++
			p.Failures = mergeCounts(p.Failures, map[string]int64{ReasonRefused: 1})
		}
	}
	merged := &Result{Scenario: ScenarioEcho, Conns: 30}
	for _, p := range parts {
		merged.Merge(p)
	}
	if *merged.Latency != *whole.Latency || *merged.Handshake != *whole.Handshake {
		t.Fatal("merged histograms differ from the whole")
	}
	if *merged.Echo != *whole.Echo || merged.Opened != whole.Opened {
		t.Fatalf("counters: %+v vs %+v", merged.Echo, whole.Echo)
	}
	if merged.Failures[ReasonRefused] != 30 {
		t.Fatalf("failures %v", merged.Failures)
	}
	if merged.FirstDial != 1000 || merged.LastOpen != 5000 {
		t.Fatalf("first dial %d last open %d: want earliest and latest", merged.FirstDial, merged.LastOpen)
	}
	for _, p := range []float64{50, 90, 99, 99.9} {
		if merged.Latency.Percentile(p) != whole.Latency.Percentile(p) {
			t.Fatalf("p%v differs", p)
		}
	}
}

// TestPubSubLossFromSequences: finalize computes expected deliveries from
// per-channel subscriber tallies and the final seqs.
func TestPubSubLossFromSequences(t *testing.T) {
	// Channel 0: 3 subscribers joined at seq 0, 2, 2; final seq 10 ->
	// 10+8+8 = 26 expected. Channel 1: 1 subscriber at seq 5, final 5 -> 0.
	w1 := &Result{PubSub: &PubSubCounts{Tally: []ChannelTally{{Subs: 2, SumBase: 2}, {Subs: 1, SumBase: 5}}, Delivered: 15, Subscribed: 3}}
	w2 := &Result{PubSub: &PubSubCounts{Tally: []ChannelTally{{Subs: 1, SumBase: 2}}, Delivered: 7, Duplicated: 1, Subscribed: 1}}
	r := &Result{Scenario: ScenarioPubSub, Conns: 4, PubSub: &PubSubCounts{Channels: 2, Published: 10, Final: []int64{10, 5}}}
	r.Merge(w1)
	r.Merge(w2)
	r.finalize(2*time.Second, nil)
	p := r.PubSub
	if p.Expected != 26 || p.Delivered != 22 || p.Lost != 4 || p.Duplicated != 1 {
		t.Fatalf("expected %d delivered %d lost %d dup %d; want 26 22 4 1", p.Expected, p.Delivered, p.Lost, p.Duplicated)
	}
	if r.Throughput != 11 || r.Ops != 22 {
		t.Fatalf("throughput %v ops %d, want 11 and 22", r.Throughput, r.Ops)
	}
}

func TestFinalizeServerStats(t *testing.T) {
	srv := &ServerStats{
		PIDs:  []int{1},
		Start: ProcSample{CPUTicks: 100, RSS: 10 << 20},
		Setup: ProcSample{CPUTicks: 150, RSS: 20 << 20},
		End:   ProcSample{CPUTicks: 350, RSS: 30 << 20},
	}
	r := &Result{Scenario: ScenarioEcho, Conns: 1000, OpenAtEnd: 1000, Echo: &EchoCounts{Received: 1e6}}
	r.finalize(10*time.Second, srv)
	if r.Server.CPUSeconds != 2 || r.Server.CPUMicrosPerOp != 2 {
		t.Fatalf("cpu %v s, %v µs/op; want 2 and 2", r.Server.CPUSeconds, r.Server.CPUMicrosPerOp)
	}
	if r.Server.RSSPerConn != float64(20<<20)/1000 || r.Server.RSSNote != "" {
		t.Fatalf("rss/conn %v (%q), want %v", r.Server.RSSPerConn, r.Server.RSSNote, float64(20<<20)/1000)
	}
	if line := r.SummaryLine(); !strings.HasSuffix(line, " rss_per_conn=20972") || strings.Contains(line, "rss_note") {
		t.Errorf("summary %q", line)
	}
	// connect: CPU is charged to the connecting phase (start -> setup).
	c := &Result{Scenario: ScenarioConnect, Conns: 1000, Opened: 1000, OpenAtEnd: 1000}
	srv2 := *srv
	c.finalize(time.Second, &srv2)
	if c.Server.CPUSeconds != 0.5 || c.Server.CPUMicrosPerOp != 500 {
		t.Fatalf("connect cpu %v s, %v µs/op; want 0.5 and 500", c.Server.CPUSeconds, c.Server.CPUMicrosPerOp)
	}
}

// TestMemoryPerConnOnlyWhenMeasured: memory per connection is a number
// only when the server's RSS was sampled and grew while connections were
// open; otherwise the summary says why, and never prints a negative number.
func TestMemoryPerConnOnlyWhenMeasured(t *testing.T) {
	for _, tc := range []struct {
		name       string
		start, end int64 // RSS
		open       int64
		srv        bool
		note       string
	}{
		{"shrank", 20 << 20, 19 << 20, 1000, true, "the server's RSS did not grow (20971520 to 19922944 bytes)"},
		{"flat", 20 << 20, 20 << 20, 1000, true, "did not grow"},
		{"not sampled", 0, 0, 1000, true, "could not be sampled"},
		{"no connections", 20 << 20, 21 << 20, 0, true, "no connection was open at the end"},
		{"no -server-pid", 0, 0, 1000, false, noServerPID},
	} {
		r := &Result{Scenario: ScenarioConnect, Conns: 1000, Opened: tc.open, OpenAtEnd: tc.open}
		var srv *ServerStats
		if tc.srv {
			srv = &ServerStats{PIDs: []int{1}, Start: ProcSample{RSS: tc.start}, End: ProcSample{RSS: tc.end}}
		}
		r.finalize(time.Second, srv)
		if r.Server != nil && (r.Server.RSSPerConn != 0 || !strings.Contains(r.Server.RSSNote, tc.note)) {
			t.Errorf("%s: rss/conn %v, note %q; want 0 and a note with %q", tc.name, r.Server.RSSPerConn, r.Server.RSSNote, tc.note)
		}
		line := r.SummaryLine()
		if !strings.Contains(line, " rss_per_conn=unmeasured rss_note=") || !strings.Contains(line, tc.note) {
			t.Errorf("%s: summary %q does not say why memory per connection is unmeasured", tc.name, line)
		}
		if strings.Contains(line, "=-") || strings.Contains(line, "sockmem") {
			t.Errorf("%s: summary %q has a negative or host-wide memory figure", tc.name, line)
		}
	}
}

func TestSummaryLineAndProblems(t *testing.T) {
	r := &Result{Scenario: ScenarioEcho, Label: "my server", Conns: 10, Opened: 10, OpenAtEnd: 10,
		Echo: &EchoCounts{Sent: 100, Received: 100}, Latency: new(Histogram)}
	r.Latency.Record(1500)
	r.finalize(time.Second, nil)
	line := r.SummaryLine()
	for _, want := range []string{"scenario=echo", `label="my server"`, "throughput=100", "p50_us=1.5", "sent=100", "received=100", "lost=0"} {
		if !strings.Contains(line, want) {
			t.Errorf("summary %q lacks %q", line, want)
		}
	}
	if strings.Contains(line, "\n") {
		t.Error("summary spans lines")
	}
	if p := Problems(r); len(p) != 0 {
		t.Errorf("clean run has problems %v", p)
	}
	r.Echo.Received = 97
	r.Echo.Lost = 2
	r.Drops = map[string]int64{ReasonEOF: 1, "server_close_1001": 5}
	p := Problems(r)
	if len(p) != 3 {
		t.Fatalf("problems %v: want lost, unaccounted and drops", p)
	}
}

func TestResultFileRoundTrip(t *testing.T) {
	r := &Result{Scenario: ScenarioPubSub, Label: "x", Conns: 5, Latency: new(Histogram), PubSub: &PubSubCounts{Channels: 1}}
	r.Latency.Record(42)
	r.finalize(time.Second, nil)
	path := filepath.Join(t.TempDir(), "r.json")
	if err := WriteResult(path, r); err != nil {
		t.Fatal(err)
	}
	back, err := ReadResult(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(r)
	b, _ := json.Marshal(back)
	if string(a) != string(b) {
		t.Fatalf("round trip differs:\n%s\n%s", a, b)
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig(ScenarioEcho)
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []func(*Config){
		func(c *Config) { c.Scenario = "nope" },
		func(c *Config) { c.Conns = 0 },
		func(c *Config) { c.Size = 0 },
		func(c *Config) { c.Procs = "zero" },
		func(c *Config) { c.Procs = "1"; c.Conns = workerCap() + 1 },
		func(c *Config) { c.Src = "1.2.3.4-1.2.3.1" },
		func(c *Config) { c.Scenario = ScenarioPubSub; c.PublishURL = "ftp://x" },
		func(c *Config) { c.Scenario = ScenarioPubSub; c.Channels = 0 },
		func(c *Config) { c.Scenario = ScenarioChurn; c.Backoff.Max = 0 },
	}
	for i, f := range bad {
		c := DefaultConfig(ScenarioEcho)
		f(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("case %d: accepted %+v", i, c)
		}
	}
	c := DefaultConfig(ScenarioConnect)
	c.Conns = 100000
	if n, err := c.procCount(); err != nil || n != 7 {
		t.Errorf("auto procs for 100000 = %d %v, want 7", n, err)
	}
	c.Procs = "8"
	if n, err := c.procCount(); err != nil || n != 8 {
		t.Errorf("procs 8 = %d %v", n, err)
	}
	// An explicit -procs may fill a worker up to the open-files limit less the reserve.
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if most := workerCap(); most < MaxConnsPerWorker || (rl.Cur >= workerFileReserve+MaxConnsPerWorker && uint64(most) != rl.Cur-workerFileReserve) {
		t.Fatalf("workerCap() = %d with an open-files limit of %d", most, rl.Cur)
	}
	c.Procs, c.Conns = "3", 3*workerCap()
	if n, err := c.procCount(); err != nil || n != 3 {
		t.Errorf("procs 3 for %d connections = %d %v", c.Conns, n, err)
	}
	c.Conns++
	if _, err := c.procCount(); err == nil {
		t.Errorf("procs 3 accepted %d connections, over the cap of %d per worker", c.Conns, workerCap())
	}
}

func TestResolveTarget(t *testing.T) {
	tg, err := resolveTarget(t.Context(), "ws://127.0.0.1:9000/a/b?c=d")
	if err != nil {
		t.Fatal(err)
	}
	if tg.addr != [4]byte{127, 0, 0, 1} || tg.port != 9000 || tg.path != "/a/b?c=d" || tg.host != "127.0.0.1:9000" {
		t.Fatalf("%+v", tg)
	}
	tg, err = resolveTarget(t.Context(), "ws://127.0.0.1")
	if err != nil || tg.port != 80 || tg.path != "/" {
		t.Fatalf("%+v %v", tg, err)
	}
	// http:// is an sse scenario's URL (Config.Validate says which scheme a scenario takes).
	if tg, err := resolveTarget(t.Context(), "http://127.0.0.1:9000/sse"); err != nil || tg.path != "/sse" {
		t.Fatalf("http: %+v %v", tg, err)
	}
	for _, bad := range []string{"wss://127.0.0.1/", "https://127.0.0.1/", "ws://[::1]:80/", "ws://127.0.0.1:0/", "::"} {
		if _, err := resolveTarget(t.Context(), bad); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
