package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/gobwas/ws"
)

func TestParseHeader(t *testing.T) {
	mask := []byte{1, 2, 3, 4}
	tests := []struct {
		name string
		in   []byte
		want ws.Header
		n    int
	}{
		{"masked text 5", append([]byte{0x81, 0x85}, mask...), ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: [4]byte{1, 2, 3, 4}, Length: 5}, 6},
		{"16-bit length", append([]byte{0x02, 0xfe, 0x01, 0x00}, mask...), ws.Header{OpCode: ws.OpBinary, Masked: true, Mask: [4]byte{1, 2, 3, 4}, Length: 256}, 8},
		{"64-bit length", append([]byte{0x80, 0xff, 0, 0, 0, 0, 0, 1, 0, 0}, mask...), ws.Header{Fin: true, Masked: true, Mask: [4]byte{1, 2, 3, 4}, Length: 65536}, 14},
		{"rsv and unmasked", []byte{0xf9, 0x03}, ws.Header{Fin: true, Rsv: 7, OpCode: ws.OpPing, Length: 3}, 2},
		{"short", []byte{0x81}, ws.Header{}, 0},
		{"short 16-bit", []byte{0x81, 0xfe, 0x01}, ws.Header{}, 0},
		{"short mask", []byte{0x81, 0x85, 1, 2, 3}, ws.Header{}, 0},
	}
	for _, tt := range tests {
		h, n, err := parseHeader(tt.in)
		if err != nil || n != tt.n || h != tt.want {
			t.Errorf("%s: parseHeader = %+v, %d, %v; want %+v, %d", tt.name, h, n, err, tt.want, tt.n)
		}
	}
	if _, _, err := parseHeader([]byte{0x81, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0}); !errors.Is(err, ws.ErrHeaderLengthMSB) {
		t.Fatalf("64-bit length with MSB set: err = %v", err)
	}
}

// FuzzParseHeader checks parseHeader against gobwas/ws's own ReadHeader: the
// same header and size for every complete header, "need more" when
// ReadHeader runs out of bytes (unless the 64-bit length is already known to
// be invalid), and an error exactly when it fails otherwise.
func FuzzParseHeader(f *testing.F) {
	for _, s := range [][]byte{
		{0x81, 0x85, 1, 2, 3, 4}, {0x88, 0x82, 0, 0, 0, 0}, {0x02, 0xfe, 0x01, 0x00, 9, 9, 9, 9},
		{0x80, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4}, {0x81, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0},
		{0x81}, {}, {0x09, 0x00},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := parseHeader(b)
		r := bytes.NewReader(b)
		want, wantErr := ws.ReadHeader(r)
		switch {
		case errors.Is(wantErr, io.EOF) || errors.Is(wantErr, io.ErrUnexpectedEOF):
			// ReadHeader reads the mask before judging the 64-bit length;
			// parseHeader rejects a bad length as soon as it has it.
			if errors.Is(err, ws.ErrHeaderLengthMSB) && len(b) >= 10 && b[1]&0x7f == 127 && b[2]&0x80 != 0 {
				return
			}
			if err != nil || n != 0 {
				t.Fatalf("incomplete header %x: got n=%d err=%v, want need-more", b, n, err)
			}
		case wantErr != nil:
			if err == nil {
				t.Fatalf("header %x: ReadHeader failed with %v, parseHeader accepted %+v", b, wantErr, h)
			}
		default:
			if err != nil || h != want || n != len(b)-r.Len() {
				t.Fatalf("header %x: got %+v n=%d err=%v, want %+v n=%d", b, h, n, err, want, len(b)-r.Len())
			}
		}
	})
}

func TestPutServerHeader(t *testing.T) {
	for _, n := range []int{0, 5, 125, 126, 65535, 65536} {
		buf := make([]byte, 16+n)
		start := putServerHeader(buf, 16, ws.OpBinary, n)
		h, err := ws.ReadHeader(bytes.NewReader(buf[start:16]))
		if err != nil {
			t.Fatal(err)
		}
		if h.Length != int64(n) || !h.Fin || h.Masked || h.OpCode != ws.OpBinary || h.Rsv != 0 {
			t.Fatalf("n=%d: header %+v", n, h)
		}
		if got := 16 - start; got != ws.HeaderSize(h) {
			t.Fatalf("n=%d: header takes %d bytes, want %d", n, got, ws.HeaderSize(h))
		}
	}
}

// rawConn is a handshaken client connection that writes frames byte for
// byte, for the malformed input gorilla's client refuses to send.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("handshake: %d %v", resp.StatusCode, resp.Header)
	}
	return &rawConn{Conn: c, br: br}
}

// readFrame reads one server frame.
func (c *rawConn) readFrame(t *testing.T) ws.Frame {
	t.Helper()
	h, err := ws.ReadHeader(c.br)
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(c.br, p); err != nil {
		t.Fatal(err)
	}
	return ws.Frame{Header: h, Payload: p}
}

// maskedFrame builds a client frame (RFC 6455, 5.3).
func maskedFrame(b0 byte, payload []byte) []byte {
	f := ws.MaskFrameWith(ws.Frame{Header: ws.Header{Length: int64(len(payload))}, Payload: append([]byte(nil), payload...)}, [4]byte{7, 1, 9, 3})
	out := ws.MustCompileFrame(f)
	out[0] = b0
	return out
}

func TestMalformedFramesFailWith1002(t *testing.T) {
	addr := startAddr(t, "echo")
	closeBody := func(code uint16) []byte { return binary.BigEndian.AppendUint16(nil, code) }
	tests := map[string][]byte{
		"unmasked":               {0x81, 0x01, 'x'},
		"reserved opcode":        maskedFrame(0x83, nil),
		"rsv without extension":  maskedFrame(0xc1, []byte("x")),
		"continuation first":     maskedFrame(0x80, []byte("x")),
		"fragmented ping":        maskedFrame(0x09, nil),
		"ping over 125":          maskedFrame(0x89, make([]byte, 126)),
		"text inside fragmented": append(maskedFrame(0x01, []byte("a")), maskedFrame(0x81, []byte("b"))...),
		"close code 1005":        maskedFrame(0x88, closeBody(1005)),
		"close with one byte":    maskedFrame(0x88, []byte{3}),
		"close reason not utf8":  maskedFrame(0x88, append(closeBody(1000), 0xff)),
		"64-bit length with MSB": {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4},
	}
	for name, raw := range tests {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, addr)
			if _, err := c.Write(raw); err != nil {
				t.Fatal(err)
			}
			f := c.readFrame(t)
			if f.Header.OpCode != ws.OpClose || len(f.Payload) < 2 || binary.BigEndian.Uint16(f.Payload) != uint16(ws.StatusProtocolError) {
				t.Fatalf("got %+v %q, want close 1002", f.Header, f.Payload)
			}
			if _, err := c.br.ReadByte(); err != io.EOF {
				t.Fatalf("after the close frame: %v, want EOF", err)
			}
		})
	}
}

func TestFragmentsAndInterleavedControl(t *testing.T) {
	c := dialRaw(t, startAddr(t, "echo"))
	var in []byte
	in = append(in, maskedFrame(0x01, []byte("hel"))...)
	in = append(in, maskedFrame(0x89, []byte("p"))...) // ping between fragments
	in = append(in, maskedFrame(0x00, []byte("lo "))...)
	in = append(in, maskedFrame(0x80, bytes.Repeat([]byte("w"), 300))...)
	in = append(in, maskedFrame(0x82, []byte{0, 1})...)
	// Written one byte at a time: every partial-header and partial-payload
	// path runs.
	for i := range in {
		if _, err := c.Write(in[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if f := c.readFrame(t); f.Header.OpCode != ws.OpPong || string(f.Payload) != "p" {
		t.Fatalf("first frame %+v %q, want pong \"p\"", f.Header, f.Payload)
	}
	want := "hello " + string(bytes.Repeat([]byte("w"), 300))
	if f := c.readFrame(t); f.Header.OpCode != ws.OpText || !f.Header.Fin || string(f.Payload) != want {
		t.Fatalf("reassembled echo %+v, %d bytes", f.Header, len(f.Payload))
	}
	if f := c.readFrame(t); f.Header.OpCode != ws.OpBinary || !bytes.Equal(f.Payload, []byte{0, 1}) {
		t.Fatalf("binary echo %+v %v", f.Header, f.Payload)
	}
	if _, err := c.Write(maskedFrame(0x88, nil)); err != nil {
		t.Fatal(err)
	}
	if f := c.readFrame(t); f.Header.OpCode != ws.OpClose || len(f.Payload) != 0 {
		t.Fatalf("close without code answered with %+v %q, want an empty close", f.Header, f.Payload)
	}
}

func TestBadHandshakeIsRejected(t *testing.T) {
	addr := startAddr(t, "echo")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("plain GET answered %d, want 400", resp.StatusCode)
	}
}
