package wsgate

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestHandOverInProcess: a second Server started on the first one's listener descriptors
// (ListenerFDs, as a new process inherits them) serves the same address and admin address; once
// the first stops accepting, every new connection reaches the second, and the first's
// connections are closed with 1012 by Drain. The two servers live in one test process: the
// process-level test (cmd/wsgate) does the same across exec.
func TestHandOverInProcess(t *testing.T) {
	old := startServer(t, Config{Handler: Echo{}, AdminAddr: "127.0.0.1:0"})
	const held = 6
	var conns []*websocket.Conn
	for i := 0; i < held; i++ {
		c, _, err := websocket.DefaultDialer.Dial(wsURL(old, "/"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	fds, admin, err := old.ListenerFDs()
	if err != nil {
		t.Fatal(err)
	}
	if len(fds) != 2 || admin < 0 {
		t.Fatalf("ListenerFDs: %v %d", fds, admin)
	}
	f := os.NewFile(uintptr(admin), "admin")
	adminLn, err := net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	next := startServer(t, Config{Handler: Echo{}, ListenFDs: fds, AdminListener: adminLn})
	if next.Addr().Port != old.Addr().Port || next.AdminAddr() != old.AdminAddr() {
		t.Fatalf("new server on %s admin %s, old on %s admin %s", next.Addr(), next.AdminAddr(), old.Addr(), old.AdminAddr())
	}
	old.StopAccepting()
	before := old.Connections()
	// Every dial from now on is the new server's, the admin listener included.
	for i := 0; i < 20; i++ {
		c, _, err := websocket.DefaultDialer.Dial(wsURL(old, "/"), nil)
		if err != nil {
			t.Fatalf("dial %d after the hand-over: %v", i, err)
		}
		c.Close()
	}
	if got := old.Connections(); got != before {
		t.Fatalf("the old server took connections after StopAccepting: %d, was %d", got, before)
	}
	resp, err := http.Get("http://" + old.AdminAddr() + "/healthz")
	if err != nil {
		t.Fatalf("admin after the hand-over: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("admin after the hand-over: %d", resp.StatusCode)
	}
	done := make(chan error, 1)
	go func() { done <- old.Drain(ctxT(t), 1012, "service restart", 300*time.Millisecond) }()
	for i, c := range conns {
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 1012 || ce.Text != "service restart" {
			t.Fatalf("held connection %d: %v, want close 1012", i, err)
		}
		c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1012, ""), time.Now().Add(time.Second))
	}
	if err := <-done; err != nil {
		t.Fatalf("Drain: %v", err)
	}
	// The old server is gone; the new one still serves the address it inherited.
	c, _, err := websocket.DefaultDialer.Dial(wsURL(next, "/"), nil)
	if err != nil {
		t.Fatalf("dial after the old server stopped: %v", err)
	}
	c.Close()
}

// TestDrainRefusesUpgradesWith503: during a shutdown's drain the listeners stay open and an
// upgrade gets HTTP 503 with Retry-After (not a refused or reset connection), /healthz says the
// server is shutting down, and after the drain nothing listens.
func TestDrainRefusesUpgradesWith503(t *testing.T) {
	s := startServer(t, Config{Handler: Echo{}, AdminAddr: "127.0.0.1:0"})
	held, _, err := websocket.DefaultDialer.Dial(wsURL(s, "/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Drain(ctx, 1001, "server shutting down", time.Hour) }()
	// The first connection of each loop is closed at the start of the drain.
	if _, _, err := held.ReadMessage(); !websocket.IsCloseError(err, 1001) {
		t.Fatalf("held connection: %v, want 1001", err)
	}
	_, resp, err := websocket.DefaultDialer.Dial(wsURL(s, "/"), nil)
	if err == nil || resp == nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("upgrade during the drain: %v %v, want 503 with Retry-After", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "shutting down") {
		t.Fatalf("503 body %q", body)
	}
	hr, err := http.Get("http://" + s.AdminAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	hr.Body.Close()
	if hr.StatusCode != 503 {
		t.Fatalf("/healthz during the drain: %d, want 503", hr.StatusCode)
	}
	held.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1001, ""), time.Now().Add(time.Second))
	cancel() // the hour is not waited for
	<-done
	if _, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		t.Fatal("still accepting after the drain")
	}
}
