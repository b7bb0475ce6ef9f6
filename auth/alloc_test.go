//go:build !race

package auth

import "testing"

// TestMatchersAllocNothing: the checks that run on every subscribe, publish and handshake
// (permissions, Origin) allocate nothing.
func TestMatchersAllocNothing(t *testing.T) {
	c := Claims{Sub: "42", Channels: Patterns{"news", "prices:*"}, Publish: Patterns{"chat:*"}}
	o, err := ParseOrigins("https://*.example.com,http://localhost:3000", false)
	if err != nil {
		t.Fatal(err)
	}
	origin := []byte("https://App.Example.com:443")
	n := testing.AllocsPerRun(1000, func() {
		if !c.MaySubscribe("prices:eur") || !c.MaySubscribe("#42") || c.MaySubscribe("#7") || !c.MayPublish("chat:1") {
			t.Fatal("wrong answer")
		}
		if !o.Allowed(origin, true) {
			t.Fatal("origin refused")
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per check, want 0", n)
	}
}
