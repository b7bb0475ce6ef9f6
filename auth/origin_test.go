package auth

import (
	"strings"
	"testing"
)

func TestOrigins(t *testing.T) {
	o, err := ParseOrigins("https://*.example.com, https://app.test:8443 ,http://LOCALHOST:80", false)
	if err != nil {
		t.Fatal(err)
	}
	for origin, want := range map[string]bool{
		"https://app.example.com":          true,
		"https://a.b.example.com":          true,
		"HTTPS://App.Example.COM":          true,
		"https://app.example.com:443":      true,
		"https://example.com":              false,
		"https://.example.com":             false, // the star stands for at least one character
		"http://app.example.com":           false,
		"https://app.example.com:8443":     false,
		"https://evil.com/.example.com":    false,
		"https://app.example.com.evil.com": false,
		"https://app.test:8443":            true,
		"https://app.test":                 false,
		"http://localhost":                 true,
		"http://localhost:80":              true,
		"null":                             false,
		"":                                 false,
	} {
		if got := o.Allowed([]byte(origin), true); got != want {
			t.Errorf("Allowed(%q) = %v, want %v", origin, got, want)
		}
	}
	if !o.Allowed(nil, false) {
		t.Fatal("a request without Origin must pass unless Require")
	}
	o.Require = true
	if o.Allowed(nil, false) {
		t.Fatal("Require must refuse a request without Origin")
	}
	var none *Origins
	if !none.Allowed([]byte("https://x"), true) || none.Enabled() {
		t.Fatal("no list allows everything")
	}
	for _, bad := range []string{"example.com", "https://bücher.de", "https://", "https://a*b*c", "https://x.com:*", "https://x.com/path"} {
		if _, err := ParseOrigins(bad, false); err == nil {
			t.Errorf("ParseOrigins(%q) accepted", bad)
		}
	}
}

// FuzzOrigins: any allow-list either fails to parse or matches any Origin without panicking; an
// entry without '*' allows exactly itself, in any ASCII case.
func FuzzOrigins(f *testing.F) {
	f.Add("https://*.example.com", "https://a.example.com")
	f.Add("http://localhost:3000", "http://LOCALHOST:3000")
	f.Add("https://x.com:443", "https://x.com")
	f.Add("a://*", "a://:")
	f.Add("https://*.b", "null")
	f.Fuzz(func(t *testing.T, list, origin string) {
		o, err := ParseOrigins(list, false)
		if err != nil {
			return
		}
		o.Allowed([]byte(origin), true)
		entry := strings.TrimSpace(list)
		if strings.ContainsAny(entry, "*,") || entry == "" || len(o.list) != 1 {
			return
		}
		upper := []byte(entry)
		for i, c := range upper {
			if 'a' <= c && c <= 'z' {
				upper[i] = c - ('a' - 'A')
			}
		}
		if !o.Allowed(upper, true) || !o.Allowed([]byte(entry), true) {
			t.Fatalf("%q does not allow itself", entry)
		}
	})
}
