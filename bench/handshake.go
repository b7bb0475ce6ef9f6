package bench

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
)

// wsGUID is the fixed string appended to Sec-WebSocket-Key (RFC 6455 1.3, 4.2.2).
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// maxResponseHead bounds the HTTP response head the driver buffers while
// waiting for "\r\n\r\n". A 101 response is a few hundred bytes.
const maxResponseHead = 16 << 10

// keyLen is the length of a base64-encoded 16-byte nonce (RFC 6455 4.1).
const keyLen = 24

var (
	errHeadTooLarge   = errors.New("HTTP response head too large")
	errBadStatusLine  = errors.New("malformed HTTP status line")
	errBadHeaderLine  = errors.New("malformed HTTP header line")
	errNotUpgraded    = errors.New("response lacks Upgrade: websocket")
	errNoConnUpgrade  = errors.New("response lacks Connection: Upgrade")
	errBadAccept      = errors.New("Sec-WebSocket-Accept does not match the key")
	errUnrequestedExt = errors.New("server selected an extension or subprotocol that was not offered")
)

// errStatus reports a non-101 HTTP status; the status itself is returned next
// to it by parseUpgradeResponse.
var errStatus = errors.New("server answered without switching protocols")

// makeKey encodes 16 nonce bytes as a Sec-WebSocket-Key.
func makeKey(nonce [16]byte) (key [keyLen]byte) {
	base64.StdEncoding.Encode(key[:], nonce[:])
	return key
}

// acceptFor computes Sec-WebSocket-Accept for key (RFC 6455 4.2.2 step 5.4)
// without allocating.
func acceptFor(key []byte) (acc [28]byte) {
	var buf [keyLen + len(wsGUID)]byte
	n := copy(buf[:], key)
	n += copy(buf[n:], wsGUID)
	sum := sha1.Sum(buf[:n])
	base64.StdEncoding.Encode(acc[:], sum[:])
	return acc
}

// appendUpgradeRequest appends the client's opening handshake (RFC 6455 4.1)
// for host (the Host header, with port when not default) and path (request
// target with query) to dst. extra is zero or more complete header lines,
// each ending in "\r\n"; token, when not empty, is sent as
// "Authorization: Bearer <token>".
func appendUpgradeRequest(dst []byte, host, path string, key []byte, extra, token string) []byte {
	dst = append(dst, "GET "...)
	dst = append(dst, path...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "...)
	dst = append(dst, key...)
	dst = append(dst, "\r\n"...)
	dst = append(dst, extra...)
	if token != "" {
		dst = append(dst, "Authorization: Bearer "...)
		dst = append(dst, token...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	return dst
}

// parseUpgradeResponse checks the server's opening handshake at the start of
// b against the key the client sent (RFC 6455 4.1, "the client MUST validate
// the server's response"). It returns n == 0 with a nil error while the head
// ("\r\n\r\n") is incomplete; otherwise n is the length of the head and any
// bytes after it are already WebSocket frames. status is the HTTP status code
// when the status line could be read; a status other than 101 returns
// errStatus.
func parseUpgradeResponse(b []byte, key []byte) (n int, status int, err error) {
	n, status, _, err = parseUpgradeResponseExt(b, key, false)
	return n, status, err
}

// parseUpgradeResponseExt is parseUpgradeResponse for a client that offered permessage-deflate
// when offered is true: deflate reports that the server agreed (deflateAnswer's rules).
func parseUpgradeResponseExt(b []byte, key []byte, offered bool) (n int, status int, deflate bool, err error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) > maxResponseHead {
			return 0, 0, false, errHeadTooLarge
		}
		return 0, 0, false, nil
	}
	if end+4 > maxResponseHead {
		return 0, 0, false, errHeadTooLarge
	}
	n = end + 4
	head := b[:end]
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	status, err = parseStatusLine(line)
	if err != nil {
		return n, 0, false, err
	}
	if status != 101 {
		return n, status, false, errStatus
	}
	var upgrade, connection, accept bool
	want := acceptFor(key)
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t") {
			return n, status, false, errBadHeaderLine
		}
		value = bytes.Trim(value, " \t")
		switch {
		case asciiEqualFold(name, "Upgrade"):
			upgrade = upgrade || asciiEqualFold(value, "websocket")
		case asciiEqualFold(name, "Connection"):
			connection = connection || hasToken(value, "upgrade")
		case asciiEqualFold(name, "Sec-WebSocket-Accept"):
			accept = bytes.Equal(value, want[:])
			if !accept {
				return n, status, false, errBadAccept
			}
		case asciiEqualFold(name, "Sec-WebSocket-Extensions"):
			if len(value) > 0 {
				if deflate, err = deflateAnswer(value, offered); err != nil {
					return n, status, false, err
				}
			}
		case asciiEqualFold(name, "Sec-WebSocket-Protocol"):
			if len(value) > 0 {
				return n, status, false, errUnrequestedExt
			}
		}
	}
	switch {
	case !upgrade:
		return n, status, false, errNotUpgraded
	case !connection:
		return n, status, false, errNoConnUpgrade
	case !accept:
		return n, status, false, errBadAccept
	}
	return n, status, deflate, nil
}

// parseStatusLine reads "HTTP/1.x SSS reason" (RFC 9112 4).
func parseStatusLine(line []byte) (int, error) {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, errBadStatusLine
	}
	code := line[9:12]
	if len(line) > 12 && line[12] != ' ' {
		return 0, errBadStatusLine
	}
	for _, c := range code {
		if c < '0' || c > '9' {
			return 0, errBadStatusLine
		}
	}
	return int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0'), nil
}

// asciiEqualFold compares b and s ignoring ASCII case, without allocating.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated list v contains token,
// ignoring ASCII case and optional whitespace (RFC 9110 5.6.1).
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var item []byte
		item, v, _ = bytes.Cut(v, []byte(","))
		if asciiEqualFold(bytes.Trim(item, " \t"), token) {
			return true
		}
	}
	return false
}
