package auth

import (
	"fmt"
	"strings"
)

// Origins is the Origin allow-list of browser handshakes (RFC 6454 origins, as browsers send
// them in the Origin header). Each entry is scheme://host[:port]; the host part may hold one '*',
// which stands for one or more characters, so "https://*.example.com" allows
// https://app.example.com and https://a.b.example.com but not https://example.com. Scheme and
// host compare ASCII case-insensitively; a default port (80 for http, 443 for https) may be
// written or left out on either side.
//
// A request without an Origin header (not a browser) is allowed unless Require is set. An empty
// list allows every origin. The zero Origins allows everything. Immutable once built.
type Origins struct {
	list    []originPattern
	Require bool // refuse requests that carry no Origin
}

type originPattern struct {
	scheme       string // lower case
	prefix, tail string // the host:port before and after the '*' (lower case); star tells if there was one
	star         bool
}

// ParseOrigins parses a comma-separated allow-list (spaces around entries are ignored).
func ParseOrigins(list string, require bool) (*Origins, error) {
	o := &Origins{Require: require}
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := parseOriginPattern(s)
		if err != nil {
			return nil, err
		}
		o.list = append(o.list, p)
	}
	return o, nil
}

func parseOriginPattern(s string) (originPattern, error) {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return originPattern{}, fmt.Errorf("allowed origin %q: only printable ASCII (write international hosts in punycode, as browsers send them)", s)
		}
	}
	scheme, host, ok := strings.Cut(asciiLower(s), "://")
	if !ok || scheme == "" || host == "" || strings.ContainsAny(host, "/?#@ ") {
		return originPattern{}, fmt.Errorf("allowed origin %q: want scheme://host[:port], e.g. https://*.example.com", s)
	}
	host = stripDefaultPort(scheme, host)
	p := originPattern{scheme: scheme, prefix: host}
	if i := strings.IndexByte(host, '*'); i >= 0 {
		if strings.IndexByte(host[i+1:], '*') >= 0 {
			return originPattern{}, fmt.Errorf("allowed origin %q: at most one '*'", s)
		}
		if c := strings.IndexByte(host, ':'); c >= 0 && c < i {
			return originPattern{}, fmt.Errorf("allowed origin %q: '*' may only stand in the host, not the port", s)
		}
		p.prefix, p.tail, p.star = host[:i], host[i+1:], true
	}
	return p, nil
}

// asciiLower lowers ASCII letters only (Origin comparisons are ASCII case-insensitive).
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// stripDefaultPort drops ":80" from an http host and ":443" from an https one (also ws, wss).
func stripDefaultPort(scheme, host string) string {
	switch scheme {
	case "http", "ws":
		return strings.TrimSuffix(host, ":80")
	case "https", "wss":
		return strings.TrimSuffix(host, ":443")
	}
	return host
}

// Enabled reports whether the list checks anything (a list or Require).
func (o *Origins) Enabled() bool { return o != nil && (len(o.list) > 0 || o.Require) }

// Allowed reports whether a request whose Origin header is origin (present says whether it has
// one) may connect. It allocates nothing. Any goroutine.
func (o *Origins) Allowed(origin []byte, present bool) bool {
	if o == nil {
		return true
	}
	if !present {
		return !o.Require
	}
	if len(o.list) == 0 {
		return true
	}
	i := indexOf(origin, "://")
	if i <= 0 {
		return false // "null" (opaque origins) and garbage
	}
	scheme, host := origin[:i], origin[i+3:]
	for k := range o.list {
		if o.list[k].match(scheme, host) {
			return true
		}
	}
	return false
}

func (p *originPattern) match(scheme, host []byte) bool {
	if !equalFold(scheme, p.scheme) {
		return false
	}
	// The default port may be written in the header: compare without it.
	switch p.scheme {
	case "http", "ws":
		host = trimSuffix(host, ":80")
	case "https", "wss":
		host = trimSuffix(host, ":443")
	}
	if !p.star {
		return equalFold(host, p.prefix)
	}
	if len(host) <= len(p.prefix)+len(p.tail) {
		return false // the '*' stands for at least one character
	}
	mid := host[len(p.prefix) : len(host)-len(p.tail)]
	for _, c := range mid {
		if c == ':' || c == '/' {
			return false // the '*' covers host characters only, never the port
		}
	}
	return equalFold(host[:len(p.prefix)], p.prefix) && equalFold(host[len(host)-len(p.tail):], p.tail)
}

func indexOf(b []byte, s string) int {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return i
		}
	}
	return -1
}

func trimSuffix(b []byte, s string) []byte {
	if len(b) >= len(s) && string(b[len(b)-len(s):]) == s {
		return b[:len(b)-len(s)]
	}
	return b
}

// equalFold reports whether b equals the lower-case s, ignoring ASCII case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
