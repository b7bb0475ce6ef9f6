package pubsub

import (
	"strconv"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/frame"
	"github.com/wsgate/wsgate/shard"
)

// encodeMessage builds the complete WebSocket frame of a channel message:
// {"op":"message","channel":C,"seq":N,"id":I,"data":D} ("id" omitted when empty), and returns
// it with the offset where D starts (D ends one byte before the frame's end).
func encodeMessage(channel string, seq uint64, id string, data []byte) (frameBytes []byte, dataOff int) {
	var num [20]byte
	seqStr := strconv.AppendUint(num[:0], seq, 10)
	n := len(`{"op":"message","channel":"","seq":,"data":}`) + len(channel) + len(seqStr) + len(data)
	if id != "" {
		n += len(`,"id":`) + jsonStringLen(id)
	}
	b := make([]byte, 0, frame.HeaderLen(n)+n)
	b = frame.AppendHeader(b, true, ws.OpText, n)
	b = append(b, `{"op":"message","channel":"`...)
	b = append(b, channel...)
	b = append(b, `","seq":`...)
	b = append(b, seqStr...)
	if id != "" {
		b = append(b, `,"id":`...)
		b = appendJSONString(b, id)
	}
	b = append(b, `,"data":`...)
	dataOff = len(b)
	b = append(b, data...)
	b = append(b, '}')
	if len(b) != cap(b) {
		panic("BUG: encodeMessage: length computed wrongly")
	}
	return b, dataOff
}

// encodeBroadcastPayload builds a broadcast's text: {"op":"broadcast","id":I,"data":D} ("id"
// omitted when empty).
func encodeBroadcastPayload(id string, data []byte) []byte {
	payload := []byte(`{"op":"broadcast"`)
	if id != "" {
		payload = append(payload, `,"id":`...)
		payload = appendJSONString(payload, id)
	}
	payload = append(payload, `,"data":`...)
	payload = append(payload, data...)
	return append(payload, '}')
}

// opText is the opcode of every frame the gateway sends.
const opText = ws.OpText

// appendSubscribed appends the reply to a subscribe: {"op":"subscribed","channel":C,"seq":N,
// "epoch":"E"}, with "recovered" when the client asked for recovery.
func appendSubscribed(b []byte, channel string, top shard.Position, askedRecovery, recovered bool) []byte {
	b = append(b, `{"op":"subscribed",`...)
	return append(appendPosFields(b, channel, top, askedRecovery, recovered), '}')
}

// appendPosFields appends "channel":"C","seq":N,"epoch":"E" and "recovered" when asked: a
// channel's position, as the subscribe reply and the SSE subscribed event carry it.
func appendPosFields(b []byte, channel string, top shard.Position, askedRecovery, recovered bool) []byte {
	b = append(b, `"channel":"`...)
	b = append(b, channel...)
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, top.Seq, 10)
	b = append(b, `,"epoch":"`...)
	b = append(b, top.Epoch...)
	b = append(b, '"')
	if askedRecovery {
		b = append(b, `,"recovered":`...)
		b = strconv.AppendBool(b, recovered)
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string (RFC 8259), escaping quotes, backslashes and
// control characters; s must be valid UTF-8.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func jsonStringLen(s string) int {
	n := 2
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			n += 2
		case c < 0x20:
			n += 6
		default:
			n++
		}
	}
	return n
}
