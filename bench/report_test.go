package bench

import (
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fakeResult(scenario, label string, conns int, thr, p50, p99, cpu, rss float64) *Result {
	r := &Result{Scenario: scenario, Label: label, Conns: conns, OpenAtEnd: int64(conns), Throughput: thr, ThroughputUnit: "msgs/s"}
	pc := Percentiles{P50: p50, P90: (p50 + p99) / 2, P99: p99, P999: p99 * 2, Max: p99 * 3}
	if scenario == ScenarioConnect {
		r.HandshakeUs = pc
	} else {
		r.LatencyUs = pc
	}
	if cpu > 0 || rss > 0 {
		r.Server = &ServerStats{CPUMicrosPerOp: cpu, RSSPerConn: rss}
	}
	return r
}

func writeResults(t *testing.T, rs ...*Result) []string {
	t.Helper()
	dir := t.TempDir()
	var files []string
	for i, r := range rs {
		p := filepath.Join(dir, strings.Join([]string{r.Scenario, r.Label, string(rune('a' + i))}, "-")+".json")
		if err := WriteResult(p, r); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	return files
}

// wellFormed parses an SVG document fully with encoding/xml.
func wellFormed(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(strings.NewReader(string(b)))
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: not well-formed XML: %v", path, err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Fatalf("%s: root element %q", path, root)
	}
	return string(b)
}

func TestReportWritesChartsAndTable(t *testing.T) {
	files := writeResults(t,
		fakeResult(ScenarioConnect, "wsgate", 10000, 5000, 300, 900, 20, 2000),
		fakeResult(ScenarioConnect, "wsgate", 50000, 5000, 300, 900, 20, 1800),
		fakeResult(ScenarioConnect, "peer<a>", 10000, 4000, 400, 1200, 40, 9000),
		fakeResult(ScenarioConnect, "peer<a>", 50000, 4000, 400, 1200, 40, 8500),
		fakeResult(ScenarioEcho, "wsgate", 1000, 120000, 80, 300, 3, 0),
		fakeResult(ScenarioEcho, "peer<a>", 1000, 100000, 100, 600, 6, 0),
		fakeResult(ScenarioEcho, "peerb", 1000, 60000, 50, 900, 4, 0),
	)
	out := filepath.Join(t.TempDir(), "img")
	var md strings.Builder
	charts, err := Report(files, out, &md)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"rss-per-conn.svg", "latency-connect.svg", "throughput-connect.svg", "latency-echo.svg", "throughput-echo.svg"}
	if len(charts) != len(want) {
		t.Fatalf("charts %v, want %v", charts, want)
	}
	for i, w := range want {
		if filepath.Base(charts[i]) != w {
			t.Errorf("chart %d = %s, want %s", i, charts[i], w)
		}
		svg := wellFormed(t, charts[i])
		if !strings.Contains(svg, "peer&lt;a&gt;") || !strings.Contains(svg, "wsgate") {
			t.Errorf("%s: labels missing or unescaped", w)
		}
	}
	table := md.String()
	// One row per (scenario, label); connect uses the 50000-connection runs.
	rows := 0
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, "| connect |") || strings.HasPrefix(line, "| echo |") {
			rows++
		}
	}
	if rows != 5 {
		t.Fatalf("%d rows, want 5:\n%s", rows, table)
	}
	// Echo: best peer throughput 100000 -> wsgate 1.20x; best peer p50 is
	// peerb's 50 -> wsgate 1.60x; best peer p99 is 600 -> 0.50x; CPU best
	// peer 4 -> 0.75x. Connect RSS: wsgate 1800 vs 8500 -> 0.21x.
	for _, want := range []string{
		"| echo | wsgate | 1000 | 120000 msgs/s (1.20x) | 80.0 (1.60x) | 300.0 (0.50x) | 3.00 (0.75x) | — |",
		"| connect | wsgate | 50000 |",
		"1800 (0.21x) |",
		"| echo | peerb | 1000 | 60000 msgs/s (0.60x) | 50.0 (1.00x) |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

func TestReportWithoutPeersHasNoRatios(t *testing.T) {
	files := writeResults(t, fakeResult(ScenarioEcho, "wsgate", 10, 100, 1, 2, 0, 0))
	var md strings.Builder
	if _, err := Report(files, t.TempDir(), &md); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(md.String(), "x)") {
		t.Errorf("ratios without a peer:\n%s", md.String())
	}
	if _, err := Report(nil, t.TempDir(), nil); err == nil {
		t.Error("report without files succeeded")
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte("{"), 0o644)
	if _, err := Report([]string{bad}, t.TempDir(), nil); err == nil {
		t.Error("report of a broken file succeeded")
	}
}

func TestNiceTicks(t *testing.T) {
	cases := map[float64]float64{1: 1, 7: 8, 950: 1000, 12345: 12500, 0.3: 0.3}
	for hi, top := range cases {
		ticks := niceTicks(hi, 5)
		last := ticks[len(ticks)-1]
		if last < hi || ticks[0] != 0 || last > top*1.0001 {
			t.Errorf("niceTicks(%v) = %v, want 0..%v", hi, ticks, top)
		}
	}
	if got := logTicks(3, 4500); len(got) != 5 || got[0] != 1 || got[4] != 10000 {
		t.Errorf("logTicks(3, 4500) = %v", got)
	}
	for v, want := range map[float64]string{0: "0", 0.5: "0.5", 12.5: "12.5", 999: "999", 15000: "15k", 2.5e6: "2.5M", 3e9: "3G"} {
		if got := fmtNum(v); got != want {
			t.Errorf("fmtNum(%v) = %s, want %s", v, got, want)
		}
	}
}
