package sysctl

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	testRAM  = 16 << 30 // the fake hosts have 16 GiB of RAM
	testPage = 4096
)

// stockValues is a stock kernel on a 24 GiB host, as /proc/sys shows it (tab-separated fields),
// with the conntrack module loaded.
var stockValues = map[string]string{
	"fs.file-max":                        "2466170",
	"fs.nr_open":                         "1048576",
	"fs.epoll.max_user_watches":          "5491511",
	"net.core.somaxconn":                 "4096",
	"net.ipv4.tcp_max_syn_backlog":       "2048",
	"net.ipv4.tcp_syncookies":            "1",
	"net.core.netdev_max_backlog":        "1000",
	"net.ipv4.ip_local_port_range":       "32768\t60999",
	"net.ipv4.ip_local_reserved_ports":   "", // nothing reserved: the file holds only a newline
	"net.ipv4.tcp_mem":                   "287898\t383867\t575796",
	"net.ipv4.tcp_rmem":                  "4096\t131072\t6291456",
	"net.ipv4.tcp_wmem":                  "4096\t16384\t4194304",
	"net.ipv4.tcp_fin_timeout":           "60",
	"net.ipv4.tcp_tw_reuse":              "2",
	"net.ipv4.tcp_slow_start_after_idle": "1",
	"net.netfilter.nf_conntrack_max":     "262144",
}

// goodValues is a 16 GiB host that meets the profile exactly: every compared field at its
// wanted value, every "*" field at one page, exactly the profile's reserved ports.
func goodValues(t testing.TB) map[string]string {
	t.Helper()
	h := testHost("")
	out := make(map[string]string)
	for _, r := range parsedProfile() {
		if r.op == opPorts {
			out[r.Key] = r.ports.String()
			continue
		}
		want, err := h.resolve(&r)
		if err != nil {
			t.Fatalf("resolve %s: %v", r.Key, err)
		}
		v := make([]uint64, len(want))
		for i, w := range want {
			v[i] = w.n
			if w.any {
				v[i] = testPage
			}
		}
		out[r.Key] = formatValue(v)
	}
	return out
}

// with returns a copy of m with the given key/value pairs set; an empty value deletes the key.
func with(m map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

// fakeRoot builds a sysctl tree in a temporary directory: key "net.core.somaxconn" becomes
// <root>/net/core/somaxconn holding the value and a newline, as the kernel prints it.
func fakeRoot(t testing.TB, vals map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for k, v := range vals {
		p := filepath.Join(root, strings.ReplaceAll(k, ".", "/"))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// readKey returns the fields of key under root joined by single spaces, "" if it does not exist.
func readKey(t testing.TB, root, key string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, strings.ReplaceAll(key, ".", "/")))
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

// snapshot returns every file under root with its content, to prove nothing was written.
func snapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	out := make(map[string]string)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = string(b) + "|" + fi.ModTime().String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func testHost(root string) host { return host{root: root, ram: testRAM, pageSize: testPage} }

// resultFor finds key in results.
func resultFor(t testing.TB, results []Result, key string) Result {
	t.Helper()
	for _, r := range results {
		if r.Key == key {
			return r
		}
	}
	t.Fatalf("no result for %s in %v", key, results)
	return Result{}
}

// mustParse parses a test profile.
func mustParse(t testing.TB, text string) []rule {
	t.Helper()
	rules, err := parseProfile(text)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	return rules
}
