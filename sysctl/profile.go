package sysctl

import (
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// profileText is million.conf, the bundled profile. Its syntax is documented at its top.
//
//go:embed million.conf
var profileText string

// Comparison rules, as written in the CMP column of the profile. A ram rule is written with its
// unit: "ram/page" (the host's page size) or "ram/N" (N bytes per unit). A ports rule has one
// value, a port list in the kernel's syntax ("8080,9090", "1000-1005").
const (
	CmpMin   = "min"
	CmpMax   = "max"
	CmpRange = "range"
	CmpExact = "exact"
	CmpRAM   = "ram/" // prefix
	CmpPorts = "ports"
)

// Parser limits. They keep a malformed profile from producing absurd rules; the bundled one is
// far inside them.
const (
	maxKeyLen    = 200
	maxFields    = 8
	maxFracDigit = 4       // percentages: at most 4 digits after the point
	maxUnit      = 1 << 30 // ram/N: at most 1 GiB per unit
)

// Entry is one setting of the profile as written.
type Entry struct {
	Key   string // sysctl name with dots, e.g. "net.core.somaxconn"
	Value string // the VALUE fields as written, separated by single spaces
	Why   string // the comment block above the setting: why it is there and what it costs
	Cmp   string // how it is compared: min, max, range, exact, ram/page, ram/N or ports
}

// opKind is the parsed CMP column.
type opKind uint8

const (
	opMin opKind = iota + 1
	opMax
	opRange
	opExact
	opRAM
	opPorts
)

// field is one parsed VALUE field. For opRAM, n/scale is a percentage of physical RAM (12.5% is
// n=125, scale=10); otherwise n is the value itself and scale is unused.
type field struct {
	any   bool // "*": not compared, never changed
	n     uint64
	scale uint64
}

// rule is a parsed Entry. Rules are immutable once parsed; their slices are shared read-only.
type rule struct {
	Entry
	op     opKind
	unit   uint64  // opRAM only: bytes per unit, 0 for the host's page size
	fields []field // every kind but opPorts
	ports  portSet // opPorts only: the ports the live list must contain, never empty
}

// parsedProfile parses the embedded profile once. A parse error is a broken build, not a
// run-time condition, hence the panic; TestProfileParses proves it does not happen.
var parsedProfile = sync.OnceValue(func() []rule {
	rules, err := parseProfile(profileText)
	if err != nil {
		panic("BUG: embedded sysctl profile million.conf does not parse: " + err.Error())
	}
	return rules
})

// Profile returns the settings of the embedded profile in file order. The slice is a fresh copy
// the caller may keep and modify. It panics with "BUG: ..." if the embedded file is broken.
func Profile() []Entry {
	rules := parsedProfile()
	out := make([]Entry, len(rules))
	for i := range rules {
		out[i] = rules[i].Entry
	}
	return out
}

// ProfileText returns the embedded profile verbatim, comments included.
func ProfileText() string { return profileText }

// parseProfile parses profile text in the syntax documented at the top of million.conf. Errors
// name the 1-based line.
func parseProfile(text string) ([]rule, error) {
	var (
		rules []rule
		why   []string
		seen  = make(map[string]int)
	)
	for i, line := range strings.Split(text, "\n") {
		lineNo := i + 1
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			why = why[:0]
		case line[0] == '#':
			why = append(why, strings.Fields(line[1:])...)
		default:
			r, err := parseSetting(line)
			if err != nil {
				return nil, fmt.Errorf("profile line %d: %w", lineNo, err)
			}
			if len(why) == 0 {
				return nil, fmt.Errorf("profile line %d: %s has no explanation: put why it is there "+
					"and what it costs in a comment block directly above it", lineNo, r.Key)
			}
			if prev, dup := seen[r.Key]; dup {
				return nil, fmt.Errorf("profile line %d: %s is already set on line %d", lineNo, r.Key, prev)
			}
			seen[r.Key] = lineNo
			r.Why = strings.Join(why, " ")
			why = why[:0]
			rules = append(rules, r)
		}
	}
	if len(rules) == 0 {
		return nil, errors.New("profile has no settings")
	}
	return rules, nil
}

// parseSetting parses "KEY CMP VALUE...". Why is filled in by the caller.
func parseSetting(line string) (rule, error) {
	f := strings.Fields(line)
	if len(f) < 3 {
		return rule{}, fmt.Errorf("want KEY CMP VALUE..., got %q", line)
	}
	key, cmp, vals := f[0], f[1], f[2:]
	if err := checkKey(key); err != nil {
		return rule{}, err
	}
	if len(vals) > maxFields {
		return rule{}, fmt.Errorf("%s: %d value fields, at most %d", key, len(vals), maxFields)
	}
	r := rule{Entry: Entry{Key: key, Cmp: cmp, Value: strings.Join(vals, " ")}}
	switch {
	case cmp == CmpMin:
		r.op = opMin
	case cmp == CmpMax:
		r.op = opMax
	case cmp == CmpRange:
		r.op = opRange
	case cmp == CmpExact:
		r.op = opExact
	case cmp == CmpPorts:
		return parsePortsSetting(r, vals)
	case strings.HasPrefix(cmp, CmpRAM):
		r.op = opRAM
		if u := cmp[len(CmpRAM):]; u != "page" {
			n, err := parseUint(u)
			if err != nil || n == 0 || n > maxUnit {
				return rule{}, fmt.Errorf("%s: %q: the unit after ram/ must be \"page\" or a byte count from 1 to %d", key, cmp, maxUnit)
			}
			r.unit = n
		}
	default:
		return rule{}, fmt.Errorf("%s: unknown comparison %q (want min, max, range, exact, ram/UNIT or ports)", key, cmp)
	}
	r.fields = make([]field, len(vals))
	concrete := 0
	for i, v := range vals {
		var err error
		switch {
		case v == "*":
			if r.op == opRange || r.op == opExact {
				return rule{}, fmt.Errorf("%s: \"*\" is not allowed in a %s value", key, cmp)
			}
			r.fields[i].any = true
			continue
		case r.op == opRAM:
			r.fields[i].n, r.fields[i].scale, err = parsePercent(v)
		default:
			r.fields[i].n, err = parseUint(v)
		}
		if err != nil {
			return rule{}, fmt.Errorf("%s: field %d: %w", key, i+1, err)
		}
		concrete++
	}
	if concrete == 0 {
		return rule{}, fmt.Errorf("%s: every field is \"*\", nothing to compare", key)
	}
	if r.op == opRange {
		if len(vals) != 2 {
			return rule{}, fmt.Errorf("%s: a range has two fields, LOW HIGH; got %d", key, len(vals))
		}
		if r.fields[0].n > r.fields[1].n {
			return rule{}, fmt.Errorf("%s: range %d %d has LOW above HIGH", key, r.fields[0].n, r.fields[1].n)
		}
	}
	return r, nil
}

// parsePortsSetting completes a ports rule: one value, a non-empty port list.
func parsePortsSetting(r rule, vals []string) (rule, error) {
	r.op = opPorts
	if len(vals) != 1 {
		return rule{}, fmt.Errorf("%s: a ports value is one list such as 8080,9090 (no blanks); got %d fields", r.Key, len(vals))
	}
	set, err := parsePortSet(vals[0])
	if err != nil {
		return rule{}, fmt.Errorf("%s: %w", r.Key, err)
	}
	if len(set) == 0 {
		return rule{}, fmt.Errorf("%s: empty port list", r.Key)
	}
	r.ports = set
	return r, nil
}

// checkKey accepts dotted sysctl names whose segments are non-empty and made of ASCII letters,
// digits, '_' and '-'. Since '.' only separates segments and '/' is refused, a key can never
// name a path outside the sysctl root (no "..", no absolute paths).
func checkKey(key string) error {
	if key == "" || len(key) > maxKeyLen {
		return fmt.Errorf("key %q: must be 1 to %d characters", key, maxKeyLen)
	}
	for seg := range strings.SplitSeq(key, ".") {
		if seg == "" {
			return fmt.Errorf("key %q: empty segment", key)
		}
		for j := 0; j < len(seg); j++ {
			c := seg[j]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
				return fmt.Errorf("key %q: character %q not allowed (letters, digits, '_', '-' and '.')", key, c)
			}
		}
	}
	return nil
}

// parseUint parses an unsigned decimal integer made of ASCII digits only (no sign, no spaces).
func parseUint(s string) (uint64, error) {
	if !allDigits(s) {
		return 0, fmt.Errorf("%q is not an unsigned decimal integer", s)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, errors.Unwrap(err))
	}
	return n, nil
}

// parsePercent parses "D%" or "D.F%" with at most maxFracDigit digits F, above 0 and at most
// 100, into n/scale percent.
func parsePercent(s string) (n, scale uint64, err error) {
	body, ok := strings.CutSuffix(s, "%")
	if !ok {
		return 0, 0, fmt.Errorf("%q: a ram/UNIT field is a percentage such as 12.5%%", s)
	}
	whole, frac, dot := strings.Cut(body, ".")
	if !allDigits(whole) || len(whole) > 3 || dot && (!allDigits(frac) || len(frac) > maxFracDigit) {
		return 0, 0, fmt.Errorf("%q: a ram/UNIT field is a percentage such as 12.5%% (at most %d decimals)", s, maxFracDigit)
	}
	scale = 1
	for range len(frac) {
		scale *= 10
	}
	n, err = strconv.ParseUint(whole+frac, 10, 64) // at most 7 digits: cannot overflow
	if err != nil {
		return 0, 0, fmt.Errorf("%q: %w", s, errors.Unwrap(err))
	}
	if n == 0 || n > 100*scale {
		return 0, 0, fmt.Errorf("%q: a share of RAM must be above 0%% and at most 100%%", s)
	}
	return n, scale, nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
