package conn

import (
	"bytes"
	"compress/flate"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/frame"
)

// deflateRequest is upgradeRequest with a permessage-deflate offer.
var deflateRequest = strings.Replace(upgradeRequest, "\r\n\r\n",
	"\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n", 1)

// referenceInflate is what RFC 7692 section 7.2.2 says a receiver gets from payload z, with
// compress/flate: the message (up to limit+1 bytes) or a corruption error.
func referenceInflate(z []byte, limit int) ([]byte, error) {
	r := flate.NewReader(io.MultiReader(bytes.NewReader(z), bytes.NewReader([]byte{0, 0, 0xff, 0xff})))
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err == io.ErrUnexpectedEOF {
		err = nil
	}
	return out, err
}

// FuzzCompressedMessage drives the inbound inflater path of a connection that agreed on
// permessage-deflate: any payload, sent as a compressed text or binary message in one or two
// frames (RSV1 on the first only) and in three chops anywhere, is echoed as compress/flate
// inflates it (compressed back when that pays), or fails with 1009 past MaxMessage once
// inflated, 1007 for data that does not inflate or text that is not UTF-8 once inflated.
func FuzzCompressedMessage(f *testing.F) {
	for _, m := range []string{"hello", strings.Repeat(`{"k":"v"},`, 100), "κόσμε", "a\xed\xa0\x80b"} {
		f.Add(frame.AppendDeflate(nil, []byte(m)), true, 3, 5, 11, false)
		f.Add(frame.AppendDeflate(nil, []byte(m)), false, 2, 4, 30, true)
	}
	f.Add(frame.AppendDeflate(nil, make([]byte, 70000)), false, 10, 20, 40, true) // over the limit
	f.Add([]byte{0xff, 0xff, 0xff}, false, 1, 2, 3, false)                        // not DEFLATE
	f.Fuzz(func(t *testing.T, z []byte, text bool, split, c1, c2 int, fragmented bool) {
		if len(z) > 1<<14 {
			return
		}
		const limit = 64 << 10
		op := ws.OpBinary
		if text {
			op = ws.OpText
		}
		var wire []byte
		if fragmented {
			s := max(0, min(len(z), split))
			wire = append(maskedFrame(op, false, 4, z[:s]), maskedFrame(ws.OpContinuation, true, 0, z[s:])...)
		} else {
			wire = maskedFrame(op, true, 4, z)
		}
		c1, c2 = max(0, min(len(wire), c1)), max(0, min(len(wire), c2))
		if c1 > c2 {
			c1, c2 = c2, c1
		}
		h := newHarness(t, Config{Compression: true, MaxMessage: limit})
		p := h.dial()
		p.send([]byte(deflateRequest))
		p.readHTTP(101)
		for _, c := range chop(wire, c1, c2) {
			if p.open() {
				p.send(c)
			}
		}
		fs := p.frames()
		want, err := referenceInflate(z, limit)
		var code ws.StatusCode
		switch {
		case len(want) > limit:
			code = ws.StatusMessageTooBig
		case err != nil:
			code = ws.StatusInvalidFramePayloadData
		case text && !utf8.Valid(want):
			code = ws.StatusInvalidFramePayloadData
		}
		if code != 0 {
			if got := closeCode(fs); got != code {
				t.Fatalf("close %d, want %d (reference: %d bytes, %v)", got, code, len(want), err)
			}
			return
		}
		if len(fs) != 1 || fs[0].Header.OpCode != op {
			t.Fatalf("%d frames back (close %d), want the echo", len(fs), closeCode(fs))
		}
		got := fs[0].Payload
		if fs[0].Header.Rsv&4 != 0 {
			if got, err = referenceInflate(got, limit); err != nil {
				t.Fatalf("the echo does not inflate: %v", err)
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("echo of %d bytes, want %d", len(got), len(want))
		}
	})
}

// maskedFrame encodes a client frame with the given RSV bits.
func maskedFrame(op ws.OpCode, fin bool, rsv byte, payload []byte) []byte {
	b := frame.AppendHeader(nil, fin, op, len(payload))
	b[0] |= rsv << 4
	b[1] |= 0x80
	mask := [4]byte{9, 8, 7, 6}
	b = append(b, mask[:]...)
	p := append([]byte(nil), payload...)
	frame.Unmask(p, mask, 0)
	return append(b, p...)
}
