package sysctl

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCheckStockHost(t *testing.T) {
	root := fakeRoot(t, stockValues)
	results, err := testHost(root).check(parsedProfile())
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(Profile()) {
		t.Fatalf("%d results for %d keys", len(results), len(Profile()))
	}
	want := map[string]Result{
		"fs.file-max":                        {Current: "2466170", Wanted: ">=2097152", Status: StatusOK},
		"fs.nr_open":                         {Current: "1048576", Wanted: ">=2097152", Status: StatusLow},
		"net.core.somaxconn":                 {Current: "4096", Wanted: ">=65535", Status: StatusLow},
		"net.ipv4.tcp_syncookies":            {Current: "1", Wanted: "=1", Status: StatusOK},
		"net.ipv4.ip_local_port_range":       {Current: "32768 60999", Wanted: "<=10000 >=65535", Status: StatusLow},
		"net.ipv4.ip_local_reserved_ports":   {Current: "", Wanted: "incl:8080,9090", Status: StatusLow},
		"net.ipv4.tcp_mem":                   {Current: "287898 383867 575796", Wanted: ">=524288 >=700448 >=1048576", Status: StatusLow},
		"net.ipv4.tcp_rmem":                  {Current: "4096 131072 6291456", Wanted: "* >=131072 >=6291456", Status: StatusOK},
		"net.ipv4.tcp_fin_timeout":           {Current: "60", Wanted: "<=15", Status: StatusHigh},
		"net.ipv4.tcp_tw_reuse":              {Current: "2", Wanted: "=1", Status: StatusDiffers},
		"net.ipv4.tcp_slow_start_after_idle": {Current: "1", Wanted: "=0", Status: StatusDiffers},
		"net.netfilter.nf_conntrack_max":     {Current: "262144", Wanted: ">=1677721", Status: StatusLow},
	}
	for key, w := range want {
		w.Key = key
		if got := resultFor(t, results, key); got != w {
			t.Errorf("%s:\n got %+v\nwant %+v", key, got, w)
		}
	}
}

func TestCheckGoodHostIsOK(t *testing.T) {
	results, err := testHost(fakeRoot(t, goodValues(t))).check(parsedProfile())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Status != StatusOK || r.FallsShort() || r.Failed() {
			t.Errorf("%+v, want ok", r)
		}
	}
}

// A host already better than the profile everywhere is ok: higher minimums, a wider range, a
// lower maximum.
func TestCheckBetterThanProfileIsOK(t *testing.T) {
	better := with(goodValues(t),
		"fs.file-max", "9223372036854775807",
		"net.core.somaxconn", "4194304",
		"net.ipv4.ip_local_port_range", "1024 65535",
		"net.ipv4.ip_local_reserved_ports", "22,8000-8099,9090,50000-50010",
		"net.ipv4.tcp_mem", "600000 800000 1100000",
		"net.ipv4.tcp_rmem", "8192 262144 33554432",
		"net.ipv4.tcp_fin_timeout", "5",
	)
	results, err := testHost(fakeRoot(t, better)).check(parsedProfile())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Status != StatusOK {
			t.Errorf("%+v, want ok", r)
		}
	}
}

func TestCheckMissingKeys(t *testing.T) {
	root := fakeRoot(t, with(goodValues(t), "net.netfilter.nf_conntrack_max", "", "fs.nr_open", ""))
	results, err := testHost(root).check(parsedProfile())
	if err != nil {
		t.Fatalf("missing keys must not be fatal: %v", err)
	}
	for _, r := range results {
		switch r.Key {
		case "net.netfilter.nf_conntrack_max", "fs.nr_open":
			if r.Status != StatusMissing || r.FallsShort() || r.Failed() || r.Current != "" {
				t.Errorf("%+v, want missing", r)
			}
		default:
			if r.Status != StatusOK {
				t.Errorf("%+v, want ok", r)
			}
		}
	}
}

func TestCheckUnusableValues(t *testing.T) {
	root := fakeRoot(t, with(goodValues(t),
		"net.core.somaxconn", "lots",
		"net.ipv4.tcp_mem", "1 2",
		"fs.nr_open", "-5",
	))
	// A key that is a directory cannot be read.
	p := filepath.Join(root, "fs", "file-max")
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	results, err := testHost(root).check(parsedProfile())
	if err != nil {
		t.Fatal(err)
	}
	for key, frag := range map[string]string{
		"net.core.somaxconn": `"lots" is not an unsigned decimal integer`,
		"net.ipv4.tcp_mem":   "has 2 fields, the profile expects 3",
		"fs.nr_open":         "not an unsigned decimal integer",
		"fs.file-max":        "is a directory",
	} {
		r := resultFor(t, results, key)
		if !r.Failed() || r.FallsShort() || !strings.Contains(r.Status, frag) {
			t.Errorf("%s: status %q, want an error containing %q", key, r.Status, frag)
		}
	}
}

func TestCheckRAMUnknown(t *testing.T) {
	h := testHost(fakeRoot(t, stockValues))
	h.ram = 0
	results, err := h.check(parsedProfile())
	if err != nil {
		t.Fatal(err)
	}
	if r := resultFor(t, results, "net.ipv4.tcp_mem"); r.Status != "error: size of RAM unknown" {
		t.Errorf("tcp_mem with unknown RAM: %+v", r)
	}
	if r := resultFor(t, results, "net.core.somaxconn"); r.Status != StatusLow {
		t.Errorf("somaxconn must not depend on RAM: %+v", r)
	}
}

func TestCheckRootErrors(t *testing.T) {
	if _, err := Check(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("Check on a missing root succeeded")
	}
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Check on a file: %v", err)
	}
}

// Check (exported, real RAM) on a fake root: everything that does not depend on RAM is judged
// exactly as with the test host.
func TestCheckExported(t *testing.T) {
	root := fakeRoot(t, stockValues)
	got, err := Check(root)
	if err != nil {
		t.Fatal(err)
	}
	want, err := testHost(root).check(parsedProfile())
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i].Key == "net.ipv4.tcp_mem" || got[i].Key == "net.netfilter.nf_conntrack_max" {
			if got[i].Failed() {
				t.Errorf("%+v: live RAM size unreadable?", got[i])
			}
			continue
		}
		if got[i] != want[i] {
			t.Errorf("got %+v, want %+v", got[i], want[i])
		}
	}
}

func TestJudge(t *testing.T) {
	n := func(v ...uint64) []field {
		out := make([]field, len(v))
		for i, x := range v {
			out[i] = field{n: x}
		}
		return out
	}
	anyThen := func(v ...uint64) []field { return append([]field{{any: true}}, n(v...)...) }
	cases := []struct {
		name   string
		op     opKind
		cur    []uint64
		want   []field
		status string
		next   []uint64
	}{
		{"min below", opMin, []uint64{4096}, n(65535), StatusLow, []uint64{65535}},
		{"min equal", opMin, []uint64{65535}, n(65535), StatusOK, nil},
		{"min higher is never lowered", opMin, []uint64{100000}, n(65535), StatusOK, nil},
		{"min per field", opMin, []uint64{10, 50, 900}, n(20, 40, 800), StatusLow, []uint64{20, 50, 900}},
		{"min any untouched", opMin, []uint64{999999, 100, 5}, anyThen(200, 5), StatusLow, []uint64{999999, 200, 5}},
		{"min any ok", opMin, []uint64{1, 200, 5}, anyThen(200, 5), StatusOK, nil},
		{"ram like min", opRAM, []uint64{1, 2, 3}, n(2, 2, 2), StatusLow, []uint64{2, 2, 3}},
		{"max above", opMax, []uint64{60}, n(15), StatusHigh, []uint64{15}},
		{"max lower is never raised", opMax, []uint64{5}, n(15), StatusOK, nil},
		{"max any untouched", opMax, []uint64{999, 20}, anyThen(15), StatusHigh, []uint64{999, 15}},
		{"range narrow both", opRange, []uint64{32768, 60999}, n(10000, 65535), StatusLow, []uint64{10000, 65535}},
		{"range widen high only", opRange, []uint64{5000, 61000}, n(10000, 65535), StatusLow, []uint64{5000, 65535}},
		{"range widen low only", opRange, []uint64{20000, 65535}, n(10000, 65535), StatusLow, []uint64{10000, 65535}},
		{"range wider ok", opRange, []uint64{1024, 65535}, n(10000, 65535), StatusOK, nil},
		{"exact differs up", opExact, []uint64{2}, n(1), StatusDiffers, []uint64{1}},
		{"exact differs down", opExact, []uint64{0}, n(1), StatusDiffers, []uint64{1}},
		{"exact equal", opExact, []uint64{1}, n(1), StatusOK, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cur := slices.Clone(c.cur)
			status, next := judge(c.op, cur, c.want)
			if status != c.status || !slices.Equal(next, c.next) {
				t.Fatalf("judge = %s %v, want %s %v", status, next, c.status, c.next)
			}
			if !slices.Equal(cur, c.cur) {
				t.Fatalf("judge modified its input: %v", cur)
			}
		})
	}
}

func TestRenderWanted(t *testing.T) {
	f := []field{{any: true}, {n: 7}}
	for op, want := range map[opKind]string{
		opMin: "* >=7", opRAM: "* >=7", opMax: "* <=7", opExact: "* =7",
	} {
		if got := renderWanted(op, f); got != want {
			t.Errorf("op %d: %q, want %q", op, got, want)
		}
	}
	if got := renderWanted(opRange, []field{{n: 1}, {n: 2}}); got != "<=1 >=2" {
		t.Errorf("range: %q", got)
	}
}

func TestRAMShare(t *testing.T) {
	cases := []struct{ ram, n, scale, unit, want uint64 }{
		{16 << 30, 25, 1, 4096, 1 << 20},
		{16 << 30, 125, 10, 4096, 1 << 19},
		{16 << 30, 5, 1, 512, 1677721},
		{100, 1, 10000, 1, 0},                           // rounds down
		{^uint64(0), 100, 1, 1, ^uint64(0)},             // no overflow at the top
		{^uint64(0), 1000000, 10000, 1, ^uint64(0)},     // 100.0000%
		{^uint64(0), 1, 10000, 1, ^uint64(0) / 1000000}, // 0.0001%
	}
	for _, c := range cases {
		if got := ramShare(c.ram, c.n, c.scale, c.unit); got != c.want {
			t.Errorf("ramShare(%d, %d/%d%%, unit %d) = %d, want %d", c.ram, c.n, c.scale, c.unit, got, c.want)
		}
	}
}
