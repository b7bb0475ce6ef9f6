package bench

import "golang.org/x/sys/unix"

// dialsPerPass bounds the dials of one loop pass so a burst does not starve
// reads.
const dialsPerPass = 256

// DialAll dials every idle slot, at rate connections per second over the
// whole engine (rate <= 0: as fast as the loops can). Slot s is due at
// start + s/rate, so the pacing is exact and independent of loop count.
func (e *Engine) DialAll(rate float64) {
	start := e.Now()
	e.Sync(func(l *Loop) {
		l.dialing = true
		l.dialNext = 0
		l.dialStart = start
		l.dialRate = rate
	})
}

// dialDue dials the slots whose paced time (see DialAll) has come, at most
// dialsPerPass of them. Loop goroutine only.
func (l *Loop) dialDue() {
	if !l.dialing {
		return
	}
	nloops := len(l.e.loops)
	for budget := dialsPerPass; l.dialNext < len(l.conns) && budget > 0; budget-- {
		if l.dialRate > 0 {
			s := l.dialNext*nloops + l.idx
			if l.dialStart+int64(float64(s)*1e9/l.dialRate) > l.now {
				break
			}
		}
		c := &l.conns[l.dialNext]
		l.dialNext++
		c.Dial()
	}
	if l.dialNext >= len(l.conns) {
		l.dialing = false
	}
}

// Dial starts a connection attempt if the slot is idle: socket, optional
// bind to the slot's source address, non-blocking connect, then the opening
// handshake once connected. Failures are reported through OnClose.
func (c *Conn) Dial() {
	if c.state != stIdle {
		return
	}
	l := c.loop
	c.gen++
	c.dialAt = l.e.Now()
	c.state = stConnecting
	l.stats.dials.Add(1)
	var src *[4]byte
	if l.e.cfg.Src.Len() > 0 {
		a := l.e.cfg.Src.At(c.ID())
		src = &a
	}
	fd, err := newSocket(src)
	if err != nil {
		c.shut(errnoReason(err), 0, err)
		return
	}
	c.fd = int32(fd)
	ev := unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET,
		Fd:     c.local,
		Pad:    int32(c.gen),
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		c.shut(errnoReason(err), 0, err)
		return
	}
	l.timers.push(timer{at: c.dialAt + int64(l.e.cfg.HandshakeTimeout), local: c.local, gen: c.gen, kind: timerHandshake})
	done, err := startConnect(fd, &l.dst)
	if err != nil {
		c.shut(errnoReason(err), 0, err)
		return
	}
	if done {
		c.connected()
	}
}
