package sysctl

import "testing"

func BenchmarkParseProfile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseProfile(profileText); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheck is one `wsgate sysctl check` against a fake root: 15 small file reads.
func BenchmarkCheck(b *testing.B) {
	h := testHost(fakeRoot(b, stockValues))
	rules := parsedProfile()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.check(rules); err != nil {
			b.Fatal(err)
		}
	}
}
