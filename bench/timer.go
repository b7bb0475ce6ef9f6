package bench

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
