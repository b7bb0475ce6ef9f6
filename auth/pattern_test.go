package auth

import (
	"strings"
	"testing"
)

func TestPatternsMatch(t *testing.T) {
	ps, err := ParsePatterns([]string{"news", "prices:*", "a/b"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		channel string
		want    bool
	}{
		{"news", true}, {"news2", false}, {"new", false}, {"prices:", true}, {"prices:eur", true},
		{"prices:eur:usd", true}, {"prices", false}, {"pricesx", false}, {"a/b", true}, {"a/b/c", false},
		{"", false}, {"#news", false},
	} {
		if got := ps.Match(tc.channel); got != tc.want {
			t.Errorf("Match(%q) = %v, want %v", tc.channel, got, tc.want)
		}
	}
	all, _ := ParsePatterns([]string{"*"})
	if !all.Match("anything:at/all") || all.Match("#42") {
		t.Fatal(`"*" must match every channel but personal ones`)
	}
	if Patterns(nil).Match("news") {
		t.Fatal("no patterns must match nothing")
	}
}

func TestCheckPattern(t *testing.T) {
	for p, want := range map[string]error{
		"news": nil, "prices:*": nil, "*": nil,
		"":                       ErrPatternEmpty,
		"a*b":                    ErrPatternStar,
		"**":                     ErrPatternStar,
		"*a":                     ErrPatternStar,
		"#42":                    ErrPatternPersonal,
		"#*":                     ErrPatternPersonal,
		strings.Repeat("a", 130): ErrPatternLong,
	} {
		if got := CheckPattern(p); got != want {
			t.Errorf("CheckPattern(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestClaimsPermissions(t *testing.T) {
	c := Claims{Sub: "42", Channels: Patterns{"news", "chat:*"}, Publish: Patterns{"chat:*"}}
	for ch, want := range map[string]bool{"#42": true, "#4": false, "#420": false, "#": false, "news": true,
		"chat:1": true, "other": false} {
		if got := c.MaySubscribe(ch); got != want {
			t.Errorf("MaySubscribe(%q) = %v, want %v", ch, got, want)
		}
	}
	if !c.MayPublish("chat:x") || c.MayPublish("news") || c.MayPublish("#42") {
		t.Fatal("MayPublish must follow the publish claim only, never a personal channel")
	}
	if c.Personal() != "#42" {
		t.Fatal(c.Personal())
	}
}

// matchSlow is the definition of a match, written independently of Match.
func matchSlow(ps []string, ch string) bool {
	if ch == "" || ch[0] == '#' {
		return false
	}
	for _, p := range ps {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if len(ch) >= len(prefix) && ch[:len(prefix)] == prefix {
				return true
			}
		} else if p == ch {
			return true
		}
	}
	return false
}

// FuzzPatternMatch: a pattern accepted by CheckPattern matches exactly what its definition says,
// and never a personal channel; Match never panics on any input.
func FuzzPatternMatch(f *testing.F) {
	for _, s := range [][2]string{{"news", "news"}, {"prices:*", "prices:eur"}, {"*", "x"}, {"prices:*", "prices:"},
		{"a*b", "axb"}, {"#42", "#42"}, {"", ""}, {"*", "#1"}, {"chat:*", "chat"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, channel string) {
		err := CheckPattern(pattern)
		if err != nil {
			if strings.IndexByte(pattern, '*') == len(pattern)-1 && pattern != "" && pattern[0] != '#' && len(pattern) <= maxPattern {
				t.Fatalf("CheckPattern(%q) = %v for a valid pattern", pattern, err)
			}
			return
		}
		ps := Patterns{pattern}
		if got, want := ps.Match(channel), matchSlow(ps, channel); got != want {
			t.Fatalf("Match(%q, %q) = %v, want %v", pattern, channel, got, want)
		}
		c := Claims{Sub: "u", Channels: ps}
		if len(channel) > 0 && channel[0] == '#' && channel != "#u" && c.MaySubscribe(channel) {
			t.Fatalf("pattern %q grants someone else's personal channel %q", pattern, channel)
		}
	})
}
