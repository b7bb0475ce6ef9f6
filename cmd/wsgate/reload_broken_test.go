package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"
)

// TestReloadBrokenBinaryKeepsServing: a reload that finds a broken executable at its path (one
// that crashes at once, one that never reports ready) leaves the old process serving its held
// connection and its listener, and the log says which failure it was.
func TestReloadBrokenBinaryKeepsServing(t *testing.T) {
	// A copy of the binary the test may replace, as a deploy replaces the installed one.
	bin := filepath.Join(t.TempDir(), "wsgate")
	b, err := os.ReadFile(wsgateBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	p := startWsgateBinary(t, bin, nil, "-reload-timeout", "1s")
	pid := p.cmd.Process.Pid
	addr, _ := p.listening(pid)
	url := "ws://" + addr + "/"
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deploy := func(script string) {
		t.Helper()
		tmp := bin + ".new"
		if err := os.WriteFile(tmp, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, bin); err != nil { // the running file stays intact (its inode)
			t.Fatal(err)
		}
	}
	for i, tc := range []struct{ script, want string }{
		{"#!/bin/sh\nexit 3\n", "exited before it was ready (exit status 3)"},
		{"#!/bin/sh\nexec sleep 60\n", "was not ready within -reload-timeout 1s; killed it"},
	} {
		deploy(tc.script)
		if err := unix.Kill(pid, unix.SIGHUP); err != nil {
			t.Fatal(err)
		}
		var l map[string]any
		deadline := time.Now().Add(time.Minute)
		for {
			ls := p.lines(func(l map[string]any) bool {
				return l["msg"] == "reload failed; this process keeps serving" && logPID(l) == pid
			})
			if len(ls) > i { // the earlier cases' lines come first
				l = ls[i]
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no log line: %s", tc.want)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if why, _ := l["err"].(string); !strings.Contains(why, tc.want) {
			t.Fatalf("reload failure logged as %q, want %q", why, tc.want)
		}
		if err := echoOnce(c, "still"); err != nil {
			t.Fatalf("held connection after the failed reload: %v", err)
		}
		c2, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatalf("new connection after the failed reload: %v", err)
		}
		c2.Close()
		if got := p.pid(); got != pid {
			t.Fatalf("PID file %d after a failed reload, want %d", got, pid)
		}
	}
}
