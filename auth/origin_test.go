package auth

import "testing"

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
	for _, bad := range []string{"example.com", "https://", "https://a*b*c", "https://x.com:*", "https://x.com/path"} {
		if _, err := ParseOrigins(bad, false); err == nil {
			t.Errorf("ParseOrigins(%q) accepted", bad)
		}
	}
}
