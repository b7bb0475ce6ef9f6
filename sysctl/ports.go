package sysctl

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Keys of the ephemeral port range and of the ports taken out of it (ip-sysctl.rst in the
// kernel's networking documentation).
const (
	keyPortRange     = "net.ipv4.ip_local_port_range"
	keyReservedPorts = "net.ipv4.ip_local_reserved_ports"
)

// DefaultAddr and DefaultAdminAddr are the listen addresses wsgate uses when neither a flag nor
// the environment names one (cmd/wsgate's -addr and -admin-addr defaults; a test there proves
// they agree). The profile's net.ipv4.ip_local_reserved_ports lists their ports.
const (
	DefaultAddr      = "127.0.0.1:8080"
	DefaultAdminAddr = "127.0.0.1:9090"
)

// Listener is one address a wsgate listener binds, for ListenPortWarnings and the listen-port
// check of `wsgate sysctl check`.
type Listener struct {
	Name string // where the address comes from, for messages: "-addr", "WSGATE_ADMIN_ADDR", ...
	Addr string // host:port as given to the server; "" means the listener is disabled
}

// listenPort returns the TCP port l binds. ok is false when there is none to protect: the
// listener is disabled ("") or asks the kernel for a free port (port 0). Service names such as
// "http" are looked up as net.Listen does.
func (l Listener) listenPort() (port uint16, ok bool, err error) {
	if l.Addr == "" {
		return 0, false, nil
	}
	_, p, err := net.SplitHostPort(l.Addr)
	if err != nil {
		return 0, false, fmt.Errorf("%s %q: %w", l.Name, l.Addr, err)
	}
	n, err := net.LookupPort("tcp", p)
	if err != nil {
		return 0, false, fmt.Errorf("%s %q: %w", l.Name, l.Addr, err)
	}
	return uint16(n), n != 0, nil
}

// portRange is an inclusive range of ports, lo <= hi.
type portRange struct{ lo, hi uint16 }

// portSet is a set of ports as sorted, disjoint, non-adjacent ranges: the value of
// net.ipv4.ip_local_reserved_ports. Its text form is the kernel's (proc_do_large_bitmap):
// comma-separated ports and LOW-HIGH ranges, "8080,9090" or "1000-1005,8080", and "" for no
// port. A portSet is never modified in place once built; the functions below return new ones.
type portSet []portRange

// parsePortSet parses the kernel's text form. Blanks are not allowed inside it; the caller
// strips the trailing newline.
func parsePortSet(s string) (portSet, error) {
	if s == "" {
		return nil, nil
	}
	var set portSet
	for item := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(item, "-")
		a, err := parsePort(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = parsePort(hi); err != nil {
				return nil, err
			}
			if a > b {
				return nil, fmt.Errorf("port range %q has LOW above HIGH", item)
			}
		}
		set = append(set, portRange{a, b})
	}
	return set.normalize(), nil
}

func parsePort(s string) (uint16, error) {
	n, err := parseUint(s)
	if err != nil || n > 65535 {
		return 0, fmt.Errorf("%q is not a port (0 to 65535, as a list like 8080,9090 or 1000-1005)", s)
	}
	return uint16(n), nil
}

// normalize sorts the ranges and merges overlapping and adjacent ones. It reuses s.
func (s portSet) normalize() portSet {
	if len(s) == 0 {
		return nil
	}
	slices.SortFunc(s, func(a, b portRange) int { return int(a.lo) - int(b.lo) })
	out := s[:1]
	for _, r := range s[1:] {
		last := &out[len(out)-1]
		if uint32(r.lo) <= uint32(last.hi)+1 {
			last.hi = max(last.hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// String is the kernel's text form of s.
func (s portSet) String() string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(r.lo)))
		if r.hi != r.lo {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(int(r.hi)))
		}
	}
	return b.String()
}

func (s portSet) contains(p uint16) bool {
	for _, r := range s {
		if r.lo <= p && p <= r.hi {
			return true
		}
	}
	return false
}

// containsAll reports whether every port of t is in s.
func (s portSet) containsAll(t portSet) bool {
	for _, r := range t {
		covered := false
		for _, q := range s {
			if q.lo <= r.lo && r.hi <= q.hi {
				covered = true
				break
			}
		}
		if !covered {
			return false
		}
	}
	return true
}

// union returns a new set holding the ports of s and t.
func (s portSet) union(t portSet) portSet {
	out := make(portSet, 0, len(s)+len(t))
	return append(append(out, s...), t...).normalize()
}

// withPorts returns a new set holding s and the given ports.
func (s portSet) withPorts(ports ...uint16) portSet {
	add := make(portSet, len(ports))
	for i, p := range ports {
		add[i] = portRange{p, p}
	}
	return s.union(add)
}

// ephemeral is what ListenPortWarnings needs to know of the host: the ephemeral port range and
// the ports reserved out of it.
type ephemeral struct {
	lo, hi   uint64
	reserved portSet
}

// readEphemeral reads the range and the reserved ports under h. ok is false when the range
// does not exist or is unusable; a missing reserved-ports key (kernels before 2.6.35) reads as
// no port reserved.
func (h host) readEphemeral() (e ephemeral, ok bool, err error) {
	v, present, err := h.readUints(keyPortRange)
	switch {
	case !present:
		return e, false, nil
	case err != nil:
		return e, false, err
	case len(v) != 2:
		return e, false, fmt.Errorf("%s: has %d fields, expected 2", keyPortRange, len(v))
	}
	e.lo, e.hi = v[0], v[1]
	f, err := h.read(keyReservedPorts)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return e, true, nil
	case err != nil:
		return e, false, err
	}
	if e.reserved, err = parsePortSet(strings.Join(f, "")); err != nil {
		return e, false, fmt.Errorf("%s: %w", keyReservedPorts, err)
	}
	return e, true, nil
}

// exposed reports whether port p lies inside the ephemeral range and is not reserved: an
// outgoing connection may then be given p as its local port, and a listener binding p after
// that fails with EADDRINUSE.
func (e ephemeral) exposed(p uint16) bool {
	return e.lo <= uint64(p) && uint64(p) <= e.hi && !e.reserved.contains(p)
}

// ListenPortWarnings reads the ephemeral port range and the reserved ports under root
// ("/proc/sys" in production) and returns one warning for each listener whose port lies inside
// the range and is not reserved, nil when there is none. Listeners that are disabled or bind
// port 0 are skipped; an address whose port cannot be parsed is skipped too (the server reports
// it when it binds). A range that is missing is no warning; one that cannot be read is one.
//
// Safe to call from any goroutine; it only reads.
func ListenPortWarnings(root string, listeners ...Listener) []string {
	return liveHost(root).listenPortWarnings(listeners)
}

func (h host) listenPortWarnings(listeners []Listener) []string {
	type listenerPort struct {
		l    Listener
		port uint16
	}
	var bound []listenerPort
	for _, l := range listeners {
		if p, ok, err := l.listenPort(); ok && err == nil {
			bound = append(bound, listenerPort{l, p})
		}
	}
	if len(bound) == 0 {
		return nil
	}
	e, ok, err := h.readEphemeral()
	if err != nil {
		return []string{fmt.Sprintf("cannot tell whether the listen ports are safe from outgoing connections: %v", err)}
	}
	if !ok {
		return nil
	}
	var bad []listenerPort
	for _, b := range bound {
		if e.exposed(b.port) {
			bad = append(bad, b)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	fix := e.reserved
	for _, b := range bad {
		fix = fix.withPorts(b.port)
	}
	lists := "which lists nothing"
	if len(e.reserved) > 0 {
		lists = "which lists " + e.reserved.String()
	}
	warn := make([]string, 0, len(bad))
	for _, b := range bad {
		warn = append(warn, fmt.Sprintf("listen port %d (%s %s) is inside %s %d-%d and not in %s (%s): "+
			"an outgoing connection from this host (a load driver, a proxy, a broker client) can be given it "+
			"as its local port, and while that socket lives (up to 60 s in TIME_WAIT after it closes) wsgate "+
			"cannot bind the port: a restart fails with \"bind: address already in use\". Reserve it: "+
			"sudo sysctl -w %s=%s (wsgate sysctl apply does it for its listen ports; docs/tuning.md)",
			b.port, b.l.Name, b.l.Addr, keyPortRange, e.lo, e.hi, keyReservedPorts, lists,
			keyReservedPorts, fix.String()))
	}
	return warn
}
