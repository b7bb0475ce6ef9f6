package frame

import (
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// TestErrors checks every predefined error: its exact close code, a reason
// that fits a close frame, and (where this package produces it) an input
// that yields exactly this error.
func TestErrors(t *testing.T) {
	mk := func(b0 byte, masked bool, length int64) ws.Header {
		return ws.Header{
			Fin:    b0&0x80 != 0,
			Rsv:    (b0 >> 4) & 7,
			OpCode: ws.OpCode(b0 & 0xf),
			Masked: masked,
			Length: length,
		}
	}
	check := func(h ws.Header, fragmented bool) func() *Error {
		return func() *Error { return CheckHeader(h, fragmented) }
	}
	parseClose := func(p ...byte) func() *Error {
		return func() *Error {
			_, _, err := ParseClose(p)
			return err
		}
	}
	tests := []struct {
		name    string
		err     *Error
		code    ws.StatusCode
		trigger func() *Error // nil: returned by the connection layer, not here
	}{
		{
			name:    "ErrReservedBits",
			err:     ErrReservedBits,
			code:    1002,
			trigger: check(mk(0xc1, true, 0), false),
		},
		{
			name:    "ErrReservedOpcode",
			err:     ErrReservedOpcode,
			code:    1002,
			trigger: check(mk(0x85, true, 0), false),
		},
		{
			name:    "ErrNotMasked",
			err:     ErrNotMasked,
			code:    1002,
			trigger: check(mk(0x81, false, 0), false),
		},
		{
			name:    "ErrControlTooLong",
			err:     ErrControlTooLong,
			code:    1002,
			trigger: check(mk(0x89, true, 126), false),
		},
		{
			name:    "ErrControlFragmented",
			err:     ErrControlFragmented,
			code:    1002,
			trigger: check(mk(0x09, true, 0), false),
		},
		{
			name:    "ErrUnexpectedContinuation",
			err:     ErrUnexpectedContinuation,
			code:    1002,
			trigger: check(mk(0x80, true, 0), false),
		},
		{
			name:    "ErrExpectedContinuation",
			err:     ErrExpectedContinuation,
			code:    1002,
			trigger: check(mk(0x82, true, 0), true),
		},
		{
			name: "ErrBadLength",
			err:  ErrBadLength,
			code: 1002,
			trigger: func() *Error {
				_, _, err := ParseHeader([]byte{0x82, 0xfe, 0x00, 0x05, 1, 2, 3, 4})
				return err
			},
		},
		{
			name: "ErrMessageTooBig",
			err:  ErrMessageTooBig,
			code: 1009,
		},
		{
			name: "ErrInvalidUTF8",
			err:  ErrInvalidUTF8,
			code: 1007,
		},
		{
			name:    "ErrCloseLength",
			err:     ErrCloseLength,
			code:    1002,
			trigger: parseClose(0x03),
		},
		{
			name:    "ErrCloseCode",
			err:     ErrCloseCode,
			code:    1002,
			trigger: parseClose(0x03, 0xed), // 1005
		},
		{
			name:    "ErrCloseReasonUTF8",
			err:     ErrCloseReasonUTF8,
			code:    1007,
			trigger: parseClose(0x03, 0xe8, 'o', 'k', 0xc0, 0xaf),
		},
	}
	seen := map[*Error]string{}
	for _, tt := range tests {
		if tt.err == nil {
			t.Fatalf(
				"%s is nil",
				tt.name,
			)
		}
		if other, dup := seen[tt.err]; dup {
			t.Fatalf(
				"%s and %s are the same pointer",
				tt.name, other,
			)
		}
		seen[tt.err] = tt.name
		if tt.err.Code != tt.code {
			t.Errorf(
				"%s.Code = %d, want %d",
				tt.name, tt.err.Code, tt.code,
			)
		}
		if n := len(tt.err.Reason); n == 0 || n > 123 {
			t.Errorf(
				"%s.Reason has %d bytes, want 1..123",
				tt.name, n,
			)
		}
		if !utf8.Valid([]byte(tt.err.Reason)) {
			t.Errorf(
				"%s.Reason is not UTF-8",
				tt.name,
			)
		}
		if tt.err.Error() != tt.err.Reason {
			t.Errorf(
				"%s.Error() = %q, want the reason %q",
				tt.name, tt.err.Error(), tt.err.Reason,
			)
		}
		if tt.trigger != nil {
			if got := tt.trigger(); got != tt.err {
				t.Errorf(
					"%s: trigger returned %v",
					tt.name, got,
				)
			}
		}
		// The reason must fit a close frame as is: AppendClose keeps it whole.
		frame := AppendClose(nil, tt.err.Code, tt.err.Reason)
		code, reason, perr := ParseClose(frame[2:])
		if perr != nil || code != tt.err.Code || string(reason) != tt.err.Reason {
			t.Errorf(
				"%s: close frame round trip gave %d %q %v",
				tt.name, code, reason, perr,
			)
		}
	}
}
