package main

import (
	"bytes"
	"flag"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate"
)

func TestEnvAndFlagPrecedence(t *testing.T) {
	var o options
	var stderr bytes.Buffer
	fs := newFlagSet(&o, &stderr)
	env := map[string]string{
		"WSGATE_MODE":          "echo",
		"WSGATE_MAX_QUEUE":     "64KiB",
		"WSGATE_PING_INTERVAL": "7s",
		"WSGATE_CPUS":          "0,1",
		"WSGATE_LOOPS":         "3",
		"WSGATE_WHEEL_TICK":    "100ms",
	}
	err := parse(fs, []string{"-loops", "5", "-max-message", "1MiB"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	c := o.cfg
	if o.mode != "echo" || c.Conn.MaxQueue != 64<<10 || c.Conn.PingInterval != 7*time.Second || c.Tick != 100*time.Millisecond {
		t.Fatalf("environment not applied: %+v", c)
	}
	if c.Loops != 5 {
		t.Fatalf("command line did not win over the environment: loops %d", c.Loops)
	}
	if c.Conn.MaxMessage != 1<<20 || len(c.CPUs) != 2 || c.CPUs[1] != 1 {
		t.Fatalf("max-message %d cpus %v", c.Conn.MaxMessage, c.CPUs)
	}
	// A bad environment value is an error naming the variable.
	fs = newFlagSet(&o, &stderr)
	err = parse(fs, nil, func(k string) string {
		if k == "WSGATE_MAX_MESSAGE" {
			return "lots"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), "WSGATE_MAX_MESSAGE") {
		t.Fatalf("bad env value: %v", err)
	}
}

func TestByteSizeAndCPUList(t *testing.T) {
	for in, want := range map[string]int64{"123": 123, "4K": 4096, "4KiB": 4096, "16MiB": 16 << 20, "2G": 2 << 30, "10B": 10} {
		var b byteSize
		if err := b.Set(in); err != nil || int64(b) != want {
			t.Errorf("%q -> %d, %v; want %d", in, b, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1", "1.5M", "99999999999G"} {
		var b byteSize
		if err := b.Set(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	var c cpuList
	if err := c.Set("0, 2,3"); err != nil || c.String() != "0,2,3" {
		t.Fatalf("cpus %v %v", c, err)
	}
	if err := c.Set("a"); err == nil {
		t.Fatal("cpu list 'a' accepted")
	}
}

func TestHelpDocumentsEveryFlagAndEnv(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-h"}, &out, &errb, nil); code != 0 {
		t.Fatalf("-h exit %d", code)
	}
	help := errb.String()
	var o options
	newFlagSet(&o, &bytes.Buffer{}).VisitAll(func(f *flag.Flag) {
		if !strings.Contains(help, "-"+f.Name+" ") || !strings.Contains(help, envName(f.Name)) {
			t.Errorf("help lacks -%s or %s", f.Name, envName(f.Name))
		}
	})
	out.Reset()
	if code := run([]string{"-version"}, &out, &errb, nil); code != 0 || !strings.HasPrefix(out.String(), "wsgate ") {
		t.Fatalf("-version: exit %d, output %q", code, out.String())
	}
	if code := run([]string{"-no-such-flag"}, &out, &errb, nil); code != 2 {
		t.Fatalf("unknown flag exit %d, want 2", code)
	}
	if code := run([]string{"-mode", "nope", "-admin-addr", ""}, &out, &errb, nil); code != 2 {
		t.Fatalf("bad mode exit %d, want 2", code)
	}
	// Settings the library refuses are refused by the command line with the library's words.
	for _, args := range [][]string{{"-pong-misses", "1"}, {"-ping-interval", "-1s"}, {"-dedup-window", "-1m"}, {"-high-water", "2MiB"}, {"-wheel-tick", "5s"}, {"-wheel-tick", "100us"}} {
		errb.Reset()
		code := run(append(args, "-addr", "127.0.0.1:0", "-admin-addr", ""), &out, &errb, nil)
		if code != 2 || !strings.Contains(errb.String(), strings.TrimPrefix(args[0], "-")[:4]) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message naming the setting", args, code, errb.String())
		}
	}
}

// TestServeAndSIGTERM runs the real entry point: echo on a free port, admin endpoints, then
// SIGTERM makes it send 1001 to clients and return 0.
func TestServeAndSIGTERM(t *testing.T) {
	ready := make(chan *wsgate.Server, 1)
	exit := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		exit <- run([]string{"-mode", "echo", "-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0",
			"-shutdown-timeout", "5s", "-log-level", "warn"}, &bytes.Buffer{}, &stderr, ready)
	}()
	var srv *wsgate.Server
	select {
	case srv = <-ready:
	case code := <-exit:
		t.Fatalf("exited %d before serving: %s", code, stderr.String())
	}
	c, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr().String()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.WriteMessage(websocket.TextMessage, []byte("hi"))
	if _, m, err := c.ReadMessage(); err != nil || string(m) != "hi" {
		t.Fatalf("echo %q %v", m, err)
	}
	for _, path := range []string{"/healthz", "/metrics", "/debug/pprof/"} {
		resp, err := http.Get("http://" + srv.AdminAddr() + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", path, err, resp)
		}
		resp.Body.Close()
	}
	syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = c.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 1001 {
		t.Fatalf("after SIGTERM: %v, want close 1001", err)
	}
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit %d after SIGTERM, want 0; log: %s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server did not exit after SIGTERM")
	}
}
