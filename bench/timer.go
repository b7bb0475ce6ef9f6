package bench

import "time"

// Timer kinds.
const (
	timerHandshake uint8 = iota // connect+handshake deadline
	timerClose                  // closing-handshake deadline
	timerUser                   // Conn.After
)

// timer is one pending deadline of a slot. It carries the slot generation so
// that a timer set for an earlier socket of the slot is recognised and
// dropped when it fires.
type timer struct {
	at    int64 // engine clock
	local int32
	gen   uint32
	kind  uint8
	tag   uint8
}

// timerHeap is a binary min-heap on at. It is hand-written rather than
// container/heap because that boxes every element in an interface, which
// allocates on each push.
type timerHeap []timer

// push adds t.
func (h *timerHeap) push(t timer) {
	*h = append(*h, t)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p].at <= s[i].at {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

// pop removes and returns the earliest timer; the heap must not be empty.
func (h *timerHeap) pop() timer {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(s) && s[l].at < s[m].at {
			m = l
		}
		if r < len(s) && s[r].at < s[m].at {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// After arranges for Handler.OnTimer(c, tag) to run after d, unless the slot
// is dialled again first.
func (c *Conn) After(d time.Duration, tag uint8) {
	l := c.loop
	l.timers.push(timer{at: l.e.Now() + int64(d), local: c.local, gen: c.gen, kind: timerUser, tag: tag})
}

// fireTimers runs the timers that are due, dropping those of an earlier
// socket of their slot. Loop goroutine only.
func (l *Loop) fireTimers() {
	for len(l.timers) > 0 && l.timers[0].at <= l.now {
		t := l.timers.pop()
		c := &l.conns[t.local]
		if c.gen != t.gen {
			continue
		}
		switch t.kind {
		case timerHandshake:
			if c.state == stConnecting || c.state == stHandshake {
				c.shut(ReasonHandshakeTime, 0, nil)
			}
		case timerClose:
			if c.state == stClosing {
				c.shut(ReasonCloseTimeout, 0, nil)
			}
		case timerUser:
			l.e.h.OnTimer(c, t.tag)
		}
	}
}
