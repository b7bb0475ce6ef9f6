package main

import (
	"testing"

	"github.com/gobwas/ws"
)

// BenchmarkEchoFrame measures what the gnet peer does per echoed 64-byte
// frame besides gnet's own reads and writes.
func BenchmarkEchoFrame(b *testing.B) {
	b.ReportAllocs()
	frame := maskedFrame(0x81, make([]byte, 64))
	b.SetBytes(64)
	for b.Loop() {
		h, n, err := parseHeader(frame)
		if err != nil || n == 0 {
			b.Fatal("bad frame")
		}
		if err := ws.CheckHeader(h, ws.StateServerSide); err != nil {
			b.Fatal(err)
		}
		ws.Cipher(frame[n:], h.Mask, 0)
		_ = putServerHeader(frame, n, h.OpCode, len(frame)-n)
	}
}
