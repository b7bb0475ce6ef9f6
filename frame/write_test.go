package frame

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/gobwas/ws"
)

func TestHeaderLen(t *testing.T) {
	tests := []struct {
		payload int
		want    int
	}{
		{payload: 0, want: 2},
		{payload: 125, want: 2},
		{payload: 126, want: 4},
		{payload: 65535, want: 4},
		{payload: 65536, want: 10},
		{payload: 1 << 40, want: 10},
	}
	for _, tt := range tests {
		if got := HeaderLen(tt.payload); got != tt.want {
			t.Errorf(
				"HeaderLen(%d) = %d, want %d",
				tt.payload, got, tt.want,
			)
		}
		if got := len(AppendHeader(nil, true, ws.OpBinary, tt.payload)); got != tt.want {
			t.Errorf(
				"len(AppendHeader(%d)) = %d, want %d",
				tt.payload, got, tt.want,
			)
		}
	}
}

func TestAppendHeaderBytes(t *testing.T) {
	tests := []struct {
		fin     bool
		op      ws.OpCode
		payload int
		want    []byte
	}{
		{fin: true, op: ws.OpText, payload: 0, want: []byte{0x81, 0x00}},
		{fin: true, op: ws.OpBinary, payload: 125, want: []byte{0x82, 0x7d}},
		{fin: false, op: ws.OpText, payload: 126, want: []byte{0x01, 0x7e, 0x00, 0x7e}},
		{fin: true, op: ws.OpContinuation, payload: 65535, want: []byte{0x80, 0x7e, 0xff, 0xff}},
		{fin: false, op: ws.OpContinuation, payload: 65536, want: []byte{0x00, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0}},
		{fin: true, op: ws.OpPing, payload: 125, want: []byte{0x89, 0x7d}},
		{fin: true, op: ws.OpPong, payload: 0, want: []byte{0x8a, 0x00}},
		{fin: true, op: ws.OpClose, payload: 2, want: []byte{0x88, 0x02}},
	}
	for _, tt := range tests {
		prefix := []byte("prefix")
		got := AppendHeader(prefix, tt.fin, tt.op, tt.payload)
		if !bytes.Equal(got[:6], []byte("prefix")) || !bytes.Equal(got[6:], tt.want) {
			t.Errorf(
				"AppendHeader(%v, %v, %d) = %x, want prefix+%x",
				tt.fin, tt.op, tt.payload, got, tt.want,
			)
		}
	}
}

func TestAppendHeaderPanics(t *testing.T) {
	tests := []struct {
		name    string
		fin     bool
		op      ws.OpCode
		payload int
	}{
		{name: "negative length", fin: true, op: ws.OpBinary, payload: -1},
		{name: "reserved opcode 3", fin: true, op: 0x3, payload: 0},
		{name: "reserved opcode B", fin: true, op: 0xb, payload: 0},
		{name: "opcode above 4 bits", fin: true, op: 0x11, payload: 0},
		{name: "ping 126 bytes", fin: true, op: ws.OpPing, payload: 126},
		{name: "fragmented close", fin: false, op: ws.OpClose, payload: 0},
	}
	for _, tt := range tests {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf(
						"%s: AppendHeader did not panic",
						tt.name,
					)
				}
			}()
			AppendHeader(nil, tt.fin, tt.op, tt.payload)
		}()
	}
}

// TestAppendFrameReadByGobwas encodes with AppendFrame and decodes with
// gobwas/ws's ws.ReadFrame, an independent implementation.
func TestAppendFrameReadByGobwas(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	sizes := []int{0, 1, 125, 126, 127, 1000, 65535, 65536, 70000}
	ops := []ws.OpCode{ws.OpText, ws.OpBinary, ws.OpContinuation, ws.OpPing, ws.OpPong, ws.OpClose}
	var stream []byte
	var want []ws.Frame
	for _, op := range ops {
		for _, size := range sizes {
			if op.IsControl() && size > 125 {
				continue
			}
			payload := make([]byte, size)
			for i := range payload {
				payload[i] = byte(rng.Uint32())
			}
			stream = AppendFrame(stream, op, payload)
			want = append(want, ws.NewFrame(op, true, payload))
		}
	}
	r := bytes.NewReader(stream)
	for i, w := range want {
		f, err := ws.ReadFrame(r)
		if err != nil {
			t.Fatalf(
				"frame %d: ws.ReadFrame: %v",
				i, err,
			)
		}
		if f.Header != w.Header || !bytes.Equal(f.Payload, w.Payload) {
			t.Fatalf(
				"frame %d: gobwas read %+v (%d bytes), want %+v (%d bytes)",
				i, f.Header, len(f.Payload), w.Header, len(w.Payload),
			)
		}
		state := ws.StateClientSide
		if f.Header.OpCode == ws.OpContinuation {
			state = state.Set(ws.StateFragmented)
		}
		if err := ws.CheckHeader(f.Header, state); err != nil {
			t.Fatalf(
				"frame %d: not a valid server frame for a client: %v",
				i, err,
			)
		}
	}
	if _, err := ws.ReadFrame(r); err != io.EOF {
		t.Fatalf(
			"trailing bytes after the last frame: %v",
			err,
		)
	}
}

// TestGobwasFrameParsedByUs encodes masked client frames with gobwas/ws and
// decodes them with ParseHeader, CheckHeader and Unmask.
func TestGobwasFrameParsedByUs(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	sizes := []int{0, 1, 3, 125, 126, 1000, 65535, 65536, 100000}
	for _, size := range sizes {
		for _, op := range []ws.OpCode{ws.OpText, ws.OpBinary, ws.OpPing, ws.OpClose} {
			if op.IsControl() && size > 125 {
				continue
			}
			payload := make([]byte, size)
			for i := range payload {
				payload[i] = byte(rng.Uint32())
			}
			var mask [4]byte
			binary.LittleEndian.PutUint32(mask[:], rng.Uint32())
			var buf bytes.Buffer
			f := ws.MaskFrameWith(ws.NewFrame(op, true, payload), mask)
			if err := ws.WriteFrame(&buf, f); err != nil {
				t.Fatal(err)
			}
			wire := buf.Bytes()

			h, n, err := ParseHeader(wire)
			if err != nil || n == 0 {
				t.Fatalf(
					"size %d op %v: ParseHeader: n=%d err=%v",
					size, op, n, err,
				)
			}
			if err := CheckHeader(h, false); err != nil {
				t.Fatalf(
					"size %d op %v: CheckHeader: %v",
					size, op, err,
				)
			}
			if h.OpCode != op || !h.Fin || h.Mask != mask || h.Length != int64(size) || n+size != len(wire) {
				t.Fatalf(
					"size %d op %v: header %+v n=%d, wire %d bytes",
					size, op, h, n, len(wire),
				)
			}
			// Unmask in pieces, as bytes arriving over several reads would be.
			got := wire[n:]
			for off := 0; off < len(got); {
				step := min(1+rng.IntN(5000), len(got)-off)
				Unmask(got[off:off+step], h.Mask, off)
				off += step
			}
			if !bytes.Equal(got, payload) {
				t.Fatalf(
					"size %d op %v: unmasked payload differs",
					size, op,
				)
			}
		}
	}
}
