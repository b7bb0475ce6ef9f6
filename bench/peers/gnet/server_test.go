package main

import (
	"testing"

	"github.com/wsgate/wsgate/bench/peers/peerproto/peertest"
)

// start serves mode on a free loopback port for the life of the test and
// returns its ws:// URL.
func start(t *testing.T, mode string) string {
	t.Helper()
	return "ws://" + startAddr(t, mode) + "/"
}

// startAddr serves mode on a free loopback port for the life of the test and
// returns its host:port. gnet opens one SO_REUSEPORT listener per loop, so
// the port is chosen first rather than asked of the kernel with port 0.
func startAddr(t *testing.T, mode string) string {
	t.Helper()
	addr := peertest.FreeAddr(t)
	srv, err := newServer(mode, addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	return addr
}

func TestEcho(t *testing.T)      { peertest.Echo(t, start(t, "echo")) }
func TestEchoEmpty(t *testing.T) { peertest.EchoEmpty(t, start(t, "echo")) }
func TestPubSub(t *testing.T)    { peertest.PubSub(t, start(t, "pubsub")) }

func TestUnknownMode(t *testing.T) {
	if _, err := newServer("relay", "127.0.0.1:0"); err == nil {
		t.Fatal("newServer accepted an unknown mode")
	}
}
