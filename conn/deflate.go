package conn

import (
	"sync"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/frame"
)

// permessage-deflate (RFC 7692) on a connection, without context takeover in either direction
// (frame.UpgradeDeflate agrees on nothing else): the one bit of state a connection keeps is
// flagDeflate, set at the handshake, plus flagInflate while a compressed fragmented message is
// being assembled. Compressors and decompressors are frame's pools, held only during a call;
// buffers are the loop's ringbuf.Pool. An idle connection that agreed on compression holds
// nothing more than one that did not.

// compressedFrame handles a data frame of a compressed message (the first frame had RSV1): the
// compressed bytes are assembled like any fragmented message, and the message is inflated once
// its last frame is in. op is the message's opcode. Loop goroutine only.
func (c *Conn) compressedFrame(h ws.Header, op ws.OpCode, payload []byte) {
	if !h.Fin {
		c.fragOp = op
		c.appendMsg(payload)
		return
	}
	z := payload
	if c.fragOp != 0 {
		c.appendMsg(payload)
		z = c.msg
	}
	e := c.e
	msg, err := frame.Inflate(nil, z, int(e.cfg.MaxMessage), e.growFn)
	c.fragOp = 0
	c.flags &^= flagInflate
	c.releaseMsg()
	if err == nil && op == ws.OpText && !utf8.Valid(msg) {
		err = frame.ErrInvalidUTF8 // every RFC 6455 rule applies to the inflated text (RFC 7692 section 6)
	}
	if err != nil {
		if msg != nil {
			e.pool.Put(msg)
		}
		c.protocolError(err)
		return
	}
	e.Stats.MessagesInflated.Add(1)
	e.Stats.InflateBytesIn.Add(uint64(len(z)))
	e.Stats.InflateBytesOut.Add(uint64(len(msg)))
	c.lastData = c.lastRecv
	e.Stats.MessagesIn.Add(1)
	c.msg = msg // released after the call, as an assembled message is (c.msg is free here)
	c.flags |= flagInMessage
	e.h.OnMessage(c, op, msg)
	c.flags &^= flagInMessage
	c.releaseMsg()
}

// grow is frame.Inflate's grow over the loop's pool (bound once in NewEngine as e.growFn):
// a buffer with b's content and room for n more bytes; b goes back to the pool.
func (e *Engine) grow(b []byte, n int) []byte {
	nb := e.pool.Get(len(b) + n)
	nb = append(nb, b...)
	if b != nil {
		e.pool.Put(b)
	}
	return nb
}

// writeCompressed queues payload as one compressed frame (RSV1) when the connection agreed on
// permessage-deflate, the payload is at least Config.CompressionMinSize bytes and compressing
// makes it smaller, and reports whether it did. Loop goroutine only.
func (c *Conn) writeCompressed(op ws.OpCode, payload []byte) bool {
	e := c.e
	if c.flags&flagDeflate == 0 || len(payload) < e.cfg.CompressionMinSize || (op != ws.OpText && op != ws.OpBinary) {
		return false
	}
	z := e.pool.Get(len(payload) + 64)
	z = frame.AppendDeflate(z, payload)
	ok := len(z) < len(payload)
	if ok {
		e.Stats.MessagesCompressed.Add(1)
		e.Stats.CompressBytesIn.Add(uint64(len(payload)))
		e.Stats.CompressBytesOut.Add(uint64(len(z)))
		b := c.queue().Grow(frame.HeaderLen(len(z)) + len(z))
		b = frame.AppendDeflateHeader(b[:0], op, len(z))
		copy(b[len(b):cap(b)], z)
		e.Stats.FramesOut.Add(1)
	}
	e.pool.Put(z)
	return ok
}

// WriteFrameDeflate queues compressed when the connection agreed on permessage-deflate and
// compressed is not nil, plain otherwise: the two encodings of one message, each a complete,
// immutable, unmasked frame queued by reference as WriteFrame does (compressed with RSV1, from
// Engine.CompressFrame). A fan-out compresses a message once and hands both to every
// subscriber. Loop goroutine only; it allocates nothing once the queues are warm.
func (c *Conn) WriteFrameDeflate(plain, compressed []byte) error {
	if compressed != nil && c.flags&flagDeflate != 0 {
		return c.WriteFrame(compressed)
	}
	return c.WriteFrame(plain)
}

// Compression reports whether the engine offers permessage-deflate (Config.Compression) and the
// smallest message it compresses. Any goroutine.
func (e *Engine) Compression() (on bool, minSize int) {
	return e.cfg.Compression, e.cfg.CompressionMinSize
}

// CompressFrame returns a new complete, unmasked, unfragmented frame (FIN, RSV1) carrying
// payload compressed without context takeover, for WriteFrameDeflate; nil when the engine does
// not offer compression, payload is shorter than Config.CompressionMinSize, op is not text or
// binary, or compressing would not make it smaller. The frame is allocated once, at its size, and
// must never be modified. It counts in the engine's Stats. Any goroutine (a publish compresses
// a message once, before its fan-out).
func (e *Engine) CompressFrame(op ws.OpCode, payload []byte) []byte {
	if !e.cfg.Compression || len(payload) < e.cfg.CompressionMinSize || (op != ws.OpText && op != ws.OpBinary) {
		return nil
	}
	sp := compressScratch.Get().(*[]byte)
	z := frame.AppendDeflate((*sp)[:0], payload)
	var f []byte
	if len(z) < len(payload) {
		f = make([]byte, 0, frame.HeaderLen(len(z))+len(z))
		f = frame.AppendDeflateHeader(f, op, len(z))
		f = append(f, z...)
		e.Stats.MessagesCompressed.Add(1)
		e.Stats.CompressBytesIn.Add(uint64(len(payload)))
		e.Stats.CompressBytesOut.Add(uint64(len(z)))
	}
	if cap(z) <= maxScratch {
		*sp = z[:0]
		compressScratch.Put(sp)
	}
	return f
}

// maxScratch bounds the compression scratch buffers kept in compressScratch, so that one huge
// message does not pin its buffer.
const maxScratch = 256 << 10

// compressScratch holds *[]byte buffers CompressFrame compresses into; any goroutine.
var compressScratch = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}
