package netpoll

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Every system call that moves bytes on a loop's descriptors or ends a socket's life is in this
// file, so that the rest of the module (conn, ringbuf) makes none.
//
// read, writev and accept4 are raw system calls. The loops' sockets never block, so there is no
// need to tell the Go scheduler about the calls (unix.Read and unix.Writev do, through
// entersyscall/exitsyscall): with a loop thread in such calls most of the time, the runtime's
// monitor keeps waking up to hand the loop's P to another thread and back, which cost more CPU
// than the reads themselves in a profiled echo run. Each retries EINTR in a loop of its own: a
// shared helper would take the buffer's address as a plain uintptr, which keeps neither the
// buffer alive nor a stack buffer in place (unsafe.Pointer rule 4 holds only in the argument
// list of the system call itself).

// IOVMax is the most iovecs one writev(2) takes on Linux (UIO_MAXIOV, see writev(2)).
const IOVMax = 1024

// Read is read(2) on a non-blocking socket. It touches no loop state: the caller is whoever owns
// fd (for a connection socket, its loop's goroutine).
func Read(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		switch e {
		case 0:
			return int(r), nil
		case unix.EINTR:
			continue
		default:
			return -1, e
		}
	}
}

// Writev writes the first IOVMax of bufs (at most) to the non-blocking socket fd with one
// writev(2) and returns how many bytes the socket took; err is EAGAIN when it took none because
// it is full, or another errno. The caller consumes the n bytes written from wherever bufs came
// from. Loop goroutine only: the iovecs are built in the loop's own array, so a call allocates
// nothing; bufs is not retained.
func (l *Loop) Writev(fd int, bufs [][]byte) (int, error) {
	iov := l.iov[:0]
	for _, b := range bufs[:min(len(bufs), IOVMax)] {
		v := unix.Iovec{Base: unsafe.SliceData(b)}
		v.SetLen(len(b))
		iov = append(iov, v)
	}
	if len(iov) == 0 {
		return 0, nil
	}
	n, err := writev(fd, iov)
	clear(iov) // the array must not keep the caller's buffers alive until the next call
	return n, err
}

// writev is writev(2) without the per-call allocation of unix.Writev.
func writev(fd int, iov []unix.Iovec) (int, error) {
	for {
		r, _, e := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(iov))), uintptr(len(iov)))
		switch e {
		case 0:
			return int(r), nil
		case unix.EINTR:
			continue
		default:
			return 0, e
		}
	}
}

// accept4 is accept4(2) with no peer address (the address is looked up only when someone asks
// for it, see PeerAddr), so accepting allocates nothing. The new socket is non-blocking and
// close-on-exec.
func accept4(lfd int) (int, error) {
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(lfd), 0, 0, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
		switch e {
		case 0:
			return int(r), nil
		case unix.EINTR:
			continue
		default:
			return -1, e
		}
	}
}

// ShutdownWrite shuts down the sending side of a socket (shutdown(2) with SHUT_WR): the peer
// reads EOF once it has read what was written before, and the socket can still be read.
func ShutdownWrite(fd int) error {
	return unix.Shutdown(fd, unix.SHUT_WR)
}

// PeerAddr returns the address of a TCP socket's peer (getpeername(2)); ok is false for other
// sockets or when the call fails. It allocates, so it is for logs, not for the data path.
func PeerAddr(fd int) (addr netip.AddrPort, ok bool) {
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return netip.AddrPort{}, false
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)), true
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)), true
	}
	return netip.AddrPort{}, false
}

// signalEventfd adds one to an eventfd's counter (eventfd(2)), which wakes the loop sleeping in
// epoll_wait. EAGAIN (the counter is at its maximum) means the loop will wake anyway.
func signalEventfd(efd int) {
	one := uint64(1)
	for {
		_, err := unix.Write(efd, unsafe.Slice((*byte)(unsafe.Pointer(&one)), 8))
		if err != unix.EINTR {
			return
		}
	}
}

// drainEventfd resets an eventfd's counter to zero by reading it.
func drainEventfd(efd int) {
	var buf [8]byte
	for {
		_, err := unix.Read(efd, buf[:])
		if err != unix.EINTR {
			return
		}
	}
}
