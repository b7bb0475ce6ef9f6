package bench

import (
	"net/netip"
	"testing"
)

func TestParseSrcRange(t *testing.T) {
	cases := []struct {
		in      string
		n       int
		first   string
		last    string
		wantErr bool
	}{
		{in: "", n: 0},
		{in: "127.0.0.2-127.0.0.250", n: 249, first: "127.0.0.2", last: "127.0.0.250"},
		{in: " 10.0.0.1 ", n: 1, first: "10.0.0.1", last: "10.0.0.1"},
		{in: "10.0.0.255-10.0.1.1", n: 3, first: "10.0.0.255", last: "10.0.1.1"},
		{in: "127.0.0.5-127.0.0.2", wantErr: true},
		{in: "::1", wantErr: true},
		{in: "127.0.0.1-::2", wantErr: true},
		{in: "banana", wantErr: true},
		{in: "127.0.0.1-", wantErr: true},
		{in: "0.0.0.0-255.255.255.255", wantErr: true},
	}
	for _, c := range cases {
		r, err := ParseSrcRange(c.in)
		if (err != nil) != c.wantErr {
			t.Errorf("%q: err %v, want error %v", c.in, err, c.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if r.Len() != c.n {
			t.Errorf("%q: len %d, want %d", c.in, r.Len(), c.n)
		}
		if c.n == 0 {
			continue
		}
		if got := netip.AddrFrom4(r.At(0)).String(); got != c.first {
			t.Errorf("%q: first %s, want %s", c.in, got, c.first)
		}
		if got := netip.AddrFrom4(r.At(c.n - 1)).String(); got != c.last {
			t.Errorf("%q: last %s, want %s", c.in, got, c.last)
		}
		back, err := ParseSrcRange(r.String())
		if err != nil || back != r {
			t.Errorf("%q: String %q does not parse back", c.in, r.String())
		}
	}
}

func TestSrcRangeSpreadsEvenly(t *testing.T) {
	r, err := ParseSrcRange("127.0.0.2-127.0.0.250")
	if err != nil {
		t.Fatal(err)
	}
	const conns = 100000
	count := map[[4]byte]int{}
	for i := range conns {
		count[r.At(i)]++
	}
	if len(count) != r.Len() {
		t.Fatalf("%d addresses used, want %d", len(count), r.Len())
	}
	lo, hi := conns/r.Len(), (conns+r.Len()-1)/r.Len()
	for a, n := range count {
		if n < lo || n > hi {
			t.Errorf("%v carries %d connections, want %d..%d", a, n, lo, hi)
		}
	}
	// Consecutive IDs (as in one worker's slots) use consecutive addresses,
	// and the range wraps.
	if r.At(0) != [4]byte{127, 0, 0, 2} || r.At(1) != [4]byte{127, 0, 0, 3} || r.At(249) != r.At(0) {
		t.Error("addresses are not handed out round-robin")
	}
	// Per source address, connections stay far below one ephemeral port
	// range (60999-32768 = 28231 ports): 100k over 249 addresses is ~402.
	if hi > 28231 {
		t.Errorf("%d connections per source address would exhaust the port range", hi)
	}
}

func FuzzParseSrcRange(f *testing.F) {
	for _, s := range []string{"", "127.0.0.2-127.0.0.250", "1.2.3.4", "9.9.9.9-1.1.1.1", "::1", "a-b", "1.2.3.4-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseSrcRange(s)
		if err != nil {
			return
		}
		if r.Len() == 0 {
			return
		}
		back, err := ParseSrcRange(r.String())
		if err != nil || back != r {
			t.Fatalf("%q -> %q does not round-trip", s, r.String())
		}
		r.At(r.Len() * 3)
	})
}
