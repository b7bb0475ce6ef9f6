//go:build !race

package main

import (
	"testing"

	"github.com/gobwas/ws"
)

// The echo hot path (parse, unmask, header in place) must not allocate.
func TestEchoFramePathDoesNotAllocate(t *testing.T) {
	frame := maskedFrame(0x81, make([]byte, 64))
	allocs := testing.AllocsPerRun(1000, func() {
		h, n, err := parseHeader(frame)
		if err != nil || n == 0 {
			t.Fatal("bad frame")
		}
		if err := ws.CheckHeader(h, ws.StateServerSide); err != nil {
			t.Fatal(err)
		}
		ws.Cipher(frame[n:], h.Mask, 0)
		_ = putServerHeader(frame, n, h.OpCode, len(frame)-n)
	})
	if allocs != 0 {
		t.Fatalf("echo frame path allocated %.1f times per frame, want 0", allocs)
	}
}
