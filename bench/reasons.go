package bench

import (
	"cmp"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Results count failed attempts, disconnects and errors in maps keyed by
// reason. A key is one of the Reason* constants (http_NNN and
// server_close_NNN for the numbered ones), optionally followed by a space
// and a detail taken from the server or the error: the close frame's
// reason, the protocol violation. Keys are stable so results can be
// compared; describeReason turns one into words for people.

// maxReasonKeys bounds the distinct keys one loop or publisher records in a
// reason map: details come from the server and must not grow a result
// without bound. Past it, a new key is counted under its base (without the
// detail).
const maxReasonKeys = 32

// maxDetail bounds the detail of a key, in bytes.
const maxDetail = 120

// reasonKey returns the map key for a close event: the reason, with the
// HTTP status or close code, and the close frame's reason or the error as
// the detail when they say more than the reason alone.
func reasonKey(ev CloseEvent) string {
	key := ev.Reason
	detail := ""
	switch ev.Reason {
	case ReasonHTTPStatus:
		key = "http_" + strconv.Itoa(ev.Status)
	case ReasonServerClose:
		key = "server_close_" + strconv.Itoa(ev.Status)
		detail = ev.Text
	case ReasonProtocol, ReasonBadHandshake, ReasonOtherErrno:
		if ev.Err != nil {
			detail = ev.Err.Error()
		}
	}
	if detail == "" {
		return key
	}
	return key + " " + truncate(detail, maxDetail)
}

// countReason adds one to m[key] (see addReason).
func countReason(m *map[string]int64, key string) { addReason(m, key, 1) }

// addReason adds n to m[key], creating m; a new key past maxReasonKeys is
// counted under its base.
func addReason(m *map[string]int64, key string, n int64) {
	if *m == nil {
		*m = make(map[string]int64)
	}
	if _, ok := (*m)[key]; !ok && len(*m) >= maxReasonKeys {
		key, _, _ = strings.Cut(key, " ")
	}
	(*m)[key] += n
}

// reasonWords says what each Reason* constant means.
var reasonWords = map[string]string{
	ReasonRefused:       "connection refused",
	ReasonTimeout:       "connect timed out",
	ReasonReset:         "connection reset",
	ReasonBrokenPipe:    "broken pipe (the server closed while we wrote)",
	ReasonAddrNotAvail:  "no source port free (EADDRNOTAVAIL: spread sockets with -src)",
	ReasonAddrInUse:     "address in use",
	ReasonTooManyFiles:  "too many open files",
	ReasonUnreachable:   "network unreachable",
	ReasonNoBuffers:     "no buffer space",
	ReasonOtherErrno:    "socket error",
	ReasonHandshakeTime: "no handshake response within -timeout",
	ReasonBadHandshake:  "bad handshake response",
	ReasonEOFHandshake:  "server closed the connection during the handshake",
	ReasonEOF:           "server closed TCP without a close frame",
	ReasonProtocol:      "protocol violation",
	ReasonClosed:        "closed by the driver",
	ReasonCloseTimeout:  "server did not answer our close frame",
	ReasonAborted:       "aborted by the driver",
}

// closeCodeNames names the close codes of RFC 6455 7.4.1 and the IANA
// registry that servers commonly send.
var closeCodeNames = map[int]string{
	1000: "normal closure",
	1001: "going away",
	1002: "protocol error",
	1003: "unsupported data",
	1005: "no status",
	1007: "invalid payload",
	1008: "policy violation",
	1009: "message too big",
	1010: "extension required",
	1011: "internal error",
	1012: "service restart",
	1013: "try again later",
}

// describeReason turns a reason key into words: "server_close_1008 slow
// consumer" becomes "server close 1008 (policy violation) 'slow consumer'".
// Keys it does not know, such as the publisher's, are returned as they are.
func describeReason(key string) string {
	base, detail, _ := strings.Cut(key, " ")
	var words string
	switch {
	case strings.HasPrefix(base, "http_"):
		words = "HTTP " + base[len("http_"):] + " answer to the upgrade request"
	case strings.HasPrefix(base, "server_close_"):
		code := base[len("server_close_"):]
		words = "server close " + code
		if n, err := strconv.Atoi(code); err == nil && closeCodeNames[n] != "" {
			words += " (" + closeCodeNames[n] + ")"
		}
		if detail != "" {
			return words + " '" + detail + "'"
		}
		return words
	default:
		w, ok := reasonWords[base]
		if !ok {
			return key
		}
		words = w
	}
	if detail != "" {
		words += ": " + detail
	}
	return words
}

// describeCounts renders a reason map for people, most frequent first:
// "connection reset: 5; server close 1008 (policy violation): 3".
func describeCounts(m map[string]int64) string {
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		return cmp.Or(cmp.Compare(m[b], m[a]), strings.Compare(a, b))
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = describeReason(k) + ": " + strconv.FormatInt(m[k], 10)
	}
	return strings.Join(parts, "; ")
}

// truncate cuts s to at most n bytes on a UTF-8 boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
