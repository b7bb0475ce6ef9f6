package auth

import (
	"errors"
	"strings"
)

// Patterns are channel names or prefixes, as a token's "channels" and "publish" claims list
// them: "news" matches the channel news only, "prices:*" every channel whose name begins with
// "prices:" (including "prices:" itself). A '*' may only end a pattern; a lone "*" matches every
// channel. No pattern matches a personal channel ("#..."): only Claims.MaySubscribe grants one,
// its owner's.
type Patterns []string

// Pattern syntax errors.
var (
	ErrPatternEmpty    = errors.New("empty channel pattern")
	ErrPatternStar     = errors.New("'*' may only end a channel pattern")
	ErrPatternPersonal = errors.New("a channel pattern may not name a personal channel ('#...'): each user has only its own")
	ErrPatternLong     = errors.New("channel pattern longer than 128 bytes")
)

// maxPattern is the longest pattern: a channel name's limit (128 bytes) or that plus the '*'.
const maxPattern = 129

// CheckPattern reports why p is not a valid pattern, or nil.
func CheckPattern(p string) error {
	switch {
	case p == "":
		return ErrPatternEmpty
	case len(p) > maxPattern:
		return ErrPatternLong
	case p[0] == '#':
		return ErrPatternPersonal
	}
	if i := strings.IndexByte(p, '*'); i >= 0 && i != len(p)-1 {
		return ErrPatternStar
	}
	return nil
}

// ParsePatterns checks every pattern of list and returns them as Patterns.
func ParsePatterns(list []string) (Patterns, error) {
	for _, p := range list {
		if err := CheckPattern(p); err != nil {
			return nil, err
		}
	}
	return Patterns(list), nil
}

// Match reports whether channel is matched by one of the patterns. Patterns must have passed
// CheckPattern. It allocates nothing.
func (ps Patterns) Match(channel string) bool {
	if channel == "" || channel[0] == '#' {
		return false
	}
	for _, p := range ps {
		if n := len(p) - 1; n >= 0 && p[n] == '*' {
			if strings.HasPrefix(channel, p[:n]) {
				return true
			}
		} else if p == channel {
			return true
		}
	}
	return false
}
