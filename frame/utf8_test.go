package frame

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// utf8Edges are edge cases of RFC 3629: boundaries of every sequence length,
// overlongs, surrogates, values above U+10FFFF, stray and missing
// continuation bytes, and bytes that never appear.
var utf8Edges = []string{
	"",
	"a",
	"hello, world",
	"\x00",
	"\x7f",
	"\xc2\x80",         // U+0080, smallest 2-byte
	"\xdf\xbf",         // U+07FF, largest 2-byte
	"\xe0\xa0\x80",     // U+0800, smallest 3-byte
	"\xed\x9f\xbf",     // U+D7FF, last before surrogates
	"\xee\x80\x80",     // U+E000, first after surrogates
	"\xef\xbf\xbd",     // U+FFFD
	"\xef\xbf\xbf",     // U+FFFF
	"\xf0\x90\x80\x80", // U+10000, smallest 4-byte
	"\xf4\x8f\xbf\xbf", // U+10FFFF, largest
	"κόσμε",
	"Hello-µ@ßöäüàá-UTF-8!!",
	"😀 emoji 🎉",
	"\xc0\x80",                 // overlong NUL
	"\xc1\xbf",                 // overlong
	"\xe0\x80\x80",             // overlong 3-byte
	"\xe0\x9f\xbf",             // overlong 3-byte, largest
	"\xf0\x80\x80\x80",         // overlong 4-byte
	"\xf0\x8f\xbf\xbf",         // overlong 4-byte, largest
	"\xed\xa0\x80",             // U+D800
	"\xed\xbf\xbf",             // U+DFFF
	"\xed\xa0\x80\xed\xb0\x80", // surrogate pair encoded as CESU-8
	"\xf4\x90\x80\x80",         // U+110000
	"\xf5\x80\x80\x80",         // F5 never appears
	"\xf8\x88\x80\x80\x80",     // 5-byte form
	"\xfe",
	"\xff",
	"\x80", // lone continuation
	"\xbf",
	"a\x80b",
	"\xc2",         // truncated 2-byte
	"\xe2\x82",     // truncated 3-byte
	"\xf0\x9f\x98", // truncated 4-byte
	"\xc2a",        // lead followed by ASCII
	"\xe2\x82a",
	"\xf0\x9f\x98a",
	"\xe2\x82\xac\x80", // extra continuation
	"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64", // Autobahn 6.3.1
	strings.Repeat("a", 100) + "\xed\xa0\x80",
	strings.Repeat("€", 50),
	strings.Repeat("€", 50) + "\xe2\x82",
}

// completionBytes are the boundaries of every continuation byte range in
// RFC 3629 (80, 8F, 90, 9F, A0, BF): any partial sequence that can be
// completed can be completed with these.
var completionBytes = []byte{0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf}

// validPrefix is the oracle for "can p still become valid UTF-8": p is valid,
// or p plus 1..3 more bytes is.
func validPrefix(p []byte) bool {
	if utf8.Valid(p) {
		return true
	}
	var try func(q []byte, left int) bool
	try = func(q []byte, left int) bool {
		if left == 0 {
			return false
		}
		for _, c := range completionBytes {
			r := append(q[:len(q):len(q)], c)
			if utf8.Valid(r) || try(r, left-1) {
				return true
			}
		}
		return false
	}
	return try(p, 3)
}

// feed writes pieces to a fresh validator and returns whether every Write
// succeeded and the final Done.
func feed(pieces ...[]byte) (ok, done bool) {
	var s UTF8
	ok = true
	for _, p := range pieces {
		if !s.Write(p) {
			ok = false
		}
	}
	return ok, s.Done()
}

func TestUTF8Edges(t *testing.T) {
	for _, in := range utf8Edges {
		p := []byte(in)
		want := utf8.Valid(p)
		// Whole, and split in two at every point.
		for cut := 0; cut <= len(p); cut++ {
			ok, done := feed(p[:cut], p[cut:])
			if (ok && done) != want {
				t.Errorf(
					"%x split at %d: ok=%v done=%v, want valid=%v",
					p, cut, ok, done, want,
				)
			}
		}
		// Split in three at every pair of points.
		for i := 0; i <= len(p) && len(p) <= 24; i++ {
			for j := i; j <= len(p); j++ {
				ok, done := feed(p[:i], p[i:j], p[j:])
				if (ok && done) != want {
					t.Errorf(
						"%x split at %d,%d: ok=%v done=%v, want valid=%v",
						p, i, j, ok, done, want,
					)
				}
			}
		}
		checkFailsFast(t, p)
	}
}

// checkFailsFast feeds p byte by byte and checks that Write fails exactly at
// the first byte after which p can no longer become valid UTF-8, and that
// Done is true exactly when the bytes so far are valid.
func checkFailsFast(t *testing.T, p []byte) {
	t.Helper()
	var s UTF8
	failed := false
	for i := range p {
		ok := s.Write(p[i : i+1])
		if failed {
			if ok {
				t.Fatalf(
					"%x: Write succeeded at byte %d after an earlier failure",
					p, i,
				)
			}
			continue
		}
		want := validPrefix(p[:i+1])
		if ok != want {
			t.Fatalf(
				"%x: Write of byte %d (%#x) = %v, want %v",
				p, i, p[i], ok, want,
			)
		}
		if s.Done() != utf8.Valid(p[:i+1]) {
			t.Fatalf(
				"%x: Done after byte %d = %v, want %v",
				p, i, s.Done(), !s.Done(),
			)
		}
		failed = !ok
	}
	// The same verdict when the whole of p is written at once: fails iff
	// some prefix failed.
	var whole UTF8
	if whole.Write(p) == failed {
		t.Fatalf(
			"%x: Write of the whole = %v, byte by byte failed=%v",
			p, !failed, failed,
		)
	}
}

func TestUTF8EveryCodePointSplit(t *testing.T) {
	var buf [utf8.UTFMax]byte
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if r >= 0xd800 && r <= 0xdfff {
			continue
		}
		n := utf8.EncodeRune(buf[:], r)
		if n == 1 {
			continue
		}
		// Prefix "a" so the code point sits after a boundary; split at every
		// point inside the sequence.
		p := append([]byte{'a'}, buf[:n]...)
		for cut := 1; cut <= n; cut++ {
			if ok, done := feed(p[:cut], p[cut:]); !ok || !done {
				t.Fatalf(
					"U+%04X split at %d: ok=%v done=%v",
					r, cut, ok, done,
				)
			}
		}
	}
	// Every surrogate, encoded as its 3 bytes, fails at the second byte.
	for r := 0xd800; r <= 0xdfff; r++ {
		p := []byte{0xe0 | byte(r>>12), 0x80 | byte(r>>6)&0x3f, 0x80 | byte(r)&0x3f}
		var s UTF8
		if !s.Write(p[:1]) || s.Write(p[1:2]) {
			t.Fatalf(
				"surrogate U+%04X (%x): not failed at the second byte",
				r, p,
			)
		}
	}
}

func TestUTF8AllTwoAndThreeBytePrefixes(t *testing.T) {
	for a := 0; a < 256; a++ {
		for b := 0; b < 256; b++ {
			checkFailsFast(t, []byte{byte(a), byte(b)})
		}
	}
	for a := 0xe0; a < 0xf5; a++ {
		for b := 0x70; b < 0xd0; b++ {
			for c := 0x70; c < 0xd0; c += 7 {
				checkFailsFast(t, []byte{byte(a), byte(b), byte(c)})
			}
		}
	}
}

// TestUTF8Random compares with unicode/utf8 on random inputs that mix ASCII,
// valid code points and random bytes, fed in random pieces.
func TestUTF8Random(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for iter := 0; iter < 20000; iter++ {
		var p []byte
		for n := rng.IntN(40); n > 0; n-- {
			switch rng.IntN(5) {
			case 0:
				p = append(p, byte(rng.IntN(0x80)))
			case 1:
				p = append(p, strings.Repeat("x", rng.IntN(20))...)
			case 2:
				p = utf8.AppendRune(p, rune(rng.IntN(utf8.MaxRune+1)))
			case 3:
				p = utf8.AppendRune(p, rune(0x80+rng.IntN(0x10000)))
			default:
				if rng.IntN(8) == 0 {
					p = append(p, byte(rng.Uint32()))
				}
			}
		}
		want := utf8.Valid(p)
		var s UTF8
		ok := true
		for rest := p; len(rest) > 0; {
			k := min(rng.IntN(9), len(rest))
			if !s.Write(rest[:k]) {
				ok = false
			}
			rest = rest[k:]
		}
		if (ok && s.Done()) != want {
			t.Fatalf(
				"%x: incremental ok=%v done=%v, utf8.Valid=%v",
				p, ok, s.Done(), want,
			)
		}
		if iter%20 == 0 {
			checkFailsFast(t, p)
		}
	}
}

func TestUTF8ResetAndSticky(t *testing.T) {
	var s UTF8
	if !s.Done() {
		t.Fatal("zero value is not Done")
	}
	if s.Write([]byte{0xff}) {
		t.Fatal("0xff accepted")
	}
	if s.Write([]byte("valid")) || s.Done() {
		t.Fatal("validator recovered from an error without Reset")
	}
	s.Reset()
	if !s.Write([]byte("\xe2\x82")) || s.Done() {
		t.Fatal("partial code point after Reset")
	}
	if !s.Write([]byte("\xac")) || !s.Done() {
		t.Fatal("completed code point not Done")
	}
	s.Reset()
	if !s.Write([]byte("\xe2")) {
		t.Fatal("lead byte rejected")
	}
	s.Reset()
	if !s.Done() || !s.Write([]byte("a")) {
		t.Fatal("Reset inside a code point did not clear it")
	}
	if !s.Write(nil) || !s.Done() {
		t.Fatal("empty Write changed the state")
	}
}
