package sysctl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPersistTextMergesAndMarksMissing(t *testing.T) {
	root := fakeRoot(t, with(stockValues,
		"net.netfilter.nf_conntrack_max", "",
		"net.ipv4.tcp_rmem", "8192 4096 33554432",
	))
	text, err := testHost(root).persistText(parsedProfile(), "/etc/sysctl.d/90-wsgate.conf")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "out.conf")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	got := parseSysctlD(t, path)
	want := map[string]string{
		"fs.file-max":                      "2466170", // already higher: kept
		"fs.nr_open":                       "2097152",
		"net.core.somaxconn":               "65535",
		"net.ipv4.ip_local_port_range":     "10000 65535",
		"net.ipv4.ip_local_reserved_ports": "8080,9090",
		"net.ipv4.tcp_mem":                 "524288 700448 1048576",
		"net.ipv4.tcp_rmem":                "8192 131072 33554432", // "*" field and higher field kept
		"net.ipv4.tcp_fin_timeout":         "15",
		"net.ipv4.tcp_tw_reuse":            "1",
		"-net.netfilter.nf_conntrack_max":  "1677721", // absent: ignored at boot if still absent
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(Profile()) {
		t.Errorf("%d keys written, want %d", len(got), len(Profile()))
	}
	if !strings.Contains(text, "Computed for 16.0 GiB of RAM") || !strings.HasPrefix(text, "# /etc/sysctl.d/90-wsgate.conf: written by") {
		t.Errorf("header:\n%s", text)
	}
}

func TestPersistTextMissingKeyWithAnyField(t *testing.T) {
	rules := mustParse(t, "# w\na.key min * 5\n# w\nb.key min 7\n")
	text, err := testHost(t.TempDir()).persistText(rules, "x")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "# a.key: absent when written") || !strings.Contains(text, "\n-b.key = 7\n") {
		t.Errorf("text:\n%s", text)
	}
}

func TestPersistTextUnreadableKeyFails(t *testing.T) {
	root := fakeRoot(t, with(goodValues(t), "net.core.somaxconn", "junk"))
	if _, err := testHost(root).persistText(parsedProfile(), "x"); err == nil || !strings.Contains(err.Error(), "net.core.somaxconn") {
		t.Errorf("err = %v", err)
	}
}

func TestPersistFrom(t *testing.T) {
	root := fakeRoot(t, stockValues)
	dir := t.TempDir()
	path := filepath.Join(dir, "90-wsgate.conf")
	if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := PersistFrom(root, path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := liveHost(root).persistText(parsedProfile(), path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Errorf("file:\n%s\nwant:\n%s", b, want)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v %v, want 0644", fi.Mode(), err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("directory holds %v (%v), want only the file: a temporary file was left", entries, err)
	}
}

func TestPersistFromFailures(t *testing.T) {
	dir := t.TempDir()
	if err := PersistFrom(fakeRoot(t, stockValues), filepath.Join(dir, "missing", "x.conf")); err == nil {
		t.Error("persist into a missing directory succeeded")
	}
	// An unreadable key: nothing is written at all.
	path := filepath.Join(dir, "x.conf")
	if err := PersistFrom(fakeRoot(t, with(stockValues, "fs.nr_open", "?")), path); err == nil {
		t.Error("persist with an unreadable key succeeded")
	}
	if err := PersistFrom(filepath.Join(dir, "noroot"), path); err == nil {
		t.Error("persist from a missing root succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed persists left %v", entries)
	}
}

// Persist reads the live /proc/sys (reading only) and writes where it is told.
func TestPersistLive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "90-wsgate.conf")
	if err := Persist(path); err != nil {
		t.Fatal(err)
	}
	got := parseSysctlD(t, path)
	for _, e := range Profile() {
		if _, ok := got[e.Key]; !ok {
			if _, ok := got["-"+e.Key]; !ok {
				t.Errorf("%s not written", e.Key)
			}
		}
	}
}
