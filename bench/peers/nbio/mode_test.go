package main

import "testing"

func TestModes(t *testing.T) {
	if _, err := newServer("relay", "127.0.0.1:0"); err == nil {
		t.Fatal("newServer accepted an unknown mode")
	}
	for _, mode := range []string{"echo", "pubsub"} {
		s, err := newServer(mode, "127.0.0.1:0")
		if err != nil {
			t.Fatalf("newServer(%q): %v", mode, err)
		}
		if s.pubsub != (mode == "pubsub") {
			t.Fatalf("newServer(%q).pubsub = %v", mode, s.pubsub)
		}
	}
}
