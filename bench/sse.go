package bench

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/gobwas/ws"
)

// Server-Sent Events connections (the sse scenario): instead of an upgrade, a slot sends
// "GET <path>?channel=<its channel>" with Accept: text/event-stream, expects 200 with a chunked
// text/event-stream body, and hands the data of each event to Handler.OnMessage as a text
// message (comments, such as the server's ": ping", are skipped). The driver closes an SSE
// connection by closing its socket: a stream has no closing handshake.

var (
	errNotEventStream = errors.New("response is not a chunked text/event-stream")
	errBadChunk       = errors.New("malformed chunk in the event stream")
	errStreamEnded    = errors.New("the server ended the event stream")
)

// maxEvent bounds a chunk (one event) the driver buffers.
const maxEvent = maxFrameSize

// appendSSERequest appends the request of an SSE slot subscribed to channel.
func appendSSERequest(dst []byte, host, path, channel, extra, token string) []byte {
	dst = append(dst, "GET "...)
	dst = append(dst, path...)
	if bytes.IndexByte([]byte(path), '?') >= 0 {
		dst = append(dst, '&')
	} else {
		dst = append(dst, '?')
	}
	dst = append(dst, "channel="...)
	dst = append(dst, channel...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nAccept: text/event-stream\r\n"...)
	dst = append(dst, extra...)
	if token != "" {
		dst = append(dst, "Authorization: Bearer "...)
		dst = append(dst, token...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// parseSSEResponse checks the head of the answer to an SSE request at the start of b: 200,
// Content-Type text/event-stream, Transfer-Encoding chunked. n is 0 while the head is
// incomplete; a status other than 200 returns errStatus with the status.
func parseSSEResponse(b []byte) (n int, status int, err error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) > maxResponseHead {
			return 0, 0, errHeadTooLarge
		}
		return 0, 0, nil
	}
	n = end + 4
	line, rest, _ := bytes.Cut(b[:end], []byte("\r\n"))
	if status, err = parseStatusLine(line); err != nil {
		return n, 0, err
	}
	if status != 200 {
		return n, status, errStatus
	}
	var stream, chunked bool
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return n, status, errBadHeaderLine
		}
		value = bytes.Trim(value, " \t")
		switch {
		case asciiEqualFold(name, "Content-Type"):
			stream = bytes.HasPrefix(value, []byte("text/event-stream"))
		case asciiEqualFold(name, "Transfer-Encoding"):
			chunked = asciiEqualFold(value, "chunked")
		}
	}
	if !stream || !chunked {
		return n, status, errNotEventStream
	}
	return n, status, nil
}

// nextChunk reads the chunk at the start of b (RFC 9112 7.1, without extensions or trailers:
// the server's framing): its payload and the bytes it takes, n == 0 while it is incomplete.
// The last chunk (size 0) is errStreamEnded.
func nextChunk(b []byte) (payload []byte, n int, err error) {
	eol := bytes.Index(b, []byte("\r\n"))
	if eol < 0 {
		if len(b) > 18 {
			return nil, 0, errBadChunk
		}
		return nil, 0, nil
	}
	size, perr := strconv.ParseUint(string(b[:eol]), 16, 32)
	if perr != nil || size > maxEvent {
		return nil, 0, errBadChunk
	}
	if size == 0 {
		return nil, 0, errStreamEnded
	}
	end := eol + 2 + int(size) + 2
	if len(b) < end {
		return nil, 0, nil
	}
	if string(b[end-2:end]) != "\r\n" {
		return nil, 0, errBadChunk
	}
	return b[eol+2 : end-2], end, nil
}

// events handles every complete chunk at the start of b (each the server's event or comment)
// and returns the incomplete tail.
func (c *Conn) events(b []byte) []byte {
	gen := c.gen
	for len(b) > 0 {
		chunk, n, err := nextChunk(b)
		switch {
		case err == errStreamEnded:
			c.shut(ReasonEOF, 0, err)
			return nil
		case err != nil:
			c.shut(ReasonProtocol, 0, err)
			return nil
		case n == 0:
			return b
		}
		b = b[n:]
		eventData(chunk, func(data []byte) { c.deliver(ws.OpText, data) })
		if c.gen != gen || c.state == stIdle {
			return nil
		}
	}
	return b
}

// eventData calls fn with the data of each event in one chunk (lines "data: ..." up to a blank
// line; an event of several data lines is given as its first: the gateway's JSON needs one).
// Comment lines and other fields are skipped.
func eventData(chunk []byte, fn func(data []byte)) {
	for len(chunk) > 0 {
		line, rest, _ := bytes.Cut(chunk, []byte("\n"))
		chunk = rest
		if data, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
			fn(data)
			for len(chunk) > 0 && !bytes.HasPrefix(chunk, []byte("\n")) {
				_, chunk, _ = bytes.Cut(chunk, []byte("\n"))
			}
		}
	}
}
