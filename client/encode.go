package client

import (
	"encoding/json"
	"strconv"
)

// maxChannel and maxID are the gateway's limits (docs/protocol.md): requests over them would
// only earn a 422.
const (
	maxChannel = 128
	maxID      = 128
)

// validChannel reports whether name is a channel name the gateway accepts: 1 to 128 bytes of
// ASCII letters, digits and _ - . : @ / (so it never needs escaping in JSON).
func validChannel(name string) bool {
	if len(name) == 0 || len(name) > maxChannel {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '-', c == '.', c == ':', c == '@', c == '/':
		default:
			return false
		}
	}
	return true
}

// appendSubscribe appends {"op":"subscribe","channel":C} with "since" when pos is known.
func appendSubscribe(b []byte, channel string, pos position) []byte {
	b = append(b, `{"op":"subscribe","channel":"`...)
	b = append(b, channel...)
	b = append(b, '"')
	if pos.known {
		b = append(b, `,"since":{"seq":`...)
		b = strconv.AppendUint(b, pos.seq, 10)
		b = append(b, `,"epoch":`...)
		b = appendJSONString(b, pos.epoch)
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendUnsubscribe appends {"op":"unsubscribe","channel":C}.
func appendUnsubscribe(b []byte, channel string) []byte {
	b = append(b, `{"op":"unsubscribe","channel":"`...)
	b = append(b, channel...)
	return append(b, `"}`...)
}

// appendPublish appends {"op":"publish","channel":C,"id":I,"data":D} ("id" left out when empty)
// with data as given: subscribers get the very bytes (encoding/json would re-escape them).
func appendPublish(b []byte, channel, id string, data []byte) []byte {
	b = append(b, `{"op":"publish","channel":"`...)
	b = append(b, channel...)
	b = append(b, '"')
	if id != "" {
		b = append(b, `,"id":`...)
		b = appendJSONString(b, id)
	}
	b = append(b, `,"data":`...)
	b = append(b, data...)
	return append(b, '}')
}

// appendJSONString appends s (valid UTF-8) as a JSON string (RFC 8259 section 7): quotes,
// backslashes and control characters escaped, everything else as is.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// frameIn is any frame the gateway sends (docs/protocol.md, "Server -> client").
type frameIn struct {
	Op        string          `json:"op"`
	Channel   string          `json:"channel"`
	Seq       uint64          `json:"seq"`
	Epoch     string          `json:"epoch"`
	ID        string          `json:"id"`
	Data      json.RawMessage `json:"data"`
	Recovered *bool           `json:"recovered"`
	Code      int             `json:"code"`
	Reason    string          `json:"reason"`
}
