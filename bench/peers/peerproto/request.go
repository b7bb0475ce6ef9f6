package peerproto

import (
	"bytes"
	"encoding/json"
)

// Op is the operation a client asks for.
type Op uint8

// Client operations of the protocol.
const (
	OpSubscribe Op = iota + 1
	OpUnsubscribe
	OpPublish
)

// String returns the wire name of op.
func (op Op) String() string {
	switch op {
	case OpSubscribe:
		return "subscribe"
	case OpUnsubscribe:
		return "unsubscribe"
	case OpPublish:
		return "publish"
	}
	return "invalid"
}

// Limits wsgate applies to requests, applied here the same way.
const (
	MaxChannelName = 128 // bytes
	MaxPublishID   = 128 // bytes
)

// RequestError is a request the server refuses. Code and Reason are what the
// peers send in {"op":"error","code":Code,"reason":Reason}; codes and texts
// are wsgate's, so a client sees the same answer from every server.
type RequestError struct {
	Code   int
	Reason string
}

// Error returns the reason.
func (e *RequestError) Error() string { return e.Reason }

// Errors for refused requests.
var (
	ErrMalformed  = &RequestError{400, "invalid JSON"}
	ErrUnknownOp  = &RequestError{400, "unknown op"}
	ErrNoData     = &RequestError{400, `"data" is required and must be JSON`}
	ErrBinary     = &RequestError{400, "binary frames are not part of the protocol"}
	ErrBadChannel = &RequestError{422, "invalid channel name"}
	ErrBadID      = &RequestError{422, "invalid id (at most 128 bytes of UTF-8)"}
)

// NotSubscribed is the refusal of an unsubscribe from a channel the
// connection is not in.
func NotSubscribed(channel string) *RequestError {
	return &RequestError{404, "not subscribed to " + channel}
}

// AppendRequestError appends the {"op":"error"} reply for e.
func AppendRequestError(dst []byte, e *RequestError) []byte {
	return AppendError(dst, e.Code, e.Reason)
}

// Request is one parsed client message. Every field owns its memory: a
// Request stays valid after the buffer it was parsed from is reused.
type Request struct {
	Op      Op
	Channel string
	// ID is the publish id; empty when the publish had none.
	ID string
	// Data is the raw JSON value of "data", byte for byte as the client sent
	// it. Set only for OpPublish.
	Data []byte
}

// wireRequest mirrors the JSON object a client sends.
type wireRequest struct {
	Op      string          `json:"op"`
	Channel string          `json:"channel"`
	ID      string          `json:"id"`
	Data    json.RawMessage `json:"data"`
}

// ParseRequest parses one client text message and validates it as wsgate
// does: the message is a JSON object whose "op" is one of the three client
// operations; "channel" is 1 to 128 bytes of ASCII letters, digits and
// _ - . : @ /; a publish carries "data" (any JSON value, null included) and
// an optional "id" of at most 128 bytes. Unknown members are ignored. msg is
// only read during the call and may be reused afterwards.
func ParseRequest(msg []byte) (Request, *RequestError) {
	var w wireRequest
	if err := json.Unmarshal(msg, &w); err != nil {
		return Request{}, ErrMalformed
	}
	var r Request
	switch w.Op {
	case "subscribe":
		r.Op = OpSubscribe
	case "unsubscribe":
		r.Op = OpUnsubscribe
	case "publish":
		r.Op = OpPublish
	default:
		return Request{}, ErrUnknownOp
	}
	if !ValidChannel(w.Channel) {
		return Request{}, ErrBadChannel
	}
	r.Channel = w.Channel
	if r.Op == OpPublish {
		if len(w.ID) > MaxPublishID {
			return Request{}, ErrBadID
		}
		if len(bytes.TrimSpace(w.Data)) == 0 {
			return Request{}, ErrNoData
		}
		r.ID, r.Data = w.ID, w.Data
	}
	return r, nil
}

// ValidChannel reports whether name is a valid channel name: 1 to 128 bytes
// of ASCII letters, digits and _ - . : @ / (wsgate's rule: such a name never
// needs escaping in JSON or in a URL path).
func ValidChannel(name string) bool {
	if len(name) == 0 || len(name) > MaxChannelName {
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
