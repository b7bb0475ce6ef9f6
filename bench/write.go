package bench

import (
	"encoding/binary"
	"errors"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// maxWriteBack is how many unsent bytes one connection may queue before it
// is closed with ReasonNoBuffers.
const maxWriteBack = 64 << 20

// maskKey returns a fresh masking key (RFC 6455 5.3). The key must be
// unpredictable to intermediaries; a per-loop PCG seeded from crypto/rand
// serves that purpose for a load driver at a fraction of crypto/rand's cost.
func (l *Loop) maskKey() (k [4]byte) {
	binary.LittleEndian.PutUint32(k[:], l.rng.Uint32())
	return k
}

// Send writes payload as one final, masked message with opcode op. It
// returns false when the connection is not open. payload may alias the
// loop's read buffer: it is copied into the frame before masking.
func (c *Conn) Send(op ws.OpCode, payload []byte) bool {
	if c.state != stOpen {
		return false
	}
	c.sendFrame(op, payload)
	return c.state != stIdle
}

// sendFrame writes one final, masked frame, data or control. Unlike Send it
// does not require an open connection; write drops it once the slot is idle.
func (c *Conn) sendFrame(op ws.OpCode, payload []byte) {
	l := c.loop
	l.wbuf = appendFrame(l.wbuf[:0], op, payload, l.maskKey())
	c.write(l.wbuf)
}

// write sends p now as far as the socket takes it and queues the rest.
// p is not retained.
func (c *Conn) write(p []byte) {
	if c.state == stIdle {
		return
	}
	if c.wq != nil {
		if len(c.wq)-c.wpos+len(p) > maxWriteBack {
			c.shut(ReasonNoBuffers, 0, errors.New("write backlog over limit"))
			return
		}
		c.wq = append(c.wq, p...)
		return
	}
	for len(p) > 0 {
		n, err := ignoringEINTR(unix.Write, int(c.fd), p)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			c.shut(errnoReason(err), 0, err)
			return
		}
		p = p[n:]
	}
	if len(p) > 0 {
		c.wq = append(c.loop.getBuf(len(p)), p...)
		c.wpos = 0
	}
}

// flush writes queued output after EPOLLOUT.
func (c *Conn) flush() {
	for c.wpos < len(c.wq) {
		n, err := ignoringEINTR(unix.Write, int(c.fd), c.wq[c.wpos:])
		if err != nil {
			if !errors.Is(err, unix.EAGAIN) {
				c.shut(errnoReason(err), 0, err)
			}
			return
		}
		c.wpos += n
	}
	c.loop.putBuf(c.wq)
	c.wq, c.wpos = nil, 0
}
