package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseInherited(t *testing.T) {
	h, err := parseInherited("ready=3;listen=4,5;admin=6")
	if err != nil || h.ready != 3 || len(h.listen) != 2 || h.listen[1] != 5 || h.admin != 6 {
		t.Fatalf("%+v %v", h, err)
	}
	if h.String() != "ready=3;listen=4,5;admin=6" {
		t.Fatalf("String %q", h.String())
	}
	if h, err := parseInherited("ready=3;listen=4;admin=-1"); err != nil || h.admin != -1 {
		t.Fatalf("no admin: %+v %v", h, err)
	}
	for _, bad := range []string{"", "ready=3", "ready=3;listen=4", "ready=3;listen=;admin=-1", "ready=2;listen=4;admin=-1",
		"ready=3;listen=3;admin=-1", "ready=3;listen=4;admin=5;x=1", "ready=3;ready=3;listen=4;admin=-1", "ready=a;listen=4;admin=-1"} {
		if _, err := parseInherited(bad); err == nil || !strings.Contains(err.Error(), upgradeEnv) {
			t.Errorf("%q: %v, want an error naming %s", bad, err, upgradeEnv)
		}
	}
}

func FuzzParseInherited(f *testing.F) {
	for _, s := range []string{"ready=3;listen=4,5;admin=6", "ready=3;listen=4;admin=-1", "", ";;", "ready=3;listen=4,4;admin=-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseInherited(s)
		if err != nil {
			return
		}
		// What parses names distinct descriptors above stdio and prints back to itself.
		seen := map[int]bool{h.ready: true}
		for _, fd := range append(append([]int(nil), h.listen...), h.admin) {
			if fd == -1 && fd == h.admin {
				continue
			}
			if fd < 3 || seen[fd] {
				t.Fatalf("%q: bad or repeated descriptor %d in %+v", s, fd, h)
			}
			seen[fd] = true
		}
		if h.ready < 3 || len(h.listen) == 0 {
			t.Fatalf("%q parsed to %+v", s, h)
		}
		again, err := parseInherited(h.String())
		if err != nil || again.String() != h.String() {
			t.Fatalf("%q: round trip %q: %+v %v", s, h.String(), again, err)
		}
	})
}

func TestParseEnvFile(t *testing.T) {
	vars, err := parseEnvFile([]byte("# comment\n; also\n\nWSGATE_A=1\nexport WSGATE_B = \"two words\"\nWSGATE_C='x=y'\r\nWSGATE_D=\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"WSGATE_A": "1", "WSGATE_B": "two words", "WSGATE_C": "x=y", "WSGATE_D": ""}
	for k, v := range want {
		if vars[k] != v {
			t.Errorf("%s=%q, want %q", k, vars[k], v)
		}
	}
	for _, bad := range []string{"NOEQUALS", "1X=2", "A-B=1", "=x"} {
		if _, err := parseEnvFile([]byte("WSGATE_OK=1\n" + bad + "\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%q: %v, want an error naming line 2", bad, err)
		}
	}
}

func FuzzParseEnvFile(f *testing.F) {
	for _, s := range []string{"A=1\n", "# c\nexport B=\"x\"\n", "C='q'\n", "bad line", "=\n", "D= e \r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		vars, err := parseEnvFile(b)
		if err != nil {
			return
		}
		for k := range vars {
			if !validEnvKey(k) {
				t.Fatalf("invalid key %q accepted", k)
			}
		}
	})
}

// TestEnvFileBelowCommandLineAboveEnvironment: -env-file's settings override the process's
// environment and are overridden by the command line; a bad line is an error naming the file.
func TestEnvFileBelowCommandLineAboveEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env")
	os.WriteFile(path, []byte("WSGATE_LOOPS=3\nWSGATE_MODE=echo\n"), 0o644)
	env := map[string]string{"WSGATE_LOOPS": "7", "WSGATE_PING_INTERVAL": "9s"}
	var o options
	fs := newFlagSet(&o, &strings.Builder{})
	if err := parse(fs, []string{"-addr", "127.0.0.1:1", "-env-file", path, "-mode", "pubsub"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if o.cfg.Loops != 3 || o.mode != "pubsub" || o.cfg.Conn.PingInterval.String() != "9s" {
		t.Fatalf("loops %d mode %s ping %v: want the file over the environment, the command line over the file",
			o.cfg.Loops, o.mode, o.cfg.Conn.PingInterval)
	}
	o = options{}
	fs = newFlagSet(&o, &strings.Builder{})
	env["WSGATE_ENV_FILE"] = path
	if err := parse(fs, nil, func(k string) string { return env[k] }); err != nil || o.cfg.Loops != 3 {
		t.Fatalf("WSGATE_ENV_FILE: loops %d, %v", o.cfg.Loops, err)
	}
	os.WriteFile(path, []byte("oops\n"), 0o644)
	fs = newFlagSet(&o, &strings.Builder{})
	if err := parse(fs, []string{"-env-file=" + path}, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("bad file: %v", err)
	}
}
