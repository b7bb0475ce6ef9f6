package main

import (
	"net"
	"testing"

	"github.com/wsgate/wsgate/bench/peers/peerproto/peertest"
)

// start serves mode on a free loopback port for the life of the test and
// returns its ws:// URL.
func start(t *testing.T, mode string) string {
	t.Helper()
	srv, err := newServer(mode)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "ws://" + ln.Addr().String() + "/"
}

func TestEcho(t *testing.T)      { peertest.Echo(t, start(t, "echo")) }
func TestEchoEmpty(t *testing.T) { peertest.EchoEmpty(t, start(t, "echo")) }
func TestPubSub(t *testing.T)    { peertest.PubSub(t, start(t, "pubsub")) }

func TestUnknownMode(t *testing.T) {
	if _, err := newServer("relay"); err == nil {
		t.Fatal("newServer accepted an unknown mode")
	}
}
