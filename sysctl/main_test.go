package sysctl

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testEnv is a process with the given euid and RLIMIT_NOFILE on 16 GiB test hosts. It refuses
// the real /proc/sys: these tests run as root on some machines, and apply would really write.
func testEnv(euid int, soft, hard uint64) mainEnv {
	return mainEnv{
		host: func(root string) host {
			if root == DefaultRoot {
				panic("test would use the live " + DefaultRoot + "; pass -root")
			}
			return testHost(root)
		},
		euid: euid, soft: soft, hard: hard,
		getenv: func(string) string { return "" }, // never the real environment
	}
}

// withEnv returns env with an environment holding the given key/value pairs.
func withEnv(env mainEnv, kv ...string) mainEnv {
	vars := make(map[string]string)
	for i := 0; i+1 < len(kv); i += 2 {
		vars[kv[i]] = kv[i+1]
	}
	env.getenv = func(k string) string { return vars[k] }
	return env
}

func runMain(t *testing.T, env mainEnv, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb, env)
	return code, out.String(), errb.String()
}

func TestMainShow(t *testing.T) {
	code, out, _ := runMain(t, testEnv(1000, 1024, 4096), "show")
	if code != ExitOK || out != ProfileText() {
		t.Fatalf("show: exit %d, output %d bytes, want the profile (%d bytes)", code, len(out), len(ProfileText()))
	}
}

func TestMainCheckShortExits1(t *testing.T) {
	root := fakeRoot(t, stockValues)
	code, out, errOut := runMain(t, testEnv(1000, 1<<20, 1<<20), "check", "-root", root)
	if code != ExitShort {
		t.Fatalf("exit %d, want %d\n%s%s", code, ExitShort, out, errOut)
	}
	lines := strings.Split(out, "\n")
	if h := strings.Fields(lines[0]); strings.Join(h, " ") != "KEY CURRENT WANTED STATUS" {
		t.Errorf("header %q", lines[0])
	}
	for _, want := range [][]string{
		{"net.core.somaxconn", "4096", ">=65535", "low"},
		{"net.ipv4.ip_local_port_range", "32768", "60999", "<=10000", ">=65535", "low"},
		{"net.ipv4.ip_local_reserved_ports", "-", "incl:8080,9090", "low"},
		{"net.ipv4.tcp_fin_timeout", "60", "<=15", "high"},
		{"fs.file-max", "2466170", ">=2097152", "ok"},
		{"RLIMIT_NOFILE", "soft=1048576", "hard=1048576", "hard>=1048576", "ok"},
	} {
		if !hasRow(lines, want) {
			t.Errorf("no row %v in\n%s", want, out)
		}
	}
	if !strings.Contains(out, "11 falling short") {
		t.Errorf("summary missing:\n%s", out)
	}
}

func hasRow(lines []string, fields []string) bool {
	for _, l := range lines {
		if strings.Join(strings.Fields(l), " ") == strings.Join(fields, " ") {
			return true
		}
	}
	return false
}

func TestMainCheckGoodExits0(t *testing.T) {
	root := fakeRoot(t, goodValues(t))
	code, out, errOut := runMain(t, testEnv(1000, 1<<20, 1<<20), "-root", root, "check") // flags before the subcommand
	if code != ExitOK {
		t.Fatalf("exit %d, want 0\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "0 falling short, 0 missing on this host, 0 errors") {
		t.Errorf("summary:\n%s", out)
	}
}

func TestMainCheckMissingIsNotFatal(t *testing.T) {
	root := fakeRoot(t, with(goodValues(t), "net.netfilter.nf_conntrack_max", ""))
	code, out, _ := runMain(t, testEnv(1000, 1<<20, 1<<20), "check", "-root", root)
	if code != ExitOK {
		t.Fatalf("exit %d, want 0 with a missing key\n%s", code, out)
	}
	if !hasRow(strings.Split(out, "\n"), []string{"net.netfilter.nf_conntrack_max", "-", ">=1677721", "missing"}) {
		t.Errorf("missing key not reported:\n%s", out)
	}
}

func TestMainCheckLowNOFILE(t *testing.T) {
	root := fakeRoot(t, goodValues(t))
	code, out, _ := runMain(t, testEnv(1000, 1024, 524288), "check", "-root", root)
	if code != ExitShort {
		t.Fatalf("exit %d, want 1 for a hard limit below %d\n%s", code, WantNOFILE, out)
	}
	if !hasRow(strings.Split(out, "\n"), []string{"RLIMIT_NOFILE", "soft=1024", "hard=524288", "hard>=1048576", "low"}) ||
		!strings.Contains(out, "LimitNOFILE=1048576") {
		t.Errorf("RLIMIT_NOFILE row or advice missing:\n%s", out)
	}
}

func TestMainCheckErrorsExit2(t *testing.T) {
	root := fakeRoot(t, with(goodValues(t), "net.core.somaxconn", "junk"))
	if code, out, _ := runMain(t, testEnv(0, 1<<20, 1<<20), "check", "-root", root); code != ExitError {
		t.Errorf("unreadable key: exit %d, want 2\n%s", code, out)
	}
	env := testEnv(0, 0, 0)
	env.nofileErr = errors.New("getrlimit failed")
	if code, out, _ := runMain(t, env, "check", "-root", fakeRoot(t, goodValues(t))); code != ExitError ||
		!strings.Contains(out, "error: getrlimit failed") {
		t.Errorf("getrlimit failure: exit %d, want 2\n%s", code, out)
	}
	if code, _, errOut := runMain(t, env, "check", "-root", filepath.Join(t.TempDir(), "nope")); code != ExitError || errOut == "" {
		t.Errorf("missing root: exit %d, stderr %q", code, errOut)
	}
}

func TestMainApplyDryRunWritesNothing(t *testing.T) {
	root := fakeRoot(t, stockValues)
	before := snapshot(t, root)
	code, out, errOut := runMain(t, testEnv(1000, 1024, 4096), "apply", "-dry-run", "-root", root)
	if code != ExitShort {
		t.Fatalf("exit %d, want 1 (something falls short)\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "would set net.core.somaxconn: 4096 -> 65535") || !strings.Contains(out, "nothing was written") {
		t.Errorf("output:\n%s", out)
	}
	if !maps.Equal(before, snapshot(t, root)) {
		t.Error("apply -dry-run wrote")
	}
}

func TestMainApplyNotRoot(t *testing.T) {
	root := fakeRoot(t, stockValues)
	before := snapshot(t, root)
	code, out, errOut := runMain(t, testEnv(1000, 1024, 4096), "apply", "-root", root)
	if code != ExitError {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(errOut, "needs root (running as uid 1000)") || !strings.Contains(errOut, "-dry-run") || out != "" {
		t.Errorf("stdout %q stderr %q", out, errOut)
	}
	if !maps.Equal(before, snapshot(t, root)) {
		t.Error("apply as non-root wrote")
	}
}

func TestMainApplyAsRoot(t *testing.T) {
	root := fakeRoot(t, with(stockValues, "net.netfilter.nf_conntrack_max", ""))
	code, out, errOut := runMain(t, testEnv(0, 1024, 4096), "apply", "-root", root)
	if code != ExitOK {
		t.Fatalf("exit %d, want 0\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "set net.core.somaxconn: 4096 -> 65535\n") {
		t.Errorf("output:\n%s", out)
	}
	if got := readKey(t, root, "net.core.somaxconn"); got != "65535" {
		t.Errorf("somaxconn = %q", got)
	}
	if got := readKey(t, root, "fs.file-max"); got != "2466170" {
		t.Errorf("file-max lowered to %q", got)
	}
	// Nothing left to do.
	code, out, _ = runMain(t, testEnv(0, 1024, 4096), "apply", "-root", root)
	if code != ExitOK || !strings.Contains(out, "nothing to change") {
		t.Errorf("second apply: exit %d\n%s", code, out)
	}
}

func TestMainApplyPersist(t *testing.T) {
	root := fakeRoot(t, with(stockValues, "net.netfilter.nf_conntrack_max", ""))
	path := filepath.Join(t.TempDir(), "90-wsgate.conf")
	code, out, errOut := runMain(t, testEnv(0, 1024, 4096), "apply", "-root", root, "-persist="+path)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	got := parseSysctlD(t, path)
	if got["net.core.somaxconn"] != "65535" || got["fs.file-max"] != "2466170" ||
		got["-net.netfilter.nf_conntrack_max"] != "1677721" || got["net.ipv4.ip_local_port_range"] != "10000 65535" ||
		got["net.ipv4.ip_local_reserved_ports"] != "8080,9090" {
		t.Errorf("persisted %v", got)
	}
	if len(got) != len(Profile()) {
		t.Errorf("persisted %d keys, profile has %d", len(got), len(Profile()))
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("persisted file mode: %v %v", fi, err)
	}
}

func TestMainApplyPersistDryRun(t *testing.T) {
	root := fakeRoot(t, stockValues)
	path := filepath.Join(t.TempDir(), "90-wsgate.conf")
	code, out, _ := runMain(t, testEnv(1000, 1024, 4096), "apply", "-root", root, "-dry-run", "-persist="+path)
	if code != ExitShort {
		t.Fatalf("exit %d", code)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("dry run created %s: %v", path, err)
	}
	if !strings.Contains(out, "would write "+path+":\n") || !strings.Contains(out, "\nnet.core.somaxconn = 65535\n") {
		t.Errorf("output:\n%s", out)
	}
}

func TestMainApplyPersistFailure(t *testing.T) {
	root := fakeRoot(t, goodValues(t))
	path := filepath.Join(t.TempDir(), "no-such-dir", "90-wsgate.conf")
	code, _, errOut := runMain(t, testEnv(0, 1024, 4096), "apply", "-root", root, "-persist="+path)
	if code != ExitError || !strings.Contains(errOut, "persist") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestMainUsage(t *testing.T) {
	root := fakeRoot(t, goodValues(t))
	cases := []struct {
		args []string
		code int
		err  string
	}{
		{nil, ExitError, "missing subcommand"},
		{[]string{"bogus"}, ExitError, "unknown subcommand"},
		{[]string{"show", "-root", root}, ExitError, "takes no flags"},
		{[]string{"show", "-addr", ":8080"}, ExitError, "takes no flags"},
		{[]string{"-h"}, ExitOK, "WSGATE_ADMIN_ADDR"},
		{[]string{"check", "-root", root, "-dry-run"}, ExitError, "belong to apply"},
		{[]string{"check", "-persist", "-root", root}, ExitError, "belong to apply"},
		{[]string{"check", "-root", root, "extra"}, ExitError, "unexpected argument"},
		{[]string{"check", "-nope"}, ExitError, "flag provided but not defined"},
		{[]string{"apply", "-persist="}, ExitError, "empty path"},
		{[]string{"apply", "-dry-run", "-root", root, "-persist", "/tmp/x.conf"}, ExitError, "unexpected argument"},
		{[]string{"-h"}, ExitOK, "usage: wsgate sysctl"},
		{[]string{"check", "-help"}, ExitOK, "exit status"},
	}
	for _, c := range cases {
		code, _, errOut := runMain(t, testEnv(0, 1<<20, 1<<20), c.args...)
		if code != c.code || !strings.Contains(errOut, c.err) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and %q", c.args, code, errOut, c.code, c.err)
		}
	}
}

func TestPersistFlag(t *testing.T) {
	var p persistFlag
	for _, c := range []struct{ in, want string }{
		{"true", DefaultPersistPath}, {"/tmp/x.conf", "/tmp/x.conf"}, {"false", ""},
	} {
		if err := p.Set(c.in); err != nil || p.path != c.want || p.String() != c.want {
			t.Errorf("Set(%q): path %q err %v, want %q", c.in, p.path, err, c.want)
		}
	}
	if !p.IsBoolFlag() {
		t.Error("-persist must work without a value")
	}
}

// TestMainPersistAlone proves "-persist" with no value means the default path, without writing
// there: a dry run only prints it.
func TestMainPersistAlone(t *testing.T) {
	root := fakeRoot(t, goodValues(t))
	code, out, errOut := runMain(t, testEnv(1000, 1024, 4096), "apply", "-root", root, "-dry-run", "-persist")
	if code != ExitOK || !strings.Contains(out, "would write "+DefaultPersistPath+":") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
}

// parseSysctlD reads a sysctl.d(5) file into key -> value (a leading "-" stays on the key).
func parseSysctlD(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string)
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("not an assignment: %q", line)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out
}

// Main itself, with the live process: show, and check against a fake root (check only reads).
func TestMainExported(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"show"}, &out, &errb); code != ExitOK || out.String() != ProfileText() {
		t.Errorf("Main show: exit %d", code)
	}
	out.Reset()
	if code := Main([]string{"check", "-root", fakeRoot(t, stockValues)}, &out, &errb); code != ExitShort ||
		!strings.Contains(out.String(), "net.core.somaxconn") || !strings.Contains(out.String(), "RLIMIT_NOFILE") {
		t.Errorf("Main check on a stock root: exit %d\n%s%s", code, out.String(), errb.String())
	}
}

// A listen port inside the ephemeral range and not reserved: the reserved-ports row falls short
// (the port is wanted there) and a warning after the table says why and how to fix it. The
// ports come from -addr/-admin-addr, else WSGATE_ADDR/WSGATE_ADMIN_ADDR, else the defaults.
func TestMainCheckListenPorts(t *testing.T) {
	wide := with(goodValues(t), "net.ipv4.ip_local_port_range", "1024 65535")
	root := fakeRoot(t, wide)
	env := testEnv(1000, 1<<20, 1<<20)

	// Defaults, reserved by the profile: nothing to say.
	code, out, errOut := runMain(t, env, "check", "-root", root)
	if code != ExitOK || strings.Contains(out, "warning:") {
		t.Fatalf("defaults: exit %d\n%s%s", code, out, errOut)
	}

	// From the environment, as the server reads it.
	code, out, _ = runMain(t, withEnv(env, "WSGATE_ADDR", ":18080"), "check", "-root", root)
	if code != ExitShort || !hasRow(strings.Split(out, "\n"), []string{"net.ipv4.ip_local_reserved_ports", "8080,9090", "incl:8080,9090,18080", "low"}) ||
		!strings.Contains(out, "\nwarning: listen port 18080 (WSGATE_ADDR :18080) is inside net.ipv4.ip_local_port_range 1024-65535") ||
		!strings.Contains(out, "net.ipv4.ip_local_reserved_ports=8080,9090,18080") || strings.Count(out, "warning:") != 1 {
		t.Errorf("WSGATE_ADDR: exit %d\n%s", code, out)
	}

	// A flag wins over the environment; an empty -admin-addr is no admin listener.
	code, out, _ = runMain(t, withEnv(env, "WSGATE_ADDR", ":18080", "WSGATE_ADMIN_ADDR", ":19090"),
		"check", "-root", root, "-addr", "0.0.0.0:28080", "-admin-addr", "")
	if code != ExitShort || !strings.Contains(out, "warning: listen port 28080 (-addr 0.0.0.0:28080)") ||
		strings.Contains(out, "18080") || strings.Contains(out, "19090") ||
		!hasRow(strings.Split(out, "\n"), []string{"net.ipv4.ip_local_reserved_ports", "8080,9090", "incl:8080,9090,28080", "low"}) {
		t.Errorf("flags over env: exit %d\n%s", code, out)
	}
	code, out, _ = runMain(t, withEnv(env, "WSGATE_ADMIN_ADDR", "127.0.0.1:19090"), "check", "-root", root)
	if code != ExitShort || !strings.Contains(out, "warning: listen port 19090 (WSGATE_ADMIN_ADDR 127.0.0.1:19090)") {
		t.Errorf("WSGATE_ADMIN_ADDR: exit %d\n%s", code, out)
	}

	// Outside the range: the port is still wanted in the list (the range may be widened later),
	// but there is no warning.
	code, out, _ = runMain(t, env, "check", "-root", fakeRoot(t, goodValues(t)), "-addr", ":8443")
	if code != ExitShort || strings.Contains(out, "warning:") ||
		!hasRow(strings.Split(out, "\n"), []string{"net.ipv4.ip_local_reserved_ports", "8080,9090", "incl:8080,8443,9090", "low"}) {
		t.Errorf("port outside the range: exit %d\n%s", code, out)
	}

	// apply with the same address reserves the port, merged with the list; check is then clean.
	code, out, errOut = runMain(t, testEnv(0, 1<<20, 1<<20), "apply", "-root", root, "-addr", ":18080")
	if code != ExitOK || !strings.Contains(out, "set net.ipv4.ip_local_reserved_ports: 8080,9090 -> 8080,9090,18080\n") {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runMain(t, withEnv(env, "WSGATE_ADDR", ":18080"), "check", "-root", root)
	if code != ExitOK || strings.Contains(out, "warning:") {
		t.Errorf("after apply: exit %d\n%s", code, out)
	}

	// Port 0 is the kernel's choice: nothing to reserve.
	if code, out, _ := runMain(t, env, "check", "-root", root, "-addr", "127.0.0.1:0"); code != ExitOK || strings.Contains(out, "warning:") {
		t.Errorf("port 0: exit %d\n%s", code, out)
	}
}

func TestMainBadListenAddress(t *testing.T) {
	root := fakeRoot(t, goodValues(t))
	for _, c := range []struct {
		env  mainEnv
		args []string
		err  string
	}{
		{testEnv(1000, 1<<20, 1<<20), []string{"check", "-root", root, "-addr", "8080"}, `wsgate sysctl check: -addr "8080"`},
		{testEnv(0, 1<<20, 1<<20), []string{"apply", "-root", root, "-admin-addr", ":99999"}, `wsgate sysctl apply: -admin-addr ":99999"`},
		{withEnv(testEnv(1000, 1<<20, 1<<20), "WSGATE_ADDR", "localhost"), []string{"check", "-root", root}, `WSGATE_ADDR "localhost"`},
	} {
		before := snapshot(t, root)
		code, out, errOut := runMain(t, c.env, c.args...)
		if code != ExitError || !strings.Contains(errOut, c.err) || out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and %q", c.args, code, out, errOut, c.err)
		}
		if !maps.Equal(before, snapshot(t, root)) {
			t.Errorf("%q wrote", c.args)
		}
	}
}

func TestMainApplyPersistListenPorts(t *testing.T) {
	root := fakeRoot(t, stockValues)
	path := filepath.Join(t.TempDir(), "90-wsgate.conf")
	code, out, errOut := runMain(t, withEnv(testEnv(0, 1024, 4096), "WSGATE_ADMIN_ADDR", ":19090"), "apply", "-root", root, "-persist="+path)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if got := parseSysctlD(t, path)["net.ipv4.ip_local_reserved_ports"]; got != "8080,9090,19090" {
		t.Errorf("persisted reserved ports %q", got)
	}
	if got := readKey(t, root, "net.ipv4.ip_local_reserved_ports"); got != "8080,9090,19090" {
		t.Errorf("reserved ports %q after apply", got)
	}
}
