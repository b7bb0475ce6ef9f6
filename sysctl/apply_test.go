package sysctl

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestApplyRaisesOnlyWhatFallsShort(t *testing.T) {
	vals := with(stockValues,
		"net.ipv4.ip_local_port_range", "5000 61000", // low end already wider: kept
		"net.ipv4.tcp_rmem", "8192 4096 33554432", // first field is never touched, third is higher
		"net.ipv4.tcp_mem", "100 900000 2000000", // only the first field is low
	)
	root := fakeRoot(t, vals)
	h := testHost(root)
	changes, results, err := h.apply(parsedProfile(), false)
	if err != nil {
		t.Fatal(err)
	}
	wantChanges := []Change{
		{"fs.nr_open", "1048576", "2097152"},
		{"net.core.somaxconn", "4096", "65535"},
		{"net.ipv4.tcp_max_syn_backlog", "2048", "65535"},
		{"net.core.netdev_max_backlog", "1000", "16384"},
		{"net.ipv4.ip_local_port_range", "5000 61000", "5000 65535"},
		{"net.ipv4.ip_local_reserved_ports", "", "8080,9090"},
		{"net.ipv4.tcp_mem", "100 900000 2000000", "524288 900000 2000000"},
		{"net.ipv4.tcp_rmem", "8192 4096 33554432", "8192 131072 33554432"},
		{"net.ipv4.tcp_fin_timeout", "60", "15"},
		{"net.ipv4.tcp_tw_reuse", "2", "1"},
		{"net.ipv4.tcp_slow_start_after_idle", "1", "0"},
		{"net.netfilter.nf_conntrack_max", "262144", "1677721"},
	}
	if !slices.Equal(changes, wantChanges) {
		t.Errorf("changes:\n got %v\nwant %v", changes, wantChanges)
	}
	for _, c := range wantChanges {
		if got := readKey(t, root, c.Key); got != c.To {
			t.Errorf("%s on disk = %q, want %q", c.Key, got, c.To)
		}
	}
	// Values that were already better are untouched.
	for _, key := range []string{"fs.file-max", "fs.epoll.max_user_watches", "net.ipv4.tcp_wmem", "net.ipv4.tcp_syncookies"} {
		if got, want := readKey(t, root, key), strings.Join(strings.Fields(vals[key]), " "); got != want {
			t.Errorf("%s changed from %q to %q", key, want, got)
		}
	}
	for _, r := range results {
		if r.Status != StatusOK {
			t.Errorf("after apply: %+v", r)
		}
	}
	// Applying again changes nothing.
	changes, _, err = h.apply(parsedProfile(), false)
	if err != nil || len(changes) != 0 {
		t.Errorf("second apply: %v %v", changes, err)
	}
}

func TestApplyNeverLowersAHigherValue(t *testing.T) {
	better := with(goodValues(t),
		"fs.file-max", "9223372036854775807",
		"fs.nr_open", "1073741816",
		"net.core.somaxconn", "4194304",
		"net.ipv4.tcp_mem", "3000000 4000000 5000000",
		"net.ipv4.ip_local_port_range", "1024 65535",
		"net.ipv4.ip_local_reserved_ports", "8080-8090,9000-9999",
		"net.ipv4.tcp_fin_timeout", "3",
	)
	root := fakeRoot(t, better)
	before := snapshot(t, root)
	changes, results, err := testHost(root).apply(parsedProfile(), false)
	if err != nil || len(changes) != 0 {
		t.Fatalf("apply on a better host: changes %v, err %v", changes, err)
	}
	if after := snapshot(t, root); !maps.Equal(before, after) {
		t.Error("apply wrote to a host that needed nothing")
	}
	for _, r := range results {
		if r.Status != StatusOK {
			t.Errorf("%+v", r)
		}
	}
}

func TestApplyDryRunWritesNothing(t *testing.T) {
	root := fakeRoot(t, with(stockValues, "net.netfilter.nf_conntrack_max", ""))
	before := snapshot(t, root)
	h := testHost(root)
	changes, results, err := h.apply(parsedProfile(), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) == 0 {
		t.Fatal("dry run on a stock host reports no changes")
	}
	if after := snapshot(t, root); !maps.Equal(before, after) {
		t.Errorf("dry run wrote:\nbefore %v\nafter  %v", before, after)
	}
	checked, err := h.check(parsedProfile())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(results, checked) {
		t.Errorf("dry-run results differ from check:\n%v\n%v", results, checked)
	}
	// The changes are exactly what a real apply then does.
	real, _, err := h.apply(parsedProfile(), false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(changes, real) {
		t.Errorf("dry run promised %v, apply did %v", changes, real)
	}
}

func TestApplyMissingKeysNotFatal(t *testing.T) {
	root := fakeRoot(t, with(stockValues, "net.netfilter.nf_conntrack_max", ""))
	_, results, err := testHost(root).apply(parsedProfile(), false)
	if err != nil {
		t.Fatalf("a missing key made apply fail: %v", err)
	}
	if r := resultFor(t, results, "net.netfilter.nf_conntrack_max"); r.Status != StatusMissing {
		t.Errorf("%+v, want missing", r)
	}
	if _, err := os.Stat(filepath.Join(root, "net", "netfilter")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("apply created the missing key's directory or file: %v", err)
	}
}

// A key whose file cannot be written (here a read-only sysctl of the running kernel, which
// refuses writes even from root) is reported and does not stop the other keys.
func TestApplyWriteErrorIsReported(t *testing.T) {
	const readOnly = "/proc/sys/kernel/ngroups_max" // mode 0444; open for writing fails with EACCES
	if _, err := os.Stat(readOnly); err != nil {
		t.Fatalf("this test needs %s: %v", readOnly, err)
	}
	rules := mustParse(t, "# w\nro.key min 18446744073709551615\n# w\nrw.key min 10\n")
	root := fakeRoot(t, map[string]string{"rw.key": "1"})
	if err := os.Mkdir(filepath.Join(root, "ro"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(readOnly, filepath.Join(root, "ro", "key")); err != nil {
		t.Fatal(err)
	}
	changes, results, err := testHost(root).apply(rules, false)
	if err == nil || !strings.Contains(err.Error(), "set ro.key") {
		t.Fatalf("err = %v, want the failed write of ro.key", err)
	}
	if r := resultFor(t, results, "ro.key"); !r.Failed() || !strings.Contains(r.Status, "write:") {
		t.Errorf("ro.key: %+v", r)
	}
	if !slices.Equal(changes, []Change{{"rw.key", "1", "10"}}) {
		t.Errorf("changes = %v, want only rw.key", changes)
	}
	if got := readKey(t, root, "rw.key"); got != "10" {
		t.Errorf("rw.key = %q after apply", got)
	}
}

func TestApplyRootErrors(t *testing.T) {
	if _, _, err := Apply(filepath.Join(t.TempDir(), "nope"), true); err == nil {
		t.Error("Apply on a missing root succeeded")
	}
}

// Apply (exported) on a fake root in a dry run: same changes as the test host for everything
// that does not depend on RAM, and nothing written.
func TestApplyExportedDryRun(t *testing.T) {
	root := fakeRoot(t, stockValues)
	before := snapshot(t, root)
	changes, _, err := Apply(root, true)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(changes))
	for _, c := range changes {
		keys = append(keys, c.Key)
	}
	if !slices.Contains(keys, "net.core.somaxconn") || !slices.Contains(keys, "net.ipv4.tcp_fin_timeout") {
		t.Errorf("changes %v", changes)
	}
	if !maps.Equal(before, snapshot(t, root)) {
		t.Error("dry run wrote")
	}
}
