package sysctl

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestPortSetParseAndFormat(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "",
		"8080":                   "8080",
		"9090,8080":              "8080,9090",
		"8080,8080":              "8080",
		"8080-8090,8085,8091":    "8080-8091", // overlapping and adjacent ranges merge
		"1-3,5,4":                "1-5",
		"9090,1000-1005,22":      "22,1000-1005,9090",
		"0-65535,80":             "0-65535",
		"65535,65534":            "65534-65535",
		"30000-30010,8080,30005": "8080,30000-30010",
	} {
		got, err := parsePortSet(in)
		if err != nil || got.String() != want {
			t.Errorf("parsePortSet(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{",", "8080,", ",8080", "a", "80a", "-1", "70000", "65536", "9-8", "5-", "-5", "1-2-3", "8080 9090", "+80"} {
		if got, err := parsePortSet(bad); err == nil {
			t.Errorf("parsePortSet(%q) = %q, want an error", bad, got)
		}
	}
}

func TestPortSetContainsAndUnion(t *testing.T) {
	s, err := parsePortSet("22,8000-8099,9090")
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[uint16]bool{22: true, 23: false, 7999: false, 8000: true, 8080: true, 8099: true, 8100: false, 9090: true} {
		if s.contains(p) != want {
			t.Errorf("contains(%d) = %v", p, !want)
		}
	}
	want := func(v string) portSet {
		t.Helper()
		p, err := parsePortSet(v)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if !s.containsAll(want("8080,9090")) || !s.containsAll(want("8000-8099")) || !s.containsAll(nil) {
		t.Error("containsAll misses a subset")
	}
	if s.containsAll(want("8080,9091")) || s.containsAll(want("7999-8001")) || s.containsAll(want("8050-8100")) {
		t.Error("containsAll accepts a set with a port outside")
	}
	u := s.union(want("8100,9000-9089,21"))
	if u.String() != "21-22,8000-8100,9000-9090" {
		t.Errorf("union = %q", u)
	}
	if s.String() != "22,8000-8099,9090" {
		t.Errorf("union modified its receiver: %q", s)
	}
	if got := portSet(nil).withPorts(9090, 8080, 8080).String(); got != "8080,9090" {
		t.Errorf("withPorts = %q", got)
	}
}

// The host's reserved list is judged as a set: ranges and extra ports that cover the wanted
// ports are fine, whatever order they are listed in.
func TestCheckReservedPortsContained(t *testing.T) {
	for cur, want := range map[string]string{
		"8080,9090":                 StatusOK,
		"9090,8080":                 StatusOK,
		"22,8000-8099,9000-9999":    StatusOK,
		"0-65535":                   StatusOK,
		"8080":                      StatusLow,
		"9090,30000-30010":          StatusLow,
		"8081-9089":                 StatusLow,
		"":                          StatusLow,
		"8080,nope":                 "error: ",
		"8080,9090,70000":           "error: ",
		"8080,9090\t1000":           "error: ", // blanks are no separator: "8080,90901000"
		"8080-8079,9090":            "error: ",
		"8080,9090,9090,8080,10-20": StatusOK,
	} {
		root := fakeRoot(t, goodValues(t))
		writeKey(t, root, "net.ipv4.ip_local_reserved_ports", cur)
		results, err := testHost(root).check(parsedProfile())
		if err != nil {
			t.Fatal(err)
		}
		r := resultFor(t, results, "net.ipv4.ip_local_reserved_ports")
		if !strings.HasPrefix(r.Status, want) || r.Wanted != "incl:8080,9090" {
			t.Errorf("reserved %q: %+v, want status %q", cur, r, want)
		}
	}
}

// Apply writes the union: the host's own reserved ports and ranges stay, the missing wanted ones
// are added, and a second apply has nothing to do.
func TestApplyMergesReservedPorts(t *testing.T) {
	for cur, merged := range map[string]string{
		"":                    "8080,9090",
		"22,30000-30010":      "22,8080,9090,30000-30010",
		"9090":                "8080,9090",
		"9000-9100,8081":      "8080-8081,9000-9100",
		"50000,8080,1-1023":   "1-1023,8080,9090,50000",
		"8079,8081,9089,9091": "8079-8081,9089-9091",
	} {
		root := fakeRoot(t, goodValues(t))
		writeKey(t, root, "net.ipv4.ip_local_reserved_ports", cur)
		h := testHost(root)
		changes, results, err := h.apply(parsedProfile(), false)
		if err != nil {
			t.Fatal(err)
		}
		want := []Change{{"net.ipv4.ip_local_reserved_ports", normalized(t, cur), merged}}
		if !slices.Equal(changes, want) {
			t.Errorf("reserved %q: changes %v, want %v", cur, changes, want)
		}
		if got := readKey(t, root, "net.ipv4.ip_local_reserved_ports"); got != merged {
			t.Errorf("reserved %q: %q on disk, want %q", cur, got, merged)
		}
		if r := resultFor(t, results, "net.ipv4.ip_local_reserved_ports"); r.Status != StatusOK || r.Current != merged {
			t.Errorf("reserved %q: read back %+v", cur, r)
		}
		before := snapshot(t, root)
		if changes, _, err := h.apply(parsedProfile(), false); err != nil || len(changes) != 0 {
			t.Errorf("second apply: %v %v", changes, err)
		}
		if !maps.Equal(before, snapshot(t, root)) {
			t.Error("second apply wrote")
		}
	}
}

// An unparsable reserved list is an error and is never overwritten: apply cannot merge with a
// list it does not understand.
func TestApplyLeavesUnparsableReservedPorts(t *testing.T) {
	root := fakeRoot(t, with(goodValues(t), "net.ipv4.ip_local_reserved_ports", "8080;9090"))
	before := snapshot(t, root)
	changes, results, err := testHost(root).apply(parsedProfile(), false)
	if err != nil || len(changes) != 0 {
		t.Fatalf("changes %v, err %v", changes, err)
	}
	if r := resultFor(t, results, "net.ipv4.ip_local_reserved_ports"); !r.Failed() {
		t.Errorf("%+v, want an error", r)
	}
	if !maps.Equal(before, snapshot(t, root)) {
		t.Error("apply overwrote a list it could not parse")
	}
}

// The deployment's listen ports join the wanted list, for check, apply and persist alike.
func TestListenPortsJoinWantedList(t *testing.T) {
	root := fakeRoot(t, goodValues(t))
	h := testHost(root)
	h.listen = []uint16{18080, 9090}
	results, err := h.check(parsedProfile())
	if err != nil {
		t.Fatal(err)
	}
	if r := resultFor(t, results, "net.ipv4.ip_local_reserved_ports"); r.Status != StatusLow || r.Wanted != "incl:8080,9090,18080" {
		t.Errorf("%+v", r)
	}
	text, err := h.persistText(parsedProfile(), "x")
	if err != nil || !strings.Contains(text, "\nnet.ipv4.ip_local_reserved_ports = 8080,9090,18080\n") {
		t.Errorf("persist: %v\n%s", err, text)
	}
	// Missing on the host (kernels before 2.6.35): persisted with "-", listen ports included.
	missing := testHost(fakeRoot(t, with(goodValues(t), "net.ipv4.ip_local_reserved_ports", "")))
	missing.listen = h.listen
	if text, err := missing.persistText(parsedProfile(), "x"); err != nil ||
		!strings.Contains(text, "\n-net.ipv4.ip_local_reserved_ports = 8080,9090,18080\n") {
		t.Errorf("persist of a missing key: %v\n%s", err, text)
	}
	changes, _, err := h.apply(parsedProfile(), false)
	if err != nil || !slices.Equal(changes, []Change{{"net.ipv4.ip_local_reserved_ports", "8080,9090", "8080,9090,18080"}}) {
		t.Errorf("apply: %v %v", changes, err)
	}
}

func TestListenPortWarnings(t *testing.T) {
	defaults := []Listener{{"-addr", DefaultAddr}, {"-admin-addr", DefaultAdminAddr}}
	cases := []struct {
		name      string
		vals      map[string]string
		listeners []Listener
		want      []string // one substring per expected warning, in order
	}{
		{"profile range: defaults below it", goodValues(t), defaults, nil},
		{"stock range", stockValues, defaults, nil},
		{"wide range, listen ports not reserved", with(goodValues(t), "net.ipv4.ip_local_port_range", "1024 65535",
			"net.ipv4.ip_local_reserved_ports", "22"), defaults, []string{
			`listen port 8080 (-addr 127.0.0.1:8080) is inside net.ipv4.ip_local_port_range 1024-65535 and not in net.ipv4.ip_local_reserved_ports (which lists 22)`,
			`listen port 9090 (-admin-addr 127.0.0.1:9090) is inside`,
		}},
		{"wide range, both reserved", with(goodValues(t), "net.ipv4.ip_local_port_range", "1024 65535",
			"net.ipv4.ip_local_reserved_ports", "8000-9999"), defaults, nil},
		{"wide range, one reserved", with(goodValues(t), "net.ipv4.ip_local_port_range", "1024 65535",
			"net.ipv4.ip_local_reserved_ports", "8080"), defaults, []string{
			`listen port 9090 (-admin-addr 127.0.0.1:9090) is inside net.ipv4.ip_local_port_range 1024-65535 and not in net.ipv4.ip_local_reserved_ports (which lists 8080)`,
		}},
		{"port at the range's edges", with(goodValues(t), "net.ipv4.ip_local_reserved_ports", "8080,9090"),
			[]Listener{{"-addr", ":10000"}, {"-admin-addr", "[::1]:65535"}, {"x", ":9999"}},
			[]string{"listen port 10000 (-addr :10000)", "listen port 65535 (-admin-addr [::1]:65535)"}},
		{"disabled, port 0 and unparsable addresses are skipped", with(goodValues(t), "net.ipv4.ip_local_port_range", "1 65535"),
			[]Listener{{"-addr", ":0"}, {"-admin-addr", ""}, {"x", "no-port"}, {"y", ":99999"}}, nil},
		{"range missing", with(goodValues(t), "net.ipv4.ip_local_port_range", ""), defaults, nil},
		{"reserved list missing (old kernel)", with(goodValues(t), "net.ipv4.ip_local_port_range", "1024 65535",
			"net.ipv4.ip_local_reserved_ports", ""), defaults[:1], []string{`listen port 8080 (-addr 127.0.0.1:8080) is inside net.ipv4.ip_local_port_range 1024-65535 and not in net.ipv4.ip_local_reserved_ports (which lists nothing)`}},
		{"range unreadable", with(goodValues(t), "net.ipv4.ip_local_port_range", "1024"), defaults,
			[]string{"cannot tell whether the listen ports are safe"}},
		{"reserved list unparsable", with(goodValues(t), "net.ipv4.ip_local_port_range", "1024 65535",
			"net.ipv4.ip_local_reserved_ports", "80;90"), defaults, []string{"net.ipv4.ip_local_reserved_ports"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			warn := testHost(fakeRoot(t, c.vals)).listenPortWarnings(c.listeners)
			if len(warn) != len(c.want) {
				t.Fatalf("%d warnings, want %d: %q", len(warn), len(c.want), warn)
			}
			for i, w := range c.want {
				if !strings.Contains(warn[i], w) {
					t.Errorf("warning %d: %q, want it to contain %q", i, warn[i], w)
				}
			}
		})
	}
}

// A warning names the symptom and the complete command that fixes it: the host's list with the
// exposed ports added, never a list that would drop what the host reserved.
func TestListenPortWarningSaysHow(t *testing.T) {
	root := fakeRoot(t, with(goodValues(t), "net.ipv4.ip_local_port_range", "1024 65535",
		"net.ipv4.ip_local_reserved_ports", "22,30000-30010"))
	warn := ListenPortWarnings(root, Listener{"-addr", ":8080"}, Listener{"-admin-addr", "127.0.0.1:9090"})
	if len(warn) != 2 {
		t.Fatalf("%q", warn)
	}
	for _, w := range warn {
		for _, frag := range []string{
			`bind: address already in use`, "TIME_WAIT",
			"sudo sysctl -w net.ipv4.ip_local_reserved_ports=22,8080,9090,30000-30010",
			"wsgate sysctl apply", "docs/tuning.md",
		} {
			if !strings.Contains(w, frag) {
				t.Errorf("warning lacks %q: %s", frag, w)
			}
		}
	}
	if warn := ListenPortWarnings(filepath.Join(t.TempDir(), "nope"), Listener{"-addr", ":8080"}); len(warn) != 0 {
		t.Errorf("no sysctl root at all: %q", warn)
	}
}

// writeKey replaces key's file under root with value and a newline; unlike with(), it can
// leave a key present and empty, as the kernel shows a list with nothing in it.
func writeKey(t testing.TB, root, key, value string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, strings.ReplaceAll(key, ".", "/")), []byte(value+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// normalized returns a port list as the kernel prints it back.
func normalized(t testing.TB, list string) string {
	t.Helper()
	s, err := parsePortSet(list)
	if err != nil {
		t.Fatal(err)
	}
	return s.String()
}
