package netpoll

import (
	"golang.org/x/sys/unix"
)

// Event bits passed to Handler.OnEvent (see epoll_ctl(2)).
const (
	EventRead   = unix.EPOLLIN
	EventWrite  = unix.EPOLLOUT
	EventHangup = unix.EPOLLRDHUP | unix.EPOLLHUP
	EventError  = unix.EPOLLERR
)

// connEvents is the interest set of a connection socket, registered once.
const connEvents = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET

// pack puts fd and generation into epoll's 64-bit data word: on amd64 and arm64
// unix.EpollEvent's Fd and Pad fields are its low and high 32 bits.
func pack(fd int, gen uint32) unix.EpollEvent {
	return unix.EpollEvent{Events: connEvents, Fd: int32(fd), Pad: int32(gen)}
}

// maxTableFDs caps TableSize: descriptor tables are sized up front for at most this many
// descriptors (48 MiB of address space for a loop's and its engine's tables, resident only where
// descriptors are in use); a process allowed more grows them when it gets there.
const maxTableFDs = 1 << 22

// TableSize is the length to give a table indexed by descriptor: the process's open-files limit
// (every descriptor number is below it), at least 1024 and at most maxTableFDs. Sized once, a
// table never grows by doubling: no copy, no garbage, and no spare half paid per connection. The
// slice is allocated by the Go heap from fresh pages, so the part no descriptor uses is address
// space, not memory. Any goroutine.
func TableSize() int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > maxTableFDs {
		return maxTableFDs
	}
	return max(1024, int(lim.Cur))
}

// Register adds a connection socket to the loop's epoll set and returns the generation that
// its events will carry. Loop goroutine only.
func (l *Loop) Register(fd int) error {
	if fd >= len(l.gens) { // beyond TableSize: the limit was raised since NewLoop
		n := 2 * len(l.gens)
		if n <= fd {
			n = fd + 1
		}
		g := make([]uint32, n)
		copy(g, l.gens)
		l.gens = g
	}
	l.genSeq++
	if l.genSeq == 0 { // 0 marks an unregistered fd
		l.genSeq = 1
	}
	ev := pack(fd, l.genSeq)
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return err
	}
	l.gens[fd] = l.genSeq
	return nil
}

// Close forgets fd (so any event still queued for it in this pass is dropped) and closes it;
// closing removes it from the epoll set (epoll(7): the fd is the last reference). Loop goroutine
// only.
func (l *Loop) Close(fd int) error {
	if fd < len(l.gens) {
		l.gens[fd] = 0
	}
	return unix.Close(fd)
}

// Requeue asks the loop to call OnEvent(fd, EventRead) again on its next pass, for a handler that
// stopped reading before EAGAIN to be fair to other connections. The pass after a requeue does not
// block in epoll_wait. Loop goroutine only.
func (l *Loop) Requeue(fd int) {
	l.again = append(l.again, unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd), Pad: int32(l.gens[fd])})
}

// valid reports whether an event still belongs to the fd's current registration.
func (l *Loop) valid(ev *unix.EpollEvent) bool {
	fd := int(ev.Fd)
	return fd >= 0 && fd < len(l.gens) && l.gens[fd] != 0 && l.gens[fd] == uint32(ev.Pad)
}
