package frame

import (
	"bytes"
	stdflate "compress/flate"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	kflate "github.com/klauspost/compress/flate"
)

// growSlice is Inflate's grow for tests: exactly the room asked for.
func growSlice(b []byte, n int) []byte {
	nb := make([]byte, len(b), len(b)+n)
	copy(nb, b)
	return nb
}

// jsonMessage is a typical ~1 KB JSON message of the benchmarks.
var jsonMessage = func() []byte {
	var b bytes.Buffer
	b.WriteString(`{"op":"message","channel":"prices","seq":123456,"data":{"items":[`)
	for i := 0; b.Len() < 1000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"symbol":"SYM%d","price":%d.%02d,"volume":%d,"change":-0.%d}`, i, 100+i*7, i*13%100, 1000+i*37, i%9)
	}
	b.WriteString(`]}}`)
	return b.Bytes()
}()

func testPayloads() [][]byte {
	rnd := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 70000)
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	return [][]byte{
		{},
		[]byte("a"),
		[]byte("Hello"),
		jsonMessage,
		bytes.Repeat([]byte("abcdefgh"), 1<<14), // 128 KiB, highly compressible
		random,                                  // incompressible
		[]byte(strings.Repeat("κόσμε-€😀", 3000)),
	}
}

// TestDeflateRoundTrip: what AppendDeflate writes is inflated by Inflate, and by independent
// implementations (compress/flate as RFC 7692 section 7.2.2 says, gobwas/ws's wsflate); what
// those write is inflated by Inflate.
func TestDeflateRoundTrip(t *testing.T) {
	for _, p := range testPayloads() {
		z := AppendDeflate([]byte("prefix"), p)
		if string(z[:6]) != "prefix" {
			t.Fatal("AppendDeflate did not append")
		}
		z = z[6:]
		if bytes.HasSuffix(z, deflateTail[:]) && len(z) > 4 {
			t.Fatalf("compressed message of %d bytes still ends with the flush marker", len(p))
		}
		got, err := Inflate([]byte("x"), z, len(p), growSlice)
		if err != nil || !bytes.Equal(got[1:], p) || got[0] != 'x' {
			t.Fatalf("Inflate of %d bytes: %v, %d bytes back", len(p), err, len(got)-1)
		}
		// compress/flate with the tail appended.
		std, rerr := io.ReadAll(io.LimitReader(stdflate.NewReader(io.MultiReader(bytes.NewReader(z), bytes.NewReader(deflateTail[:]))), int64(len(p))))
		if !bytes.Equal(std, p) {
			t.Fatalf("compress/flate reads %d of %d bytes: %v", len(std), len(p), rerr)
		}
		// gobwas/ws's wsflate compresses a frame; Inflate reads it.
		f, cerr := wsflate.CompressFrame(ws.NewBinaryFrame(p))
		if cerr != nil {
			t.Fatal(cerr)
		}
		got, err = Inflate(nil, f.Payload, len(p), growSlice)
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("Inflate of wsflate's %d bytes: %v", len(p), err)
		}
		if len(p) > 0 {
			// One byte over the limit is too big.
			if _, err := Inflate(nil, z, len(p)-1, growSlice); err != ErrMessageTooBig {
				t.Fatalf("limit %d for %d bytes: %v, want ErrMessageTooBig", len(p)-1, len(p), err)
			}
		}
	}
}

// TestInflateBomb: a small message that inflates to far more than the limit stops at the
// limit, its buffer never asked to grow past it.
func TestInflateBomb(t *testing.T) {
	z := AppendDeflate(nil, make([]byte, 64<<20)) // 64 MiB of zeros: about 64 KiB compressed
	if len(z) > 128<<10 {
		t.Fatalf("bomb is %d bytes", len(z))
	}
	const limit = 1 << 20
	var biggest int
	grow := func(b []byte, n int) []byte {
		nb := growSlice(b, n)
		biggest = max(biggest, cap(nb))
		return nb
	}
	_, err := Inflate(nil, z, limit, grow)
	if err != ErrMessageTooBig {
		t.Fatalf("err %v, want ErrMessageTooBig", err)
	}
	if biggest > limit {
		t.Fatalf("buffer grew to %d bytes for a limit of %d", biggest, limit)
	}
}

// TestInflateInvalid: a stream that is not DEFLATE is ErrInflate (1007), never a panic.
func TestInflateInvalid(t *testing.T) {
	for _, z := range [][]byte{
		{0xff, 0xff, 0xff, 0xff},         // reserved block type 3
		{0x06},                           // BTYPE 11 after BFINAL
		{0x00, 0x05, 0x00, 0x00, 0x00},   // stored block whose LEN and NLEN disagree
		bytes.Repeat([]byte{0xfd}, 1000), // noise
	} {
		if _, err := Inflate(nil, z, 1<<20, growSlice); err != ErrInflate {
			t.Errorf("Inflate(%x) = %v, want ErrInflate", z, err)
		}
	}
}

// TestCheckHeaderDeflate: RSV1 is allowed only on a message's first frame once the extension
// is agreed (RFC 7692 section 6.1); RSV2 and RSV3 never.
func TestCheckHeaderDeflate(t *testing.T) {
	h := func(op ws.OpCode, fin bool, rsv byte) ws.Header {
		return ws.Header{Fin: fin, OpCode: op, Rsv: rsv, Masked: true}
	}
	tests := []struct {
		h          ws.Header
		fragmented bool
		deflate    bool
		want       *Error
	}{
		{h(ws.OpText, true, 4), false, true, nil},
		{h(ws.OpBinary, false, 4), false, true, nil},
		{h(ws.OpText, true, 4), false, false, ErrReservedBits},
		{h(ws.OpContinuation, true, 4), true, true, ErrReservedBits},
		{h(ws.OpPing, true, 4), false, true, ErrReservedBits},
		{h(ws.OpClose, true, 4), true, true, ErrReservedBits},
		{h(ws.OpText, true, 2), false, true, ErrReservedBits},
		{h(ws.OpText, true, 1), false, true, ErrReservedBits},
		{h(ws.OpText, true, 6), false, true, ErrReservedBits},
		{h(ws.OpText, true, 4), true, true, ErrExpectedContinuation},
		{h(ws.OpContinuation, true, 0), true, true, nil},
	}
	for _, tt := range tests {
		if got := CheckHeaderDeflate(tt.h, tt.fragmented, tt.deflate); got != tt.want {
			t.Errorf("CheckHeaderDeflate(%+v, %v, %v) = %v, want %v", tt.h, tt.fragmented, tt.deflate, got, tt.want)
		}
	}
}

// TestAppendDeflateHeader: RSV1 set, the rest as AppendHeader.
func TestAppendDeflateHeader(t *testing.T) {
	b := AppendDeflateHeader(nil, ws.OpText, 300)
	h, n, err := ParseHeader(b)
	if err != nil || n != len(b) || h.Rsv != 4 || h.OpCode != ws.OpText || !h.Fin || h.Length != 300 {
		t.Fatalf("%x: %+v %d %v", b, h, n, err)
	}
}

// FuzzInflate: any compressed payload inflates to at most limit bytes or fails with
// ErrMessageTooBig or ErrInflate; never a panic, and what compress/flate inflates (under the
// limit) is what Inflate gives.
func FuzzInflate(f *testing.F) {
	for _, p := range testPayloads()[:5] {
		f.Add(AppendDeflate(nil, p[:min(len(p), 4096)]))
	}
	f.Add([]byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00})                         // RFC 7692 section 7.2.3.1's "Hello"
	f.Add([]byte{0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}) // 7.2.3.3, stored
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, z []byte) {
		const limit = 1 << 16
		got, err := Inflate(nil, z, limit, growSlice)
		switch err {
		case nil:
			if len(got) > limit {
				t.Fatalf("%d bytes over a limit of %d", len(got), limit)
			}
			want, _ := io.ReadAll(io.LimitReader(stdflate.NewReader(bytes.NewReader(append(bytes.Clone(z), deflateTail[:]...))), limit+1))
			if !bytes.Equal(got, want) {
				t.Fatalf("Inflate gave %d bytes, compress/flate %d", len(got), len(want))
			}
		case ErrMessageTooBig, ErrInflate:
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}

// BenchmarkDeflate compares the compressors for a 1 KB JSON message, each reset for the message
// as a connection without context takeover needs: compress/flate and klauspost/compress/flate
// (the one AppendDeflate uses) at levels 1 and 5, and AppendDeflate itself (pool included).
func BenchmarkDeflate(b *testing.B) {
	for _, lvl := range []int{1, 5} {
		b.Run(fmt.Sprintf("stdlib/level%d", lvl), func(b *testing.B) {
			var out sliceWriter
			w, _ := stdflate.NewWriter(&out, lvl)
			benchDeflate(b, &out, func() { w.Reset(&out); w.Write(jsonMessage); w.Flush() })
		})
		b.Run(fmt.Sprintf("klauspost/level%d", lvl), func(b *testing.B) {
			var out sliceWriter
			w, _ := kflate.NewWriter(&out, lvl)
			benchDeflate(b, &out, func() { w.Reset(&out); w.Write(jsonMessage); w.Flush() })
		})
	}
	b.Run("AppendDeflate", func(b *testing.B) {
		var out sliceWriter
		benchDeflate(b, &out, func() { out.b = AppendDeflate(out.b, jsonMessage) })
	})
}

func benchDeflate(b *testing.B, out *sliceWriter, fn func()) {
	b.ReportAllocs()
	b.SetBytes(int64(len(jsonMessage)))
	out.b = make([]byte, 0, 4096)
	for b.Loop() {
		out.b = out.b[:0]
		fn()
	}
	b.ReportMetric(float64(len(out.b)), "wire-bytes")
}

// BenchmarkInflate compares the decompressors on the same compressed 1 KB JSON message, each
// reset per message; Inflate (compress/flate, pooled) is the one wsgate uses.
func BenchmarkInflate(b *testing.B) {
	z := append(AppendDeflate(nil, jsonMessage), deflateTail[:]...)
	buf := make([]byte, 4096)
	var br bytes.Reader
	b.Run("stdlib", func(b *testing.B) {
		br.Reset(z)
		r := stdflate.NewReader(&br)
		b.ReportAllocs()
		b.SetBytes(int64(len(jsonMessage)))
		for b.Loop() {
			br.Reset(z)
			r.(stdflate.Resetter).Reset(&br, nil)
			io.ReadFull(r, buf[:len(jsonMessage)])
		}
	})
	b.Run("klauspost", func(b *testing.B) {
		br.Reset(z)
		r := kflate.NewReader(&br)
		b.ReportAllocs()
		b.SetBytes(int64(len(jsonMessage)))
		for b.Loop() {
			br.Reset(z)
			r.(kflate.Resetter).Reset(&br, nil)
			io.ReadFull(r, buf[:len(jsonMessage)])
		}
	})
	b.Run("Inflate", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(jsonMessage)))
		for b.Loop() {
			Inflate(buf[:0], z[:len(z)-4], 1<<20, growSlice)
		}
	})
}
