package frame

import (
	"strconv"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

func BenchmarkParseHeader(b *testing.B) {
	cases := []struct {
		name string
		p    []byte
	}{
		{name: "7bit", p: []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d}},
		{name: "16bit", p: []byte{0x82, 0xfe, 0x01, 0x00, 1, 2, 3, 4}},
		{name: "64bit", p: []byte{0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4}},
		{name: "partial", p: []byte{0x82, 0xff, 0, 0}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h, n, err := ParseHeader(c.p)
				if err != nil || (n == 0) != (c.name == "partial") {
					b.Fatal(h, n, err)
				}
				if n > 0 && CheckHeader(h, false) != nil {
					b.Fatal("check")
				}
			}
		})
	}
}

func BenchmarkUnmask(b *testing.B) {
	for _, size := range []int{64, 1 << 10, 64 << 10} {
		b.Run(sizeName(size), func(b *testing.B) {
			p := make([]byte, size)
			mask := [4]byte{0x37, 0xfa, 0x21, 0x3d}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				Unmask(p, mask, 1)
			}
		})
	}
}

func BenchmarkAppendFrame(b *testing.B) {
	for _, size := range []int{16, 1 << 10, 64 << 10} {
		b.Run(sizeName(size), func(b *testing.B) {
			payload := make([]byte, size)
			dst := make([]byte, 0, HeaderLen(size)+size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				dst = AppendFrame(dst[:0], ws.OpBinary, payload)
			}
		})
	}
}

func BenchmarkUTF8(b *testing.B) {
	inputs := []struct {
		name string
		text string
	}{
		{name: "ASCII", text: strings.Repeat("The quick brown fox jumps over the lazy dog. ", 24)[:1024]},
		{name: "multibyte", text: strings.Repeat("κόσμε ✓ 日本語 😀 ", 40)[:1020]},
	}
	for _, in := range inputs {
		for _, pieces := range []int{1, 8} {
			p := []byte(in.text)
			b.Run(in.name+"/"+strconv.Itoa(len(p))+"B/"+strconv.Itoa(pieces)+"pieces", func(b *testing.B) {
				step := (len(p) + pieces - 1) / pieces
				b.SetBytes(int64(len(p)))
				b.ReportAllocs()
				for b.Loop() {
					var s UTF8
					for i := 0; i < len(p); i += step {
						if !s.Write(p[i:min(i+step, len(p))]) {
							b.Fatal("invalid")
						}
					}
					if !s.Done() {
						b.Fatal("not done")
					}
				}
			})
		}
	}
}

func BenchmarkParseClose(b *testing.B) {
	p := append([]byte{0x03, 0xe8}, "normal closure"...)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseClose(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHeaderEnd(b *testing.B) {
	head := request("GET /chat HTTP/1.1", plus("User-Agent: "+strings.Repeat("x", 200), "Cookie: "+strings.Repeat("c", 300))...)
	b.SetBytes(int64(len(head)))
	b.ReportAllocs()
	for b.Loop() {
		if HeaderEnd(head) != len(head) {
			b.Fatal("end")
		}
	}
}

func BenchmarkUpgrade(b *testing.B) {
	head := request("GET /chat?token=abc HTTP/1.1", plus(
		"Origin: https://example.com",
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) bench",
		"Sec-WebSocket-Protocol: chat",
	)...)
	dst := make([]byte, 0, 512)
	b.SetBytes(int64(len(head)))
	b.ReportAllocs()
	for b.Loop() {
		out, res := Upgrade(dst[:0], head, nil)
		if res.Status != 101 {
			b.Fatalf("%+v\n%s", res, out)
		}
	}
}

func BenchmarkUpgradeRejected(b *testing.B) {
	head := request("GET /chat HTTP/1.1", headersWith("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8")...)
	dst := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		if _, res := Upgrade(dst[:0], head, nil); res.Status != 426 {
			b.Fatal(res)
		}
	}
}

func sizeName(n int) string {
	switch {
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KiB"
	default:
		return strconv.Itoa(n) + "B"
	}
}
