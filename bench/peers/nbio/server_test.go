//go:build !race

// These tests drive a real nbio engine, which hands each accepted connection
// from its accept goroutine to its poller goroutine through epoll_ctl and
// epoll_wait. The race detector cannot see that hand-off, so under -race it
// reports races inside nbio and the standard library (net.TCPAddr read by
// nbio's HTTP processor) that this peer cannot change. They run without
// -race; mode_test.go still runs under it.

package main

import (
	"testing"

	"github.com/wsgate/wsgate/bench/peers/peerproto/peertest"
)

// start serves mode on a free loopback port for the life of the test and
// returns its ws:// URL.
func start(t *testing.T, mode string) string {
	t.Helper()
	srv, err := newServer(mode, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr, err := srv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return "ws://" + addr.String() + "/"
}

func TestEcho(t *testing.T)   { peertest.Echo(t, start(t, "echo")) }
func TestPubSub(t *testing.T) { peertest.PubSub(t, start(t, "pubsub")) }
