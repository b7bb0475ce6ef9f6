package frame

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/gobwas/ws"
)

// rawHeader builds header bytes by hand, independently of AppendHeader:
// b0 as given, then the length in the encoding lenBytes (0 = 7-bit, 2 or 8
// extended), then the mask if masked.
func rawHeader(b0 byte, masked bool, lenBytes int, length uint64, mask [4]byte) []byte {
	var b1 byte
	if masked {
		b1 = 0x80
	}
	p := []byte{b0, 0}
	switch lenBytes {
	case 0:
		p[1] = b1 | byte(length)
	case 2:
		p[1] = b1 | 126
		p = binary.BigEndian.AppendUint16(p, uint16(length))
	case 8:
		p[1] = b1 | 127
		p = binary.BigEndian.AppendUint64(p, length)
	}
	if masked {
		p = append(p, mask[:]...)
	}
	return p
}

func TestParseHeaderLengths(t *testing.T) {
	mask := [4]byte{0xa1, 0xb2, 0xc3, 0xd4}
	tests := []struct {
		name     string
		lenBytes int
		length   uint64
	}{
		{
			name:     "7-bit zero",
			lenBytes: 0,
			length:   0,
		},
		{
			name:     "7-bit one",
			lenBytes: 0,
			length:   1,
		},
		{
			name:     "7-bit max",
			lenBytes: 0,
			length:   125,
		},
		{
			name:     "16-bit min",
			lenBytes: 2,
			length:   126,
		},
		{
			name:     "16-bit 1000",
			lenBytes: 2,
			length:   1000,
		},
		{
			name:     "16-bit max",
			lenBytes: 2,
			length:   65535,
		},
		{
			name:     "64-bit min",
			lenBytes: 8,
			length:   65536,
		},
		{
			name:     "64-bit 4 GiB",
			lenBytes: 8,
			length:   1 << 32,
		},
		{
			name:     "64-bit max",
			lenBytes: 8,
			length:   1<<63 - 1,
		},
	}
	for _, tt := range tests {
		for _, masked := range []bool{true, false} {
			for _, b0 := range []byte{0x81, 0x02, 0x80, 0x8a, 0xf9} {
				p := rawHeader(b0, masked, tt.lenBytes, tt.length, mask)
				wantN := 2 + tt.lenBytes
				if masked {
					wantN += 4
				}
				if len(p) != wantN {
					t.Fatalf(
						"%s: test header has %d bytes, want %d",
						tt.name, len(p), wantN,
					)
				}
				// Every split point: a strict prefix asks for more bytes.
				for k := 0; k < len(p); k++ {
					h, n, err := ParseHeader(p[:k])
					if n != 0 || err != nil || h != (ws.Header{}) {
						t.Fatalf(
							"%s masked=%v b0=%#x: prefix of %d/%d bytes: got h=%+v n=%d err=%v, want need-more",
							tt.name, masked, b0, k, len(p), h, n, err,
						)
					}
				}
				// The whole header, alone and followed by payload bytes.
				for _, extra := range [][]byte{nil, {0xff}, bytes.Repeat([]byte{0x55}, 20)} {
					in := append(append([]byte(nil), p...), extra...)
					h, n, err := ParseHeader(in)
					if err != nil || n != wantN {
						t.Fatalf(
							"%s masked=%v b0=%#x extra=%d: n=%d err=%v, want n=%d",
							tt.name, masked, b0, len(extra), n, err, wantN,
						)
					}
					want := ws.Header{
						Fin:    b0&0x80 != 0,
						Rsv:    (b0 >> 4) & 7,
						OpCode: ws.OpCode(b0 & 0xf),
						Masked: masked,
						Length: int64(tt.length),
					}
					if masked {
						want.Mask = mask
					}
					if h != want {
						t.Fatalf(
							"%s masked=%v b0=%#x: got %+v, want %+v",
							tt.name, masked, b0, h, want,
						)
					}
				}
			}
		}
	}
}

func TestParseHeaderBadLength(t *testing.T) {
	tests := []struct {
		name     string
		lenBytes int
		length   uint64
	}{
		{
			name:     "16-bit encoding of 0",
			lenBytes: 2,
			length:   0,
		},
		{
			name:     "16-bit encoding of 125",
			lenBytes: 2,
			length:   125,
		},
		{
			name:     "64-bit encoding of 0",
			lenBytes: 8,
			length:   0,
		},
		{
			name:     "64-bit encoding of 125",
			lenBytes: 8,
			length:   125,
		},
		{
			name:     "64-bit encoding of 126",
			lenBytes: 8,
			length:   126,
		},
		{
			name:     "64-bit encoding of 65535",
			lenBytes: 8,
			length:   65535,
		},
		{
			name:     "64-bit with most significant bit",
			lenBytes: 8,
			length:   1 << 63,
		},
		{
			name:     "64-bit all ones",
			lenBytes: 8,
			length:   1<<64 - 1,
		},
	}
	for _, tt := range tests {
		for _, masked := range []bool{true, false} {
			p := rawHeader(0x82, masked, tt.lenBytes, tt.length, [4]byte{1, 2, 3, 4})
			for k := 0; k < len(p); k++ {
				if _, n, err := ParseHeader(p[:k]); n != 0 || err != nil {
					t.Fatalf(
						"%s: prefix %d: n=%d err=%v, want need-more (errors come with the whole header)",
						tt.name, k, n, err,
					)
				}
			}
			h, n, err := ParseHeader(p)
			if err != ErrBadLength || n != 0 || h != (ws.Header{}) {
				t.Fatalf(
					"%s masked=%v: got h=%+v n=%d err=%v, want ErrBadLength",
					tt.name, masked, h, n, err,
				)
			}
			if err.Code != ws.StatusProtocolError {
				t.Fatalf(
					"%s: code %d, want 1002",
					tt.name, err.Code,
				)
			}
		}
	}
}

// TestParseHeaderAgainstGobwas decodes random valid headers with gobwas/ws's
// ws.ReadHeader, an independent implementation.
func TestParseHeaderAgainstGobwas(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lengths := []int64{0, 1, 125, 126, 127, 65535, 65536, 1 << 40, 1<<63 - 1}
	for i := 0; i < 5000; i++ {
		want := ws.Header{
			Fin:    rng.IntN(2) == 0,
			Rsv:    byte(rng.IntN(8)),
			OpCode: ws.OpCode(rng.IntN(16)),
			Masked: rng.IntN(2) == 0,
			Length: lengths[rng.IntN(len(lengths))],
		}
		if rng.IntN(2) == 0 {
			want.Length = rng.Int64N(200000)
		}
		if want.Masked {
			binary.LittleEndian.PutUint32(want.Mask[:], rng.Uint32())
		}
		var buf bytes.Buffer
		if err := ws.WriteHeader(&buf, want); err != nil {
			t.Fatal(err)
		}
		p := buf.Bytes()
		got, n, err := ParseHeader(p)
		if err != nil || n != len(p) || got != want {
			t.Fatalf(
				"ParseHeader(%x) = %+v, %d, %v; want %+v, %d",
				p, got, n, err, want, len(p),
			)
		}
		viaGobwas, gerr := ws.ReadHeader(bytes.NewReader(p))
		if gerr != nil || viaGobwas != got {
			t.Fatalf(
				"ws.ReadHeader(%x) = %+v, %v; ParseHeader gave %+v",
				p, viaGobwas, gerr, got,
			)
		}
	}
}

func TestCheckHeader(t *testing.T) {
	masked := func(h ws.Header) ws.Header {
		h.Masked = true
		h.Mask = [4]byte{9, 8, 7, 6}
		return h
	}
	tests := []struct {
		name       string
		h          ws.Header
		fragmented bool
		want       *Error
	}{
		{
			name: "text",
			h:    masked(ws.Header{Fin: true, OpCode: ws.OpText, Length: 5}),
		},
		{
			name: "binary large",
			h:    masked(ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 1 << 40}),
		},
		{
			name: "first fragment",
			h:    masked(ws.Header{OpCode: ws.OpText, Length: 5}),
		},
		{
			name:       "middle continuation",
			h:          masked(ws.Header{OpCode: ws.OpContinuation, Length: 5}),
			fragmented: true,
		},
		{
			name:       "final continuation",
			h:          masked(ws.Header{Fin: true, OpCode: ws.OpContinuation}),
			fragmented: true,
		},
		{
			name:       "ping inside fragmented message",
			h:          masked(ws.Header{Fin: true, OpCode: ws.OpPing, Length: 125}),
			fragmented: true,
		},
		{
			name:       "pong inside fragmented message",
			h:          masked(ws.Header{Fin: true, OpCode: ws.OpPong}),
			fragmented: true,
		},
		{
			name:       "close inside fragmented message",
			h:          masked(ws.Header{Fin: true, OpCode: ws.OpClose, Length: 2}),
			fragmented: true,
		},
		{
			name: "RSV1",
			h:    masked(ws.Header{Fin: true, Rsv: 4, OpCode: ws.OpText}),
			want: ErrReservedBits,
		},
		{
			name: "RSV2",
			h:    masked(ws.Header{Fin: true, Rsv: 2, OpCode: ws.OpText}),
			want: ErrReservedBits,
		},
		{
			name: "RSV3 on ping",
			h:    masked(ws.Header{Fin: true, Rsv: 1, OpCode: ws.OpPing}),
			want: ErrReservedBits,
		},
		{
			name: "RSV wins over reserved opcode",
			h:    masked(ws.Header{Fin: true, Rsv: 7, OpCode: 0x3}),
			want: ErrReservedBits,
		},
		{
			name: "opcode 3",
			h:    masked(ws.Header{Fin: true, OpCode: 0x3}),
			want: ErrReservedOpcode,
		},
		{
			name: "opcode 7",
			h:    masked(ws.Header{Fin: true, OpCode: 0x7}),
			want: ErrReservedOpcode,
		},
		{
			name: "opcode B",
			h:    masked(ws.Header{Fin: true, OpCode: 0xb}),
			want: ErrReservedOpcode,
		},
		{
			name: "opcode F",
			h:    masked(ws.Header{Fin: true, OpCode: 0xf}),
			want: ErrReservedOpcode,
		},
		{
			name: "unmasked text",
			h:    ws.Header{Fin: true, OpCode: ws.OpText, Length: 3},
			want: ErrNotMasked,
		},
		{
			name: "unmasked close",
			h:    ws.Header{Fin: true, OpCode: ws.OpClose},
			want: ErrNotMasked,
		},
		{
			name: "ping 126 bytes",
			h:    masked(ws.Header{Fin: true, OpCode: ws.OpPing, Length: 126}),
			want: ErrControlTooLong,
		},
		{
			name: "close 65536 bytes",
			h:    masked(ws.Header{Fin: true, OpCode: ws.OpClose, Length: 65536}),
			want: ErrControlTooLong,
		},
		{
			name: "fragmented ping",
			h:    masked(ws.Header{OpCode: ws.OpPing, Length: 1}),
			want: ErrControlFragmented,
		},
		{
			name: "fragmented pong",
			h:    masked(ws.Header{OpCode: ws.OpPong}),
			want: ErrControlFragmented,
		},
		{
			name: "fragmented close",
			h:    masked(ws.Header{OpCode: ws.OpClose}),
			want: ErrControlFragmented,
		},
		{
			name: "continuation without start",
			h:    masked(ws.Header{Fin: true, OpCode: ws.OpContinuation}),
			want: ErrUnexpectedContinuation,
		},
		{
			name: "non-final continuation without start",
			h:    masked(ws.Header{OpCode: ws.OpContinuation, Length: 9}),
			want: ErrUnexpectedContinuation,
		},
		{
			name:       "text inside fragmented message",
			h:          masked(ws.Header{Fin: true, OpCode: ws.OpText}),
			fragmented: true,
			want:       ErrExpectedContinuation,
		},
		{
			name:       "binary fragment inside fragmented message",
			h:          masked(ws.Header{OpCode: ws.OpBinary}),
			fragmented: true,
			want:       ErrExpectedContinuation,
		},
	}
	for _, tt := range tests {
		if got := CheckHeader(tt.h, tt.fragmented); got != tt.want {
			t.Errorf(
				"%s: CheckHeader(%+v, %v) = %v, want %v",
				tt.name, tt.h, tt.fragmented, got, tt.want,
			)
		}
	}
}

// TestCheckHeaderAgainstGobwas compares with gobwas/ws's ws.CheckHeader in
// server state (plus our control-frame rules, which it checks first).
func TestCheckHeaderAgainstGobwas(t *testing.T) {
	for b0 := 0; b0 < 256; b0++ {
		for _, masked := range []bool{true, false} {
			for _, length := range []int64{0, 125, 126} {
				for _, fragmented := range []bool{false, true} {
					h := ws.Header{
						Fin:    b0&0x80 != 0,
						Rsv:    byte(b0>>4) & 7,
						OpCode: ws.OpCode(b0 & 0xf),
						Masked: masked,
						Length: length,
					}
					state := ws.StateServerSide
					if fragmented {
						state = state.Set(ws.StateFragmented)
					}
					ours := CheckHeader(h, fragmented)
					theirs := ws.CheckHeader(h, state)
					if (ours == nil) != (theirs == nil) {
						t.Fatalf(
							"header %+v fragmented=%v: ours %v, gobwas %v",
							h, fragmented, ours, theirs,
						)
					}
				}
			}
		}
	}
}

func TestUnmask(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := 0; n < 300; n++ {
		for offset := 0; offset < 8; offset++ {
			var mask [4]byte
			binary.LittleEndian.PutUint32(mask[:], rng.Uint32())
			orig := make([]byte, n)
			for i := range orig {
				orig[i] = byte(rng.Uint32())
			}
			p := append([]byte(nil), orig...)
			Unmask(p, mask, offset)
			for i := range p {
				if p[i] != orig[i]^mask[(offset+i)%4] {
					t.Fatalf(
						"n=%d offset=%d: byte %d = %#x, want %#x",
						n, offset, i, p[i], orig[i]^mask[(offset+i)%4],
					)
				}
			}
			// Unmasking in two pieces equals unmasking whole.
			if n > 0 {
				cut := rng.IntN(n)
				q := append([]byte(nil), orig...)
				Unmask(q[:cut], mask, offset)
				Unmask(q[cut:], mask, offset+cut)
				if !bytes.Equal(p, q) {
					t.Fatalf(
						"n=%d offset=%d cut=%d: split unmask differs",
						n, offset, cut,
					)
				}
			}
			// XOR is its own inverse.
			Unmask(p, mask, offset)
			if !bytes.Equal(p, orig) {
				t.Fatalf(
					"n=%d offset=%d: unmask twice is not the identity",
					n, offset,
				)
			}
		}
	}
}
