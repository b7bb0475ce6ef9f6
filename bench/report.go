package bench

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ReferenceLabel is the label of the server the report compares against its
// peers: every ratio is "this row's value / the best peer's value", where a
// peer is any other label.
const ReferenceLabel = "wsgate"

// Report reads result files and writes SVG charts into outDir:
//
//	rss-per-conn.svg          server RSS per connection vs connections (connect runs)
//	latency-<scenario>.svg    latency percentiles per server
//	throughput-<scenario>.svg throughput per server, CPU-µs per op annotated
//
// It writes the Markdown comparison table to md and returns the chart paths.
func Report(files []string, outDir string, md io.Writer) ([]string, error) {
	if len(files) == 0 {
		return nil, errors.New("report: no result files")
	}
	var rs []*Result
	for _, f := range files {
		r, err := ReadResult(f)
		if err != nil {
			return nil, err
		}
		if r.Label == "" {
			r.Label = "unlabelled"
		}
		rs = append(rs, r)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	var written []string
	write := func(name, svg string) error {
		p := filepath.Join(outDir, name)
		if err := os.WriteFile(p, []byte(svg), 0o644); err != nil {
			return err
		}
		written = append(written, p)
		return nil
	}
	labels := orderedLabels(rs)
	if svg, ok := rssChart(rs, labels); ok {
		if err := write("rss-per-conn.svg", svg); err != nil {
			return written, err
		}
	}
	for _, sc := range Scenarios {
		rows := bestPerLabel(rs, sc)
		if len(rows) == 0 {
			continue
		}
		if svg, ok := latencyChart(sc, rows); ok {
			if err := write("latency-"+sc+".svg", svg); err != nil {
				return written, err
			}
		}
		if svg, ok := throughputChart(sc, rows); ok {
			if err := write("throughput-"+sc+".svg", svg); err != nil {
				return written, err
			}
		}
	}
	if md != nil {
		if _, err := io.WriteString(md, MarkdownTable(rs)); err != nil {
			return written, err
		}
	}
	return written, nil
}

// orderedLabels lists labels with the reference first, then alphabetically.
func orderedLabels(rs []*Result) []string {
	var ls []string
	for _, r := range rs {
		if !slices.Contains(ls, r.Label) {
			ls = append(ls, r.Label)
		}
	}
	slices.SortFunc(ls, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == ReferenceLabel:
			return -1
		case b == ReferenceLabel:
			return 1
		}
		return strings.Compare(a, b)
	})
	return ls
}

// bestPerLabel picks one result per label for a scenario: the one with the
// most connections, the later file on a tie. Rows are in label order.
func bestPerLabel(rs []*Result, scenario string) []*Result {
	pick := map[string]*Result{}
	for _, r := range rs {
		if r.Scenario != scenario {
			continue
		}
		if cur, ok := pick[r.Label]; !ok || r.Conns >= cur.Conns {
			pick[r.Label] = r
		}
	}
	var rows []*Result
	for _, l := range orderedLabels(rs) {
		if r, ok := pick[l]; ok {
			rows = append(rows, r)
		}
	}
	return rows
}

func colorOf(labels []string, l string) string {
	i := slices.Index(labels, l)
	if i < 0 {
		i = 0
	}
	return palette[i%len(palette)]
}

// chart geometry shared by all charts.
const (
	chartW = 760
	chartH = 420
	padL   = 80
	padR   = 150
	padT   = 40
	padB   = 60
)

func rssChart(rs []*Result, labels []string) (string, bool) {
	type pt struct{ x, y float64 }
	series := map[string][]pt{}
	var maxX, maxY float64
	for _, r := range rs {
		if r.Scenario != ScenarioConnect || r.Server == nil || r.OpenAtEnd <= 0 || r.Server.RSSPerConn <= 0 {
			continue
		}
		p := pt{float64(r.OpenAtEnd), r.Server.RSSPerConn}
		series[r.Label] = append(series[r.Label], p)
		maxX, maxY = math.Max(maxX, p.x), math.Max(maxY, p.y)
	}
	if len(series) == 0 {
		return "", false
	}
	d := newSVG(chartW, chartH, "Server RSS per connection vs connections (connect)")
	pw, ph := float64(chartW-padL-padR), float64(chartH-padT-padB)
	xt, yt := niceTicks(maxX, 6), niceTicks(maxY, 5)
	xmax, ymax := xt[len(xt)-1], yt[len(yt)-1]
	X := func(v float64) float64 { return padL + v/xmax*pw }
	Y := func(v float64) float64 { return padT + ph - v/ymax*ph }
	axes(d, pw, ph)
	for _, v := range xt {
		d.line(X(v), padT+ph, X(v), padT+ph+5, "#000000", 1, false)
		d.text(X(v), padT+ph+18, "middle", 11, "#000000", fmtNum(v))
	}
	for _, v := range yt {
		d.line(padL, Y(v), padL+pw, Y(v), "#dddddd", 1, true)
		d.text(padL-6, Y(v)+4, "end", 11, "#000000", fmtNum(v))
	}
	d.text(padL+pw/2, chartH-15, "middle", 12, "#000000", "connections open")
	d.rotText(20, padT+ph/2, "RSS bytes per connection")
	var legend []string
	for _, l := range labels {
		ps := series[l]
		if len(ps) == 0 {
			continue
		}
		legend = append(legend, l)
		slices.SortFunc(ps, func(a, b pt) int { return cmp.Compare(a.x, b.x) })
		col := colorOf(labels, l)
		var line [][2]float64
		for _, p := range ps {
			line = append(line, [2]float64{X(p.x), Y(p.y)})
		}
		if len(line) > 1 {
			d.polyline(line, col)
		}
		for _, p := range ps {
			d.circle(X(p.x), Y(p.y), 4, col, fmt.Sprintf("%s: %.0f conns, %.0f B/conn", l, p.x, p.y))
		}
	}
	drawLegend(d, labels, legend)
	return d.String(), true
}

func latencyChart(sc string, rows []*Result) (string, bool) {
	names := []string{"p50", "p90", "p99", "p99.9"}
	get := func(p Percentiles) []float64 { return []float64{p.P50, p.P90, p.P99, p.P999} }
	title := "Latency percentiles (" + sc + ")"
	what := func(r *Result) Percentiles { return r.LatencyUs }
	switch sc {
	case ScenarioConnect, ScenarioChurn:
		title = "Handshake latency percentiles (" + sc + ")"
		what = func(r *Result) Percentiles { return r.HandshakeUs }
	case ScenarioEcho:
		title = "Echo round-trip latency percentiles"
	case ScenarioPubSub, ScenarioSSE:
		title = "Publish-to-delivery latency percentiles"
	}
	lo, hi := math.Inf(1), 0.0
	for _, r := range rows {
		for _, v := range get(what(r)) {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if hi == 0 {
		return "", false
	}
	d := newSVG(chartW, chartH, title)
	pw, ph := float64(chartW-padL-padR), float64(chartH-padT-padB)
	ticks := logTicks(lo, hi)
	la, lb := math.Log10(ticks[0]), math.Log10(ticks[len(ticks)-1])
	Y := func(v float64) float64 {
		if v < ticks[0] {
			v = ticks[0]
		}
		return padT + ph - (math.Log10(v)-la)/(lb-la)*ph
	}
	axes(d, pw, ph)
	for _, v := range ticks {
		d.line(padL, Y(v), padL+pw, Y(v), "#dddddd", 1, true)
		d.text(padL-6, Y(v)+4, "end", 11, "#000000", fmtNum(v))
	}
	d.rotText(20, padT+ph/2, "microseconds (log scale)")
	group := pw / float64(len(names))
	bw := group * 0.8 / float64(len(rows))
	labels := make([]string, len(rows))
	for i, r := range rows {
		labels[i] = r.Label
	}
	for gi, n := range names {
		gx := padL + float64(gi)*group + group*0.1
		d.text(padL+float64(gi)*group+group/2, padT+ph+18, "middle", 12, "#000000", n)
		for ri, r := range rows {
			v := get(what(r))[gi]
			if v <= 0 {
				continue
			}
			x := gx + float64(ri)*bw
			y := Y(v)
			d.rect(x, y, bw*0.9, padT+ph-y, colorOf(labels, r.Label), fmt.Sprintf("%s %s: %.1f µs", r.Label, n, v))
			d.text(x+bw*0.45, y-3, "middle", 9, "#333333", fmtNum(v))
		}
	}
	drawLegend(d, labels, labels)
	return d.String(), true
}

func throughputChart(sc string, rows []*Result) (string, bool) {
	var hi float64
	for _, r := range rows {
		hi = math.Max(hi, r.Throughput)
	}
	if hi <= 0 {
		return "", false
	}
	unit := rows[0].ThroughputUnit
	d := newSVG(chartW, chartH, "Throughput per server ("+sc+", "+unit+")")
	pw, ph := float64(chartW-padL-padR), float64(chartH-padT-padB)
	yt := niceTicks(hi, 5)
	ymax := yt[len(yt)-1]
	Y := func(v float64) float64 { return padT + ph - v/ymax*ph }
	axes(d, pw, ph)
	for _, v := range yt {
		d.line(padL, Y(v), padL+pw, Y(v), "#dddddd", 1, true)
		d.text(padL-6, Y(v)+4, "end", 11, "#000000", fmtNum(v))
	}
	d.rotText(20, padT+ph/2, unit)
	labels := make([]string, len(rows))
	for i, r := range rows {
		labels[i] = r.Label
	}
	slot := pw / float64(len(rows))
	for i, r := range rows {
		x := padL + float64(i)*slot + slot*0.15
		y := Y(r.Throughput)
		d.rect(x, y, slot*0.7, padT+ph-y, colorOf(labels, r.Label), fmt.Sprintf("%s: %.0f %s", r.Label, r.Throughput, unit))
		d.text(x+slot*0.35, y-6, "middle", 11, "#000000", fmtNum(r.Throughput))
		d.text(x+slot*0.35, padT+ph+18, "middle", 12, "#000000", r.Label)
		if r.Server != nil && r.Server.CPUMicrosPerOp > 0 {
			d.text(x+slot*0.35, padT+ph+34, "middle", 10, "#555555", fmt.Sprintf("%.2f CPU-µs/op", r.Server.CPUMicrosPerOp))
		}
	}
	drawLegend(d, labels, labels)
	return d.String(), true
}

func axes(d *svgDoc, pw, ph float64) {
	d.line(padL, padT, padL, padT+ph, "#000000", 1, false)
	d.line(padL, padT+ph, padL+pw, padT+ph, "#000000", 1, false)
}

func drawLegend(d *svgDoc, all, shown []string) {
	x := float64(chartW - padR + 15)
	for i, l := range shown {
		y := float64(padT + 10 + i*20)
		d.rect(x, y-10, 12, 12, colorOf(all, l), "")
		d.text(x+18, y, "start", 12, "#000000", l)
	}
}

// MarkdownTable renders one row per (scenario, server label) with
// throughput, latency p50/p99, server CPU-µs per op and RSS bytes per
// connection, each followed by its ratio to the best peer (a label other
// than ReferenceLabel) for that scenario and column.
func MarkdownTable(rs []*Result) string {
	var b strings.Builder
	b.WriteString("| scenario | server | conns | throughput | p50 µs | p99 µs | server CPU-µs/op | server RSS B/conn |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|\n")
	type col struct {
		get    func(*Result) float64
		higher bool // higher is better
		format func(float64) string
	}
	cols := []col{
		{func(r *Result) float64 { return r.Throughput }, true, func(v float64) string { return fmt.Sprintf("%.0f", v) }},
		{func(r *Result) float64 { return latencyOf(r).P50 }, false, func(v float64) string { return fmt.Sprintf("%.1f", v) }},
		{func(r *Result) float64 { return latencyOf(r).P99 }, false, func(v float64) string { return fmt.Sprintf("%.1f", v) }},
		{func(r *Result) float64 {
			if r.Server == nil {
				return 0
			}
			return r.Server.CPUMicrosPerOp
		}, false, func(v float64) string { return fmt.Sprintf("%.2f", v) }},
		{func(r *Result) float64 {
			if r.Server == nil {
				return 0
			}
			return r.Server.RSSPerConn
		}, false, func(v float64) string { return fmt.Sprintf("%.0f", v) }},
	}
	for _, sc := range Scenarios {
		rows := bestPerLabel(rs, sc)
		best := make([]float64, len(cols))
		for ci, c := range cols {
			for _, r := range rows {
				v := c.get(r)
				if r.Label == ReferenceLabel || v <= 0 {
					continue
				}
				if best[ci] == 0 || (c.higher && v > best[ci]) || (!c.higher && v < best[ci]) {
					best[ci] = v
				}
			}
		}
		for _, r := range rows {
			fmt.Fprintf(&b, "| %s | %s | %d |", sc, r.Label, r.Conns)
			for ci, c := range cols {
				v := c.get(r)
				if v <= 0 {
					b.WriteString(" — |")
					continue
				}
				if ci == 0 {
					fmt.Fprintf(&b, " %s %s", c.format(v), r.ThroughputUnit)
				} else {
					fmt.Fprintf(&b, " %s", c.format(v))
				}
				if best[ci] > 0 {
					fmt.Fprintf(&b, " (%.2fx)", v/best[ci])
				}
				b.WriteString(" |")
			}
			b.WriteByte('\n')
		}
	}
	b.WriteString("\nRatios are the row's value divided by the best peer's (any server other than " + ReferenceLabel +
		") in the same scenario: above 1 is better for throughput, below 1 is better for latency, CPU and RSS. " +
		"Latency is the round trip (echo), publish-to-delivery (pubsub) or handshake (connect, churn).\n")
	return b.String()
}

// latencyOf is the latency a scenario is judged by.
func latencyOf(r *Result) Percentiles {
	if r.Scenario == ScenarioConnect || r.Scenario == ScenarioChurn {
		return r.HandshakeUs
	}
	return r.LatencyUs
}
