//go:build !race

package frame

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

// The race detector instruments allocations, so these run only without it.

func TestZeroAllocs(t *testing.T) {
	masked7 := []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}
	masked16 := append([]byte{0x82, 0xfe, 0x01, 0x00, 1, 2, 3, 4}, make([]byte, 256)...)
	masked64 := []byte{0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4}
	partial := masked64[:9]
	badLen := []byte{0x82, 0xfe, 0x00, 0x05, 1, 2, 3, 4}
	h := ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: [4]byte{1, 2, 3, 4}, Length: 5}
	payload := bytes.Repeat([]byte("abcdefgh"), 8192)
	text := []byte(strings.Repeat("κόσμε-ascii-€😀", 200))
	closeP := append([]byte{0x03, 0xe8}, "normal closure"...)
	dst := make([]byte, 0, 128<<10)
	head := request("GET /chat HTTP/1.1", baseHeaders...)
	msg := make([]byte, 1000)
	zjson := AppendDeflate(nil, jsonMessage)

	tests := []struct {
		name string
		fn   func()
	}{
		{name: "ParseHeader 7-bit", fn: func() { ParseHeader(masked7) }},
		{name: "ParseHeader 16-bit", fn: func() { ParseHeader(masked16) }},
		{name: "ParseHeader 64-bit", fn: func() { ParseHeader(masked64) }},
		{name: "ParseHeader need more", fn: func() { ParseHeader(partial) }},
		{name: "ParseHeader error", fn: func() { ParseHeader(badLen) }},
		{name: "CheckHeader ok", fn: func() { CheckHeader(h, false) }},
		{name: "CheckHeader error", fn: func() { CheckHeader(h, true) }},
		{name: "Unmask 64 KiB", fn: func() { Unmask(payload, [4]byte{1, 2, 3, 4}, 3) }},
		{name: "Unmask 5 bytes", fn: func() { Unmask(payload[:5], [4]byte{1, 2, 3, 4}, 1) }},
		{name: "UTF8.Write", fn: func() {
			var s UTF8
			for i := 0; i < len(text); i += 7 {
				s.Write(text[i:min(i+7, len(text))])
			}
			_ = s.Done()
		}},
		{name: "UTF8.Write invalid", fn: func() {
			var s UTF8
			s.Write([]byte{0xed, 0xa0})
		}},
		{name: "ParseClose", fn: func() { ParseClose(closeP) }},
		{name: "ParseClose error", fn: func() { ParseClose(closeP[:1]) }},
		{name: "HeaderLen", fn: func() { HeaderLen(70000) }},
		{name: "AppendHeader", fn: func() {
			d := AppendHeader(dst[:0], true, ws.OpBinary, 5)
			d = AppendHeader(d, false, ws.OpText, 300)
			AppendHeader(d, true, ws.OpContinuation, 1<<20)
		}},
		{name: "AppendFrame", fn: func() { AppendFrame(dst[:0], ws.OpText, msg) }},
		{name: "AppendFrame 64 KiB", fn: func() { AppendFrame(dst[:0], ws.OpBinary, payload) }},
		{name: "AppendClose", fn: func() { AppendClose(dst[:0], 1001, "going away") }},
		{name: "HeaderEnd", fn: func() { HeaderEnd(head) }},
		{name: "HeaderEnd incomplete", fn: func() { HeaderEnd(head[:len(head)-1]) }},
		{name: "NegotiateDeflate", fn: func() {
			NegotiateDeflate([]byte("foo; a=\"b\", permessage-deflate; client_max_window_bits; server_max_window_bits=15"))
		}},
		{name: "AppendDeflate", fn: func() { AppendDeflate(dst[:0], jsonMessage) }},
		{name: "Inflate", fn: func() { Inflate(dst[:0], zjson, 1<<20, growSlice) }},
		{name: "Inflate too big", fn: func() { Inflate(dst[:0], zjson, 100, growSlice) }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(200, tt.fn); n != 0 {
			t.Errorf(
				"%s: %v allocations per run, want 0",
				tt.name, n,
			)
		}
	}
}

// TestPlainRequestZeroAllocs: telling a stream request from an upgrade and reading it allocate
// nothing, nor does a refusal into a big enough dst.
func TestPlainRequestZeroAllocs(t *testing.T) {
	head := []byte("GET /sse?channel=a HTTP/1.1\r\nHost: x\r\nLast-Event-ID: a:b:1\r\n\r\n")
	bad := []byte("GET /sse HTTP/2.0\r\n\r\n")
	dst := make([]byte, 0, 512)
	if a := testing.AllocsPerRun(100, func() {
		if IsUpgrade(head) {
			t.Fatal("upgrade")
		}
		r, _, _ := ReadRequest(dst, head)
		if _, ok := r.Header("Last-Event-ID"); !ok {
			t.Fatal("no header")
		}
		ReadRequest(dst, bad)
	}); a != 0 {
		t.Fatalf("%v allocations", a)
	}
}
