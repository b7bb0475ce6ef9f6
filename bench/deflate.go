package bench

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
)

// permessage-deflate (RFC 7692) on the client side, for -compression: the driver offers the
// extension without context takeover in either direction and requires the server to agree to
// server_no_context_takeover, so that every compressed message inflates on its own with one
// decompressor per loop (no window per connection in the driver either). The driver's own
// messages (echo payloads, client publishes) are sent uncompressed, which RFC 7692 allows.

// deflateOffer is the request header line of -compression.
const deflateOffer = "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"

var (
	errDeflateAnswer = errors.New("server's permessage-deflate answer keeps a compression context (no server_no_context_takeover)")
	errInflate       = errors.New("compressed message does not inflate")
)

// deflateAnswer checks the value of the response's Sec-WebSocket-Extensions header against
// the offer: it reports whether permessage-deflate was agreed.
func deflateAnswer(value []byte, offered bool) (bool, error) {
	name, params, _ := bytes.Cut(value, []byte(";"))
	if !offered || string(bytes.TrimSpace(name)) != "permessage-deflate" {
		return false, errUnrequestedExt
	}
	noCtx := false
	for _, p := range bytes.Split(params, []byte(";")) {
		if string(bytes.TrimSpace(p)) == "server_no_context_takeover" {
			noCtx = true
		}
	}
	if !noCtx {
		return false, errDeflateAnswer
	}
	return true, nil
}

// inflater is a loop's decompressor (loop goroutine only).
type inflater struct {
	fr  io.ReadCloser
	src bytes.Reader
	tmp [4096]byte
}

var deflateTail = []byte{0, 0, 0xff, 0xff}

// inflate appends the message compressed in z to dst (RFC 7692 section 7.2.2), at most
// maxFrameSize bytes.
func (l *Loop) inflate(dst, z []byte) ([]byte, error) {
	in := l.infl
	if in == nil {
		in = &inflater{}
		in.fr = flate.NewReader(&in.src)
		l.infl = in
	}
	l.zbuf = append(append(l.zbuf[:0], z...), deflateTail...)
	in.src.Reset(l.zbuf)
	if err := in.fr.(flate.Resetter).Reset(&in.src, nil); err != nil {
		return dst, errInflate
	}
	for {
		n, err := in.fr.Read(in.tmp[:])
		dst = append(dst, in.tmp[:n]...)
		if len(dst) > maxFrameSize {
			return dst, errTooBig
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return dst, nil
		default:
			return dst, errInflate
		}
	}
}
