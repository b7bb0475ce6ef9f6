package bench

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// svgDoc builds a standalone SVG 1.1 document by hand: charts need a dozen
// element types and nothing justifies a dependency.
type svgDoc struct {
	w, h int
	b    strings.Builder
}

func newSVG(w, h int, title string) *svgDoc {
	d := &svgDoc{w: w, h: h}
	fmt.Fprintf(&d.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&d.b, `<title>%s</title>`+"\n", html.EscapeString(title))
	fmt.Fprintf(&d.b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", w, h)
	d.text(float64(w)/2, 22, "middle", 15, "#000000", title)
	return d
}

func f2(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }

func (d *svgDoc) rect(x, y, w, h float64, fill, title string) {
	fmt.Fprintf(&d.b, `<rect x="%s" y="%s" width="%s" height="%s" fill="%s">`, f2(x), f2(y), f2(w), f2(h), fill)
	if title != "" {
		fmt.Fprintf(&d.b, `<title>%s</title>`, html.EscapeString(title))
	}
	d.b.WriteString("</rect>\n")
}

func (d *svgDoc) line(x1, y1, x2, y2 float64, stroke string, width float64, dash bool) {
	extra := ""
	if dash {
		extra = ` stroke-dasharray="3,3"`
	}
	fmt.Fprintf(&d.b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="%s"%s/>`+"\n", f2(x1), f2(y1), f2(x2), f2(y2), stroke, f2(width), extra)
}

func (d *svgDoc) text(x, y float64, anchor string, size int, fill, s string) {
	fmt.Fprintf(&d.b, `<text x="%s" y="%s" text-anchor="%s" font-size="%d" fill="%s">%s</text>`+"\n", f2(x), f2(y), anchor, size, fill, html.EscapeString(s))
}

func (d *svgDoc) rotText(x, y float64, s string) {
	fmt.Fprintf(&d.b, `<text x="%s" y="%s" text-anchor="middle" transform="rotate(-90 %s %s)">%s</text>`+"\n", f2(x), f2(y), f2(x), f2(y), html.EscapeString(s))
}

func (d *svgDoc) polyline(pts [][2]float64, stroke string) {
	var sb strings.Builder
	for i, p := range pts {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(f2(p[0]) + "," + f2(p[1]))
	}
	fmt.Fprintf(&d.b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", sb.String(), stroke)
}

func (d *svgDoc) circle(x, y, r float64, fill, title string) {
	fmt.Fprintf(&d.b, `<circle cx="%s" cy="%s" r="%s" fill="%s"><title>%s</title></circle>`+"\n", f2(x), f2(y), f2(r), fill, html.EscapeString(title))
}

func (d *svgDoc) String() string { return d.b.String() + "</svg>\n" }

// palette holds distinguishable series colours; wsgate always gets the first.
var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

// niceTicks returns round tick values covering [0, hi] (about n ticks).
func niceTicks(hi float64, n int) []float64 {
	if hi <= 0 || math.IsNaN(hi) || math.IsInf(hi, 0) {
		return []float64{0, 1}
	}
	raw := hi / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var t []float64
	for v := 0.0; v < hi+step*0.999; v += step {
		t = append(t, v)
	}
	if len(t) < 2 {
		t = append(t, step)
	}
	return t
}

// logTicks returns the powers of ten covering [lo, hi] (lo > 0).
func logTicks(lo, hi float64) []float64 {
	a := math.Floor(math.Log10(lo))
	b := math.Ceil(math.Log10(hi))
	if b <= a {
		b = a + 1
	}
	var t []float64
	for e := a; e <= b; e++ {
		t = append(t, math.Pow(10, e))
	}
	return t
}

// fmtNum formats a value compactly for axes and labels: 1.2k, 3.4M.
func fmtNum(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return trimZero(strconv.FormatFloat(v/1e9, 'f', 1, 64)) + "G"
	case a >= 1e6:
		return trimZero(strconv.FormatFloat(v/1e6, 'f', 1, 64)) + "M"
	case a >= 1e4:
		return trimZero(strconv.FormatFloat(v/1e3, 'f', 1, 64)) + "k"
	case a >= 100 || a == 0:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 1:
		return trimZero(strconv.FormatFloat(v, 'f', 1, 64))
	}
	return trimZero(strconv.FormatFloat(v, 'f', 3, 64))
}

func trimZero(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
