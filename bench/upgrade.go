package bench

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// This file drives the opening handshake (RFC 6455 4.1) on a connection
// slot; handshake.go encodes the request and parses the response.

// connected sends the opening handshake (RFC 6455 4.1) with a fresh nonce.
func (c *Conn) connected() {
	l := c.loop
	var nonce [16]byte
	binary.LittleEndian.PutUint64(nonce[:8], l.rng.Uint64())
	binary.LittleEndian.PutUint64(nonce[8:], l.rng.Uint64())
	c.key = makeKey(nonce)
	c.state = stHandshake
	cfg := &l.e.cfg
	var token string
	if n := len(cfg.Tokens); n > 0 {
		token = cfg.Tokens[c.ID()%n]
	}
	if cfg.SSEChannels > 0 {
		ch := cfg.ChannelPrefix + strconv.Itoa(c.ID()%cfg.SSEChannels)
		l.wbuf = appendSSERequest(l.wbuf[:0], cfg.Host, cfg.Path, ch, cfg.Header, token)
	} else {
		l.wbuf = appendUpgradeRequest(l.wbuf[:0], cfg.Host, cfg.Path, c.key[:], cfg.Header, token)
	}
	c.write(l.wbuf)
}

// upgradeResponse adds data to the server's handshake response, which
// accumulates in rq, and opens the connection once the response is complete
// and valid. It reports true when the connection is open and bytes that
// followed the response, already frames, wait in rq; false when the
// response is incomplete, it failed, or OnOpen closed or redialled the slot.
func (c *Conn) upgradeResponse(data []byte) (framesFollow bool) {
	l := c.loop
	gen := c.gen
	if c.rq == nil {
		c.rq = l.getBuf(len(data))
	}
	c.rq = append(c.rq, data...)
	var n, status int
	var deflate bool
	var err error
	if l.e.cfg.SSEChannels > 0 {
		n, status, err = parseSSEResponse(c.rq)
	} else {
		n, status, deflate, err = parseUpgradeResponseExt(c.rq, c.key[:], l.e.cfg.Deflate)
	}
	if err != nil {
		reason := ReasonBadHandshake
		if errors.Is(err, errStatus) {
			reason = ReasonHTTPStatus
		}
		c.shut(reason, status, err)
		return false
	}
	if n == 0 {
		return false
	}
	c.state = stOpen
	c.deflate = deflate
	if deflate {
		l.stats.deflated.Add(1)
	}
	l.stats.opened.Add(1)
	l.e.h.OnOpen(c)
	if c.gen != gen || c.state == stIdle {
		return false
	}
	m := copy(c.rq, c.rq[n:])
	c.rq = c.rq[:m]
	if m == 0 {
		l.putBuf(c.rq)
		c.rq = nil
		return false
	}
	return true
}
