package sysctl

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestProfileParses(t *testing.T) {
	entries := Profile() // panics with "BUG: ..." if million.conf is broken
	if len(entries) == 0 {
		t.Fatal("empty profile")
	}
	// The keys a million-connection host needs, at least.
	required := []string{
		"fs.file-max", "fs.nr_open", "net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog",
		"net.core.netdev_max_backlog", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_mem",
		"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_tw_reuse",
		"net.netfilter.nf_conntrack_max", "net.ipv4.ip_local_reserved_ports",
	}
	var keys []string
	for _, e := range entries {
		keys = append(keys, e.Key)
		if !strings.Contains(e.Why, "Cost:") {
			t.Errorf("%s: explanation does not say what it costs (no \"Cost:\"): %q", e.Key, e.Why)
		}
		if e.Value == "" || e.Cmp == "" {
			t.Errorf("%s: empty value or comparison: %+v", e.Key, e)
		}
	}
	for _, k := range required {
		if !slices.Contains(keys, k) {
			t.Errorf("profile lacks %s", k)
		}
	}
	if !strings.Contains(ProfileText(), "# Syntax") {
		t.Error("the profile does not document its syntax at the top")
	}
}

func TestProfileReturnsCopy(t *testing.T) {
	a := Profile()
	a[0].Key = "changed"
	if b := Profile(); b[0].Key == "changed" {
		t.Fatal("Profile shares its slice with callers")
	}
}

// The comparison semantics the task asks for, read from the embedded file.
func TestProfileSemantics(t *testing.T) {
	want := map[string]string{
		"fs.file-max":                      CmpMin,
		"net.ipv4.ip_local_port_range":     CmpRange,
		"net.ipv4.tcp_tw_reuse":            CmpExact,
		"net.ipv4.tcp_fin_timeout":         CmpMax,
		"net.ipv4.tcp_mem":                 "ram/page",
		"net.ipv4.tcp_rmem":                CmpMin,
		"net.ipv4.ip_local_reserved_ports": CmpPorts,
	}
	for _, e := range Profile() {
		if w, ok := want[e.Key]; ok && e.Cmp != w {
			t.Errorf("%s is compared with %q, want %q", e.Key, e.Cmp, w)
		}
	}
}

// tcp_mem and the other RAM shares must never hand the kernel more than a bounded share of RAM,
// on a tiny host or a huge one, and must keep tcp_mem's fields ordered.
func TestProfileRAMSharesAreBounded(t *testing.T) {
	for _, ram := range []uint64{256 << 20, 1 << 30, 16 << 30, 1 << 40, 1 << 50} {
		h := host{ram: ram, pageSize: testPage}
		for _, r := range parsedProfile() {
			if r.op != opRAM {
				continue
			}
			want, err := h.resolve(&r)
			if err != nil {
				t.Fatal(err)
			}
			unit := r.unit
			if unit == 0 {
				unit = testPage
			}
			for i, w := range want {
				if bytes := float64(w.n) * float64(unit); bytes > float64(ram)/4 {
					t.Errorf("RAM %d: %s field %d wants %.0f bytes, more than a quarter of RAM", ram, r.Key, i+1, bytes)
				}
			}
			if r.Key == "net.ipv4.tcp_mem" && !(want[0].n <= want[1].n && want[1].n <= want[2].n) {
				t.Errorf("RAM %d: tcp_mem %v is not ordered low <= pressure <= high", ram, want)
			}
		}
	}
}

func TestParseProfileValid(t *testing.T) {
	rules := mustParse(t, "# header, not attached\n\n"+
		"# why a\n#\n#   Cost: a lot  \na.b min 1 * 3\n"+
		"# why b\r\nc.d-e_f ram/page 12.5% * 100%\r\n"+
		"# why c\ng.h ram/512 0.0001%\n"+
		"# why d\ni.j range 5 5\n"+
		"# why e\nk.l exact 0 007\n"+
		"# why f\nm.n max 15\n# trailing comment\n")
	if len(rules) != 6 {
		t.Fatalf("got %d rules", len(rules))
	}
	a := rules[0]
	if a.Key != "a.b" || a.Cmp != "min" || a.Value != "1 * 3" || a.Why != "why a Cost: a lot" || a.op != opMin {
		t.Errorf("rule a: %+v", a)
	}
	if !slices.Equal(a.fields, []field{{n: 1}, {any: true}, {n: 3}}) {
		t.Errorf("rule a fields: %+v", a.fields)
	}
	c := rules[1]
	if c.op != opRAM || c.unit != 0 || !slices.Equal(c.fields, []field{{n: 125, scale: 10}, {any: true}, {n: 100, scale: 1}}) {
		t.Errorf("rule c: %+v", c)
	}
	if g := rules[2]; g.unit != 512 || g.fields[0] != (field{n: 1, scale: 10000}) {
		t.Errorf("rule g: %+v", g)
	}
	if i := rules[3]; i.op != opRange || i.fields[0].n != 5 || i.fields[1].n != 5 {
		t.Errorf("rule i: %+v", i)
	}
	if k := rules[4]; k.op != opExact || k.fields[1].n != 7 {
		t.Errorf("rule k: %+v", k)
	}
	if m := rules[5]; m.op != opMax || m.Why != "why f" {
		t.Errorf("rule m: %+v", m)
	}
}

func TestParseProfileErrors(t *testing.T) {
	cases := []struct{ name, text, want string }{
		{"empty", "", "no settings"},
		{"comments only", "# a\n\n# b\n", "no settings"},
		{"no why", "a.b min 1\n", "has no explanation"},
		{"why separated by blank line", "# why\n\na.b min 1\n", "has no explanation"},
		{"two fields", "# w\na.b min\n", "want KEY CMP VALUE"},
		{"unknown cmp", "# w\na.b atleast 1\n", "unknown comparison"},
		{"negative", "# w\na.b min -1\n", "not an unsigned decimal"},
		{"plus sign", "# w\na.b min +1\n", "not an unsigned decimal"},
		{"overflow", "# w\na.b min 18446744073709551616\n", "out of range"},
		{"trailing comment", "# w\na.b min 1 # note\n", "not an unsigned decimal"},
		{"all any", "# w\na.b min * *\n", "nothing to compare"},
		{"any in exact", "# w\na.b exact *\n", "not allowed"},
		{"any in range", "# w\na.b range * 5\n", "not allowed"},
		{"range one field", "# w\na.b range 5\n", "two fields"},
		{"range three fields", "# w\na.b range 1 2 3\n", "two fields"},
		{"range inverted", "# w\na.b range 9 5\n", "LOW above HIGH"},
		{"ram no percent", "# w\na.b ram/page 12\n", "percentage"},
		{"ram zero", "# w\na.b ram/page 0%\n", "above 0%"},
		{"ram above 100", "# w\na.b ram/page 100.01%\n", "at most 100%"},
		{"ram five decimals", "# w\na.b ram/page 1.00001%\n", "at most 4 decimals"},
		{"ram empty fraction", "# w\na.b ram/page 1.%\n", "percentage"},
		{"ram bad unit", "# w\na.b ram/kib 1%\n", "unit after ram/"},
		{"ram zero unit", "# w\na.b ram/0 1%\n", "unit after ram/"},
		{"ram huge unit", "# w\na.b ram/1073741825 1%\n", "unit after ram/"},
		{"ram no unit", "# w\na.b ram/ 1%\n", "unit after ram/"},
		{"duplicate", "# w\na.b min 1\n# w\na.b min 2\n", "already set on line 2"},
		{"slash in key", "# w\na/b min 1\n", "not allowed"},
		{"dotdot key", "# w\na..b min 1\n", "empty segment"},
		{"leading dot", "# w\n.a min 1\n", "empty segment"},
		{"trailing dot", "# w\na. min 1\n", "empty segment"},
		{"too many fields", "# w\na.b min 1 2 3 4 5 6 7 8 9\n", "at most 8"},
		{"long key", "# w\n" + strings.Repeat("a", 201) + " min 1\n", "1 to 200"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseProfile(c.text)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestParseProfileErrorNamesLine(t *testing.T) {
	_, err := parseProfile("# a\n\n# w\nok.key min 1\n\n# w\nbad.key nope 1\n")
	if err == nil || !strings.HasPrefix(err.Error(), "profile line 7:") {
		t.Fatalf("err = %v, want it to name line 7", err)
	}
}

// formatRules writes rules back in profile syntax, one explanation line each.
func formatRules(rules []rule) string {
	var b strings.Builder
	for _, r := range rules {
		fmt.Fprintf(&b, "# %s\n%s %s %s\n\n", r.Why, r.Key, r.Cmp, r.Value)
	}
	return b.String()
}

func FuzzParseProfile(f *testing.F) {
	f.Add(profileText)
	f.Add("# w\na.b min 1 * 3\n")
	f.Add("# w\na.b ram/page 12.5% 16.7% 25%\n# w\nc.d ram/512 5%\n")
	f.Add("# w\na.b range 10000 65535\n# w\nc exact 1\n# w\nd max 15\n")
	f.Add("# w\r\na.b min 1\r\n")
	f.Add("a.b min 1\n")
	f.Add("# w\na..b min 1\n")
	f.Add("# w\na.b ram/page 100.0000%\n")
	f.Add("# w\na.b min 18446744073709551615\n")
	f.Fuzz(func(t *testing.T, text string) {
		rules, err := parseProfile(text)
		if err != nil {
			return
		}
		seen := make(map[string]bool)
		for _, r := range rules {
			if checkKey(r.Key) != nil || strings.ContainsAny(r.Key, "/") || seen[r.Key] {
				t.Fatalf("accepted bad or duplicate key %q", r.Key)
			}
			seen[r.Key] = true
			if r.Why == "" || len(r.fields) > maxFields || (r.op == opPorts) != (len(r.fields) == 0) {
				t.Fatalf("accepted rule without explanation or with %d fields: %+v", len(r.fields), r)
			}
			if r.op == opPorts {
				again, err := parsePortSet(r.ports.String())
				if len(r.ports) == 0 || err != nil || !slices.Equal(again, r.ports) {
					t.Fatalf("ports rule %+v: list %q does not parse back (%v)", r, r.ports, err)
				}
			} else if r.ports != nil {
				t.Fatalf("rule %+v has ports", r)
			}
			if r.op == opRange && (len(r.fields) != 2 || r.fields[0].n > r.fields[1].n) {
				t.Fatalf("accepted bad range %+v", r)
			}
			for _, fl := range r.fields {
				if r.op == opRAM && !fl.any && (fl.n == 0 || fl.n > 100*fl.scale) {
					t.Fatalf("accepted RAM share %d/%d%%", fl.n, fl.scale)
				}
			}
			// Resolving against any host must not panic or overflow past RAM.
			h := host{ram: ^uint64(0), pageSize: 1}
			want, err := h.resolve(&r)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) != len(r.fields) {
				t.Fatalf("resolve changed the field count: %v vs %v", want, r.fields)
			}
		}
		// What parses, written back, parses to the same rules.
		again, err := parseProfile(formatRules(rules))
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if len(again) != len(rules) {
			t.Fatalf("re-parse: %d rules, want %d", len(again), len(rules))
		}
		for i := range rules {
			a, b := rules[i], again[i]
			if a.Entry != b.Entry || a.op != b.op || a.unit != b.unit || !slices.Equal(a.fields, b.fields) ||
				!slices.Equal(a.ports, b.ports) {
				t.Fatalf("re-parse changed rule %d:\n%+v\n%+v", i, a, b)
			}
		}
	})
}
