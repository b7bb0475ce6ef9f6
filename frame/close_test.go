package frame

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

func TestValidCloseCode(t *testing.T) {
	tests := []struct {
		code ws.StatusCode
		want bool
		why  string
	}{
		{code: 0, want: false, why: "not used (7.4.2), Autobahn 7.9.1"},
		{code: 999, want: false, why: "not used (7.4.2), Autobahn 7.9.2"},
		{code: 1000, want: true, why: "normal, Autobahn 7.7.1"},
		{code: 1001, want: true, why: "going away, Autobahn 7.7.2"},
		{code: 1002, want: true, why: "protocol error, Autobahn 7.7.3"},
		{code: 1003, want: true, why: "unsupported data, Autobahn 7.7.4"},
		{code: 1004, want: false, why: "reserved, Autobahn 7.9.3"},
		{code: 1005, want: false, why: "no status, must not be sent, Autobahn 7.9.4"},
		{code: 1006, want: false, why: "abnormal, must not be sent, Autobahn 7.9.5"},
		{code: 1007, want: true, why: "invalid payload, Autobahn 7.7.5"},
		{code: 1008, want: true, why: "policy, Autobahn 7.7.6"},
		{code: 1009, want: true, why: "too big, Autobahn 7.7.7"},
		{code: 1010, want: true, why: "mandatory extension, Autobahn 7.7.8"},
		{code: 1011, want: true, why: "internal error, Autobahn 7.7.9"},
		{code: 1012, want: true, why: "IANA: service restart"},
		{code: 1013, want: true, why: "IANA: try again later"},
		{code: 1014, want: true, why: "IANA: bad gateway"},
		{code: 1015, want: false, why: "TLS handshake, must not be sent"},
		{code: 1016, want: false, why: "unassigned, Autobahn 7.9.6"},
		{code: 1100, want: false, why: "unassigned, Autobahn 7.9.7"},
		{code: 2000, want: false, why: "unassigned, Autobahn 7.9.8"},
		{code: 2999, want: false, why: "unassigned, Autobahn 7.9.9"},
		{code: 3000, want: true, why: "registered range, Autobahn 7.7.10"},
		{code: 3999, want: true, why: "registered range, Autobahn 7.7.11"},
		{code: 4000, want: true, why: "private, Autobahn 7.7.12"},
		{code: 4999, want: true, why: "private, Autobahn 7.7.13"},
		{code: 5000, want: false, why: "no range in 7.4.2; Autobahn 7.13.1 leaves it undefined"},
		{code: 65535, want: false, why: "no range in 7.4.2; Autobahn 7.13.2 leaves it undefined"},
	}
	for _, tt := range tests {
		if got := ValidCloseCode(tt.code); got != tt.want {
			t.Errorf(
				"ValidCloseCode(%d) = %v, want %v (%s)",
				tt.code, got, tt.want, tt.why,
			)
		}
	}
	// Exactly 4 + 8 + 2000 codes are valid.
	valid := 0
	for c := 0; c <= 0xffff; c++ {
		if ValidCloseCode(ws.StatusCode(c)) {
			valid++
		}
	}
	if valid != 4+8+2000 {
		t.Errorf(
			"%d valid codes, want %d",
			valid, 4+8+2000,
		)
	}
}

func TestParseClose(t *testing.T) {
	tests := []struct {
		name       string
		payload    []byte
		wantCode   ws.StatusCode
		wantReason string
		wantErr    *Error
	}{
		{
			name:     "empty is no status",
			payload:  []byte{},
			wantCode: 1005,
		},
		{
			name:     "nil is no status",
			payload:  nil,
			wantCode: 1005,
		},
		{
			name:    "one byte",
			payload: []byte{0x03},
			wantErr: ErrCloseLength,
		},
		{
			name:     "code only",
			payload:  []byte{0x03, 0xe8},
			wantCode: 1000,
		},
		{
			name:       "code and reason",
			payload:    append([]byte{0x03, 0xe9}, "bye"...),
			wantCode:   1001,
			wantReason: "bye",
		},
		{
			name:       "multibyte reason",
			payload:    append([]byte{0x0f, 0xa0}, "κόσμε"...),
			wantCode:   4000,
			wantReason: "κόσμε",
		},
		{
			name:       "125 bytes",
			payload:    append([]byte{0x03, 0xe8}, strings.Repeat("a", 123)...),
			wantCode:   1000,
			wantReason: strings.Repeat("a", 123),
		},
		{
			name:    "126 bytes",
			payload: append([]byte{0x03, 0xe8}, strings.Repeat("a", 124)...),
			wantErr: ErrControlTooLong,
		},
		{
			name:    "code 0",
			payload: []byte{0, 0},
			wantErr: ErrCloseCode,
		},
		{
			name:    "code 1005",
			payload: []byte{0x03, 0xed},
			wantErr: ErrCloseCode,
		},
		{
			name:    "code 1006",
			payload: []byte{0x03, 0xee},
			wantErr: ErrCloseCode,
		},
		{
			name:    "code 1015",
			payload: []byte{0x03, 0xf7},
			wantErr: ErrCloseCode,
		},
		{
			name:    "code 5000",
			payload: []byte{0x13, 0x88},
			wantErr: ErrCloseCode,
		},
		{
			name:     "code 1013",
			payload:  []byte{0x03, 0xf5},
			wantCode: 1013,
		},
		{
			// Autobahn 7.5.1: valid code, reason with an encoded surrogate.
			name:    "invalid UTF-8 reason",
			payload: append([]byte{0x03, 0xe8}, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64"...),
			wantErr: ErrCloseReasonUTF8,
		},
		{
			name:    "truncated code point in reason",
			payload: append([]byte{0x03, 0xe8}, "ab\xe2\x82"...),
			wantErr: ErrCloseReasonUTF8,
		},
		{
			name:    "bad code wins over bad reason",
			payload: append([]byte{0x00, 0x01}, 0xff),
			wantErr: ErrCloseCode,
		},
	}
	for _, tt := range tests {
		code, reason, err := ParseClose(tt.payload)
		if err != tt.wantErr || code != tt.wantCode || string(reason) != tt.wantReason {
			t.Errorf(
				"%s: ParseClose(%x) = %d, %q, %v; want %d, %q, %v",
				tt.name, tt.payload, code, reason, err, tt.wantCode, tt.wantReason, tt.wantErr,
			)
		}
		if err == nil && len(reason) > 0 && &reason[0] != &tt.payload[2] {
			t.Errorf(
				"%s: reason does not alias the payload",
				tt.name,
			)
		}
	}
}

// TestParseCloseAgainstGobwas compares with gobwas/ws's close payload parsing
// and checking on every code, with and without a reason.
func TestParseCloseAgainstGobwas(t *testing.T) {
	for c := 0; c <= 0xffff; c++ {
		for _, reason := range []string{"", "ok", "\xff"} {
			p := append([]byte{byte(c >> 8), byte(c)}, reason...)
			code, r, err := ParseClose(p)
			gcode, greason := ws.ParseCloseFrameData(p)
			gerr := ws.CheckCloseFrameData(gcode, greason)
			// The permitted differences: gobwas/ws predates the registration
			// of 1012-1014 and rejects them as unknown, and it accepts codes
			// of 5000 and above, which RFC 6455 section 7.4.2 defines no range
			// for (Autobahn 7.13.x leaves them undefined; we fail them).
			if reason != "\xff" {
				if c >= 1012 && c <= 1014 {
					if err != nil || gerr == nil {
						t.Fatalf(
							"code %d: ours %v, gobwas %v; want ours valid, gobwas invalid",
							c, err, gerr,
						)
					}
					continue
				}
				if c >= 5000 {
					if err != ErrCloseCode || gerr != nil {
						t.Fatalf(
							"code %d: ours %v, gobwas %v; want ours invalid, gobwas valid",
							c, err, gerr,
						)
					}
					continue
				}
			}
			if (err == nil) != (gerr == nil) {
				t.Fatalf(
					"code %d reason %q: ours %v, gobwas %v",
					c, reason, err, gerr,
				)
			}
			if err == nil && (code != gcode || !bytes.Equal(r, []byte(greason))) {
				t.Fatalf(
					"code %d: ours %d %q, gobwas %d %q",
					c, code, r, gcode, greason,
				)
			}
		}
	}
}

func TestAppendClose(t *testing.T) {
	long := strings.Repeat("x", 200)
	// 122 ASCII bytes then a 3-byte rune: the rune would end at byte 125.
	cutRune := strings.Repeat("a", 122) + "€" + "tail"
	// 121 ASCII bytes then a 4-byte rune.
	cutRune4 := strings.Repeat("a", 121) + "😀"
	tests := []struct {
		name       string
		code       ws.StatusCode
		reason     string
		wantFrame  []byte // nil: check via ParseClose only
		wantReason string
	}{
		{
			name:      "no status",
			code:      ws.StatusNoStatusRcvd,
			reason:    "ignored",
			wantFrame: []byte{0x88, 0x00},
		},
		{
			name:      "normal, no reason",
			code:      1000,
			wantFrame: []byte{0x88, 0x02, 0x03, 0xe8},
		},
		{
			name:       "reason kept",
			code:       1001,
			reason:     "going away",
			wantReason: "going away",
		},
		{
			name:       "reason exactly 123",
			code:       4000,
			reason:     long[:123],
			wantReason: long[:123],
		},
		{
			name:       "reason truncated to 123",
			code:       1011,
			reason:     long,
			wantReason: long[:123],
		},
		{
			name:       "3-byte rune not split",
			code:       1000,
			reason:     cutRune,
			wantReason: strings.Repeat("a", 122),
		},
		{
			name:       "4-byte rune not split",
			code:       1000,
			reason:     cutRune4,
			wantReason: strings.Repeat("a", 121),
		},
		{
			name:       "invalid UTF-8 dropped",
			code:       1002,
			reason:     "bad\xff",
			wantReason: "",
		},
		{
			name:       "registered 1012",
			code:       1012,
			reason:     "restart",
			wantReason: "restart",
		},
	}
	for _, tt := range tests {
		got := AppendClose([]byte{0xaa}, tt.code, tt.reason)
		if got[0] != 0xaa {
			t.Fatalf(
				"%s: dst prefix overwritten",
				tt.name,
			)
		}
		got = got[1:]
		if tt.wantFrame != nil {
			if !bytes.Equal(got, tt.wantFrame) {
				t.Errorf(
					"%s: %x, want %x",
					tt.name, got, tt.wantFrame,
				)
			}
			continue
		}
		// Decode with gobwas/ws as the independent reader.
		f, err := ws.ReadFrame(bytes.NewReader(got))
		if err != nil || f.Header.OpCode != ws.OpClose || !f.Header.Fin || len(f.Payload) > 125 {
			t.Fatalf(
				"%s: ws.ReadFrame = %+v, %v",
				tt.name, f.Header, err,
			)
		}
		code, reason, perr := ParseClose(f.Payload)
		if perr != nil || code != tt.code || string(reason) != tt.wantReason {
			t.Errorf(
				"%s: decoded %d %q %v, want %d %q",
				tt.name, code, reason, perr, tt.code, tt.wantReason,
			)
		}
		if !utf8.Valid(reason) {
			t.Errorf(
				"%s: reason not UTF-8",
				tt.name,
			)
		}
	}
}

func TestAppendClosePanicsOnInvalidCode(t *testing.T) {
	for _, code := range []ws.StatusCode{0, 999, 1004, 1006, 1015, 2000, 5000} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf(
						"AppendClose(%d) did not panic",
						code,
					)
				}
			}()
			AppendClose(nil, code, "")
		}()
	}
}
