package peerproto

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
)

func TestEncoders(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{string(AppendSubscribed(nil, "news", 0)), `{"op":"subscribed","channel":"news","seq":0}`},
		{string(AppendSubscribed([]byte("x"), "news", 18446744073709551615)), `x{"op":"subscribed","channel":"news","seq":18446744073709551615}`},
		{string(AppendUnsubscribed(nil, "news")), `{"op":"unsubscribed","channel":"news"}`},
		{string(AppendMessage(nil, "news", 3, "m1", []byte(`{"a":1}`))), `{"op":"message","channel":"news","seq":3,"id":"m1","data":{"a":1}}`},
		{string(AppendMessage(nil, "news", 4, "", []byte(`null`))), `{"op":"message","channel":"news","seq":4,"data":null}`},
		{string(AppendPublished(nil, "news", 5, "m2")), `{"op":"published","channel":"news","seq":5,"id":"m2"}`},
		{string(AppendPublished(nil, "news", 6, "")), `{"op":"published","channel":"news","seq":6}`},
		{string(AppendDuplicate(nil, "news", "m2")), `{"op":"duplicate","channel":"news","id":"m2"}`},
		{string(AppendError(nil, 400, "bad \"op\"")), `{"op":"error","code":400,"reason":"bad \"op\""}`},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got  %s\nwant %s", tt.got, tt.want)
		}
	}
}

func TestAppendStringEscapes(t *testing.T) {
	tests := map[string]string{
		"plain":           `"plain"`,
		"q\"b\\":          `"q\"b\\"`,
		"\n\r\t":          `"\n\r\t"`,
		"\x00\x1f\x7f":    "\"\\u0000\\u001f\x7f\"",
		"héllo €":         `"héllo €"`,
		"bad\xffutf8\xc3": "\"bad\ufffdutf8\ufffd\"",
		"":                `""`,
	}
	for in, want := range tests {
		got := string(appendString(nil, in))
		if got != want {
			t.Errorf("appendString(%q) = %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("appendString(%q) = %s is not valid JSON: %v", in, got, err)
		}
		if !strings.ContainsRune(in, '\ufffd') && !strings.Contains(want, "\ufffd") && back != in {
			t.Errorf("appendString(%q) decodes to %q", in, back)
		}
	}
}

// decodeServerFrame reads one unmasked frame per RFC 6455, section 5.2,
// independently of AppendFrameHeader.
func decodeServerFrame(t *testing.T, b []byte) (fin bool, opcode byte, payload []byte) {
	t.Helper()
	if len(b) < 2 {
		t.Fatalf("frame too short: %d", len(b))
	}
	fin = b[0]&0x80 != 0
	if b[0]&0x70 != 0 {
		t.Fatalf("RSV bits set: %08b", b[0])
	}
	opcode = b[0] & 0x0f
	if b[1]&0x80 != 0 {
		t.Fatal("server frame is masked")
	}
	n := uint64(b[1] & 0x7f)
	rest := b[2:]
	switch n {
	case 126:
		n = uint64(binary.BigEndian.Uint16(rest))
		if n < 126 {
			t.Fatalf("16-bit length %d not minimal", n)
		}
		rest = rest[2:]
	case 127:
		n = binary.BigEndian.Uint64(rest)
		if n <= 0xffff || n>>63 != 0 {
			t.Fatalf("64-bit length %d not minimal or has MSB set", n)
		}
		rest = rest[8:]
	}
	if uint64(len(rest)) != n {
		t.Fatalf("payload length %d, header says %d", len(rest), n)
	}
	return fin, opcode, rest
}

func TestAppendFrame(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 70000} {
		payload := bytes.Repeat([]byte{'a'}, n)
		frame := AppendFrame(nil, OpcodeText, payload)
		wantHeader := 2
		if n > 125 {
			wantHeader = 4
		}
		if n > 65535 {
			wantHeader = 10
		}
		if len(frame) != wantHeader+n {
			t.Fatalf("n=%d: frame length %d, want %d", n, len(frame), wantHeader+n)
		}
		fin, op, got := decodeServerFrame(t, frame)
		if !fin || op != OpcodeText || !bytes.Equal(got, payload) {
			t.Fatalf("n=%d: fin=%v op=%d payload ok=%v", n, fin, op, bytes.Equal(got, payload))
		}
	}
	fin, op, got := decodeServerFrame(t, AppendFrame(nil, OpcodePong, []byte("hi")))
	if !fin || op != OpcodePong || string(got) != "hi" {
		t.Fatalf("pong frame: fin=%v op=%d payload=%q", fin, op, got)
	}
}
