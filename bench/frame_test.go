package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/gobwas/ws"
)

func TestParseFrameHeader(t *testing.T) {
	cases := []struct {
		name   string
		in     []byte
		n      int
		op     ws.OpCode
		fin    bool
		length int64
		err    error
	}{
		{name: "short", in: []byte{0x81}, n: 0},
		{name: "text 5", in: []byte{0x81, 5, 'h'}, n: 2, op: ws.OpText, fin: true, length: 5},
		{name: "binary not fin", in: []byte{0x02, 0}, n: 2, op: ws.OpBinary, length: 0},
		{name: "16-bit", in: []byte{0x81, 126, 0x01, 0x00}, n: 4, op: ws.OpText, fin: true, length: 256},
		{name: "16-bit incomplete", in: []byte{0x81, 126, 0x01}, n: 0},
		{name: "64-bit", in: []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}, n: 10, op: ws.OpBinary, fin: true, length: 65536},
		{name: "64-bit incomplete", in: []byte{0x82, 127, 0, 0, 0}, n: 0},
		{name: "ping", in: []byte{0x89, 0}, n: 2, op: ws.OpPing, fin: true},
		{name: "rsv", in: []byte{0xc1, 0}, err: errRsv},
		{name: "masked", in: []byte{0x81, 0x80 | 1, 1, 2, 3, 4, 'x'}, err: errMaskedServer},
		{name: "reserved op", in: []byte{0x83, 0}, err: errBadOpcode},
		{name: "reserved control op", in: []byte{0x8b, 0}, err: errBadOpcode},
		{name: "long ping", in: []byte{0x89, 126, 0, 126}, err: errControlLen},
		{name: "fragmented close", in: []byte{0x08, 0}, err: errControlFrag},
		{name: "64-bit msb", in: []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, err: errLen64},
		{name: "non-minimal 16", in: []byte{0x82, 126, 0, 5}, err: errNonMinimal},
		{name: "non-minimal 64", in: []byte{0x82, 127, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, err: errNonMinimal},
		{name: "too big", in: []byte{0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0}, err: errTooBig},
	}
	for _, c := range cases {
		h, n, err := parseFrameHeader(c.in)
		if !errors.Is(err, c.err) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.err)
			continue
		}
		if err != nil {
			continue
		}
		if n != c.n {
			t.Errorf("%s: n %d, want %d", c.name, n, c.n)
		}
		if n > 0 && (h.op != c.op || h.fin != c.fin || h.length != c.length) {
			t.Errorf("%s: got %+v", c.name, h)
		}
	}
}

// TestAppendFrameReadByGobwas checks the client frames with an independent
// reader: gobwas/ws parses them and unmasking restores the payload.
func TestAppendFrameReadByGobwas(t *testing.T) {
	for _, size := range []int{0, 1, 125, 126, 65535, 65536, 200000} {
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		key := [4]byte{0xde, 0xad, 0xbe, 0xef}
		b := appendFrame([]byte("prefix"), ws.OpBinary, payload, key)
		if !bytes.HasPrefix(b, []byte("prefix")) {
			t.Fatal("dst prefix overwritten")
		}
		f, err := ws.ReadFrame(bytes.NewReader(b[6:]))
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if !f.Header.Fin || f.Header.OpCode != ws.OpBinary || !f.Header.Masked || f.Header.Mask != key {
			t.Fatalf("size %d: header %+v", size, f.Header)
		}
		f = ws.UnmaskFrameInPlace(f)
		if !bytes.Equal(f.Payload, payload) {
			t.Fatalf("size %d: payload differs after unmasking", size)
		}
		if size > 4 && bytes.Equal(b[len(b)-size:], payload) {
			t.Fatalf("size %d: payload was not masked", size)
		}
	}
}

// TestParseFrameHeaderOfGobwasFrames parses server frames written by gobwas.
func TestParseFrameHeaderOfGobwasFrames(t *testing.T) {
	for _, size := range []int{0, 125, 126, 65535, 65536} {
		var buf bytes.Buffer
		if err := ws.WriteFrame(&buf, ws.NewTextFrame(make([]byte, size))); err != nil {
			t.Fatal(err)
		}
		h, n, err := parseFrameHeader(buf.Bytes())
		if err != nil || n == 0 {
			t.Fatalf("size %d: n %d err %v", size, n, err)
		}
		if h.length != int64(size) || n+size != buf.Len() || h.op != ws.OpText || !h.fin {
			t.Fatalf("size %d: %+v n=%d total=%d", size, h, n, buf.Len())
		}
	}
}

func FuzzParseFrameHeader(f *testing.F) {
	for _, s := range [][]byte{
		{0x81, 5}, {0x81, 126, 1, 0}, {0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}, {0x89, 0}, {0x88, 2, 3, 232},
		{0xc1, 0}, {0x81, 0x85}, {0x0, 0x0}, {0xff, 0xff},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := parseFrameHeader(b)
		if err != nil || n == 0 {
			return
		}
		if n != 2 && n != 4 && n != 10 || n > len(b) {
			t.Fatalf("header size %d for %d bytes", n, len(b))
		}
		if h.length < 0 || h.length > maxFrameSize || h.masked {
			t.Fatalf("accepted %+v", h)
		}
		if h.op.IsControl() && (h.length > maxControlPayload || !h.fin) {
			t.Fatalf("accepted bad control frame %+v", h)
		}
		// Re-encoding the header (unmasked, as a server would) gives the
		// same bytes: only minimal encodings are accepted.
		var hb bytes.Buffer
		ws.WriteHeader(&hb, ws.Header{Fin: h.fin, OpCode: h.op, Length: h.length})
		if !bytes.Equal(hb.Bytes(), b[:n]) {
			t.Fatalf("accepted %x, canonical form %x", b[:n], hb.Bytes())
		}
	})
}

func BenchmarkAppendFrame(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 32)
	dst := make([]byte, 0, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		dst = appendFrame(dst[:0], ws.OpText, payload, [4]byte{1, 2, 3, 4})
	}
	_ = binary.BigEndian
}

func BenchmarkParseFrameHeader(b *testing.B) {
	in := []byte{0x81, 126, 0x01, 0x00}
	b.ReportAllocs()
	for b.Loop() {
		parseFrameHeader(in)
	}
}
