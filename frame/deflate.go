package frame

import (
	stdflate "compress/flate"
	"io"
	"sync"

	"github.com/gobwas/ws"
	"github.com/klauspost/compress/flate"
)

// permessage-deflate's payload transform (RFC 7692 section 7.2), without context takeover in
// either direction: every message is compressed by a compressor reset for it, and inflated by a
// decompressor reset for it, so a connection keeps no compression state between messages. The
// compressors and decompressors are pooled (any goroutine) and held only during a call: an idle
// connection that negotiated the extension costs no more memory than one that did not.
//
// Compression uses github.com/klauspost/compress/flate: for a 1 KB JSON message it is about five
// times faster than compress/flate, whose Reset clears tables sized for the whole window
// (docs/benchmarks.md, BenchmarkDeflate). Inflation uses compress/flate, which measured no
// slower (BenchmarkInflate).

// DeflateLevel is the compression level of every compressed message: the fastest. A fanned-out
// message is compressed once for all its subscribers, an echo once per message; level 1 costs a
// fifth of level 5's time on 1 KB of JSON for about 8% more bytes.
const DeflateLevel = flate.BestSpeed

// deflateTail is the empty stored block a flush ends with, which a sender removes and a receiver
// appends back (RFC 7692 sections 7.2.1 and 7.2.2).
var deflateTail = [4]byte{0x00, 0x00, 0xff, 0xff}

// ErrInflate: a compressed message that is not a valid DEFLATE stream (RFC 7692 section 7.2.2;
// code 1007 as for other payload data that is not consistent with the message type).
var ErrInflate = &Error{Code: ws.StatusInvalidFramePayloadData, Reason: "invalid compressed data"}

// deflater is a pooled compressor and the writer it appends to.
type deflater struct {
	fw  *flate.Writer
	out sliceWriter
}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

var deflaters = sync.Pool{New: func() any {
	d := new(deflater)
	d.fw, _ = flate.NewWriter(&d.out, DeflateLevel) // no error for a valid level
	return d
}}

// AppendDeflate appends payload compressed as one permessage-deflate message (RFC 7692 section
// 7.2.1: one DEFLATE stream ended by a sync flush whose final 4 bytes, 00 00 ff ff, are removed)
// to dst and returns the extended slice. No context is taken over from an earlier message. It
// allocates nothing once the pool is warm and dst has room (len(payload)+16 is always enough for
// the level used); any goroutine.
func AppendDeflate(dst, payload []byte) []byte {
	d := deflaters.Get().(*deflater)
	d.out.b = dst
	d.fw.Reset(&d.out)
	d.fw.Write(payload) // writes into memory: no error
	d.fw.Flush()
	out := d.out.b
	d.out.b = nil // the pool keeps nothing of the caller's
	deflaters.Put(d)
	if n := len(out); n-len(dst) >= 4 && out[n-4] == 0 && out[n-3] == 0 && out[n-2] == 0xff && out[n-1] == 0xff {
		out = out[:n-4]
	}
	return out
}

// AppendDeflateHeader appends the header of an unmasked, unfragmented server data frame whose
// payload is compressed (RSV1 set, RFC 7692 section 6) to dst. Panics as AppendHeader does, and
// if op is not text or binary (RSV1 is defined for a message's first frame only).
func AppendDeflateHeader(dst []byte, op ws.OpCode, payloadLen int) []byte {
	if op != ws.OpText && op != ws.OpBinary {
		panic("BUG: frame: compressed frame with a non-data opcode")
	}
	n := len(dst)
	dst = AppendHeader(dst, true, op, payloadLen)
	dst[n] |= bitRsv1
	return dst
}

// inflater is a pooled decompressor and the source it reads: the message's compressed bytes,
// then deflateTail.
type inflater struct {
	fr    io.ReadCloser // a compress/flate decompressor; also a flate.Resetter
	src   tailReader
	probe [1]byte // where Inflate reads the byte that tells a message at the limit from one over it
}

// tailReader reads p then deflateTail. It is an io.ByteReader, so compress/flate reads it
// directly instead of wrapping it in a bufio.Reader of its own.
type tailReader struct {
	p    []byte
	tail int // bytes of deflateTail read
}

func (r *tailReader) Read(b []byte) (int, error) {
	if len(r.p) > 0 {
		n := copy(b, r.p)
		r.p = r.p[n:]
		return n, nil
	}
	if r.tail == len(deflateTail) {
		return 0, io.EOF
	}
	n := copy(b, deflateTail[r.tail:])
	r.tail += n
	return n, nil
}

func (r *tailReader) ReadByte() (byte, error) {
	if len(r.p) > 0 {
		c := r.p[0]
		r.p = r.p[1:]
		return c, nil
	}
	if r.tail == len(deflateTail) {
		return 0, io.EOF
	}
	c := deflateTail[r.tail]
	r.tail++
	return c, nil
}

var inflaters = sync.Pool{New: func() any {
	in := new(inflater)
	in.fr = stdflate.NewReader(&in.src)
	return in
}}

// Inflate appends to dst the message whose compressed payload is src (RFC 7692 section 7.2.2:
// src followed by 00 00 ff ff, inflated), and returns the extended slice. It never produces
// more than limit bytes of message: past that it stops with ErrMessageTooBig (a deflate bomb
// costs at most limit bytes of buffer). A stream that does not inflate is ErrInflate. When dst
// is full, grow(dst, n) must return a slice with dst's content and room for at least n more
// bytes (Inflate never asks for more than the limit leaves); dst and the slices
// grow returns are the caller's, and on error the returned slice is what the caller must
// release. src is only read. Zero allocations once the pool is warm (grow aside); any goroutine.
func Inflate(dst, src []byte, limit int, grow func(b []byte, n int) []byte) ([]byte, *Error) {
	in := inflaters.Get().(*inflater)
	in.src = tailReader{p: src}
	if err := in.fr.(stdflate.Resetter).Reset(&in.src, nil); err != nil {
		in.src = tailReader{}
		inflaters.Put(in)
		return dst, ErrInflate
	}
	start := len(dst)
	var ferr *Error
	for {
		var n int
		var err error
		switch got := len(dst) - start; {
		case got == limit:
			// At the limit: one more byte of output, read aside, is one too many. (Buffers
			// never grow past the limit, so a limit that is a pool size class stays pooled.)
			if n, err = in.fr.Read(in.probe[:]); n > 0 {
				ferr = ErrMessageTooBig
			}
		default:
			if len(dst) == cap(dst) {
				dst = grow(dst, min(max(got, 4096), limit-got))
			}
			n, err = in.fr.Read(dst[len(dst):min(cap(dst), len(dst)+limit-got)])
			dst = dst[:len(dst)+n]
		}
		if ferr != nil {
			break
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			// The sync flush's empty stored block ends the data; the decompressor then finds
			// the input over in the middle of the next block's header (ErrUnexpectedEOF), or
			// the sender marked its last block final (EOF).
			break
		}
		if err != nil {
			ferr = ErrInflate
			break
		}
	}
	in.src = tailReader{}
	inflaters.Put(in)
	return dst, ferr
}
