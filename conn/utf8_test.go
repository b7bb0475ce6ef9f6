package conn

import (
	"bytes"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// Text is checked as it arrives: a frame whose first part already holds invalid UTF-8 fails the
// connection with 1007 before the rest of it is sent (RFC 6455 8.1; Autobahn 6.4 "fail fast").

// fragment encodes one masked client frame with the given FIN bit.
func fragment(op ws.OpCode, fin bool, payload []byte) []byte {
	f := ws.MaskFrameInPlace(ws.NewFrame(op, fin, append([]byte(nil), payload...)))
	var buf bytes.Buffer
	if err := ws.WriteFrame(&buf, f); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// chop splits b at the given offsets.
func chop(b []byte, at ...int) [][]byte {
	var out [][]byte
	prev := 0
	for _, i := range at {
		out = append(out, b[prev:i])
		prev = i
	}
	return append(out, b[prev:])
}

// closeCode returns the code of the close frame among fs, or 0.
func closeCode(fs []ws.Frame) ws.StatusCode {
	for _, f := range fs {
		if f.Header.OpCode == ws.OpClose {
			code, _ := ws.ParseCloseFrameData(f.Payload)
			return code
		}
	}
	return 0
}

// TestInvalidUTF8InFirstChopFails: a text frame sent in three chops, the first of which holds
// (after the header) an invalid sequence, is failed with 1007 as soon as the first chop is read:
// a single-frame message, the first frame of a fragmented one, and a continuation.
func TestInvalidUTF8InFirstChopFails(t *testing.T) {
	long := bytes.Repeat([]byte("valid text, "), 2000) // 24000 bytes: a 16-bit length
	bad := append([]byte("ok \xed\xa0\x80 surrogate "), long...)
	cases := []struct {
		name   string
		before []byte // sent whole first
		frame  []byte // sent in three chops
	}{
		{"single frame", nil, fragment(ws.OpText, true, bad)},
		{"first fragment", nil, fragment(ws.OpText, false, bad)},
		{"continuation", fragment(ws.OpText, false, []byte("a valid first fragment")),
			fragment(ws.OpContinuation, true, bad)},
		{"code point cut by the chop, then wrong", nil, fragment(ws.OpText, true, append([]byte("\xf0\x9f"), long...))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			p := h.open()
			if tc.before != nil {
				p.send(tc.before)
			}
			const hdr = 8                             // a masked header with a 16-bit length
			chops := chop(tc.frame, hdr+14, hdr+1000) // header and 14 bytes; then the rest in two
			if tc.name == "code point cut by the chop, then wrong" {
				chops = chop(tc.frame, hdr+2, hdr+1000) // the F0 9F is fine; "v" after it is not
				p.send(chops[0])
				if fs := p.frames(); len(fs) != 0 {
					t.Fatalf("a code point cut by the end of a read was failed: %v", fs)
				}
				chops = chops[1:]
			}
			p.send(chops[0])
			if code := closeCode(p.frames()); code != ws.StatusInvalidFramePayloadData {
				t.Fatalf("after the first chop: close %d, want 1007 before the rest is sent", code)
			}
			if h.rec.msgs != 0 {
				t.Fatalf("%d messages delivered", h.rec.msgs)
			}
		})
	}
}

// TestTextInChopsDelivered: valid text that arrives in pieces, split anywhere (inside code points,
// inside headers, across fragments), reaches the handler whole and unchanged, and the frames are
// counted once each.
func TestTextInChopsDelivered(t *testing.T) {
	text := bytes.Repeat([]byte("κόσμε 🌍 ascii "), 3000) // 69000 bytes: a 64-bit length
	single := fragment(ws.OpText, true, text)
	frag := append(fragment(ws.OpText, false, text[:1001]), fragment(ws.OpContinuation, false, text[1001:40003])...)
	frag = append(frag, fragment(ws.OpPing, true, []byte("between"))...)
	frag = append(frag, fragment(ws.OpContinuation, true, text[40003:])...)
	for _, wire := range [][]byte{single, frag} {
		for _, step := range []int{1, 3, 7, 1000, 4097, 65536} {
			h := newHarness(t, Config{})
			p := h.open()
			for _, c := range chop(wire, chopsEvery(len(wire), step)...) {
				p.send(c)
			}
			var got []byte
			for _, f := range p.frames() {
				if f.Header.OpCode == ws.OpText {
					got = append(got, f.Payload...)
				}
			}
			if !bytes.Equal(got, text) || h.rec.msgs != 1 {
				t.Fatalf("chops of %d bytes: %d messages, echo of %d bytes (equal %v), want 1 of %d",
					step, h.rec.msgs, len(got), bytes.Equal(got, text), len(text))
			}
			if h.e.conns[p.srv].msg != nil || h.e.conns[p.srv].in != nil {
				t.Fatal("buffers held after the message")
			}
		}
	}
}

func chopsEvery(n, step int) []int {
	var at []int
	for i := step; i < n; i += step {
		at = append(at, i)
	}
	return at
}

// FuzzTextInChops: a text message, in one or two fragments, sent in three chops anywhere is
// echoed unchanged if it is valid UTF-8 and failed with 1007 if not, exactly as when it arrives
// in one read.
func FuzzTextInChops(f *testing.F) {
	f.Add([]byte("hello"), 0, 3, 9, false)
	f.Add([]byte("κόσμε"), 3, 5, 11, true)
	f.Add([]byte("a\xed\xa0\x80b"), 2, 4, 6, false)
	f.Add([]byte("\xf4\x90\x80\x80"), 1, 7, 8, true)
	f.Add(bytes.Repeat([]byte("é"), 100), 50, 60, 150, true)
	f.Fuzz(func(t *testing.T, text []byte, split, c1, c2 int, fragmented bool) {
		if len(text) > 1<<16 {
			return
		}
		var wire []byte
		if fragmented {
			s := max(0, min(len(text), split))
			wire = append(fragment(ws.OpText, false, text[:s]), fragment(ws.OpContinuation, true, text[s:])...)
		} else {
			wire = fragment(ws.OpText, true, text)
		}
		c1, c2 = max(0, min(len(wire), c1)), max(0, min(len(wire), c2))
		if c1 > c2 {
			c1, c2 = c2, c1
		}
		h := newHarness(t, Config{})
		p := h.open()
		for _, c := range chop(wire, c1, c2) {
			if p.open() {
				p.send(c)
			}
		}
		fs := p.frames()
		if !utf8.Valid(text) {
			if code := closeCode(fs); code != ws.StatusInvalidFramePayloadData {
				t.Fatalf("invalid text: close %d, want 1007", code)
			}
			return
		}
		if len(fs) != 1 || fs[0].Header.OpCode != ws.OpText || !bytes.Equal(fs[0].Payload, text) {
			t.Fatalf("valid text: %d frames back, want its echo", len(fs))
		}
	})
}
