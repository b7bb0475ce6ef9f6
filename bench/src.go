package bench

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
)

// SrcRange is an inclusive range of IPv4 source addresses that sockets are
// spread over. Binding before connect with IP_BIND_ADDRESS_NO_PORT (ip(7))
// lets the kernel pick the source port per 4-tuple at connect time, so each
// source address gets its own ephemeral port space towards one destination:
// N addresses give N times ip_local_port_range connections.
// The zero SrcRange means "let the kernel choose the source address".
// A SrcRange is an immutable value, safe to share between goroutines.
type SrcRange struct {
	first uint32
	n     uint32
}

// ParseSrcRange parses "A.B.C.D-E.F.G.H" (inclusive) or a single "A.B.C.D".
// An empty string yields the zero SrcRange.
func ParseSrcRange(s string) (SrcRange, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return SrcRange{}, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	a, err := parseV4(lo)
	if err != nil {
		return SrcRange{}, fmt.Errorf("-src %q: %w", s, err)
	}
	b, err := parseV4(hi)
	if err != nil {
		return SrcRange{}, fmt.Errorf("-src %q: %w", s, err)
	}
	if b < a {
		return SrcRange{}, fmt.Errorf("-src %q: range end is below its start", s)
	}
	if b-a == ^uint32(0) {
		return SrcRange{}, fmt.Errorf("-src %q: range too large", s)
	}
	return SrcRange{first: a, n: b - a + 1}, nil
}

func parseV4(s string) (uint32, error) {
	ip, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return 0, err
	}
	if !ip.Is4() {
		return 0, fmt.Errorf("%s is not an IPv4 address", s)
	}
	b := ip.As4()
	return binary.BigEndian.Uint32(b[:]), nil
}

// Len returns the number of addresses in the range (0 for the zero range).
func (r SrcRange) Len() int { return int(r.n) }

// At returns the source address for the i-th connection (i >= 0): addresses
// are handed out round-robin, so consecutive connections use consecutive
// addresses and every address carries either floor(N/Len) or ceil(N/Len) of
// N connections. It must not be called on the zero range.
func (r SrcRange) At(i int) [4]byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], r.first+uint32(uint64(i)%uint64(r.n)))
	return b
}

// String formats the range the way ParseSrcRange reads it.
func (r SrcRange) String() string {
	if r.n == 0 {
		return ""
	}
	a, b := r.At(0), r.At(int(r.n-1))
	if r.n == 1 {
		return netip.AddrFrom4(a).String()
	}
	return netip.AddrFrom4(a).String() + "-" + netip.AddrFrom4(b).String()
}
