package ringbuf

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// IOVMax is the most iovecs one writev(2) takes on Linux (UIO_MAXIOV, see writev(2)).
const IOVMax = 1024

// Flush writes as much of q as the socket takes with one writev(2) call and consumes what was
// written. scratch is a caller-owned iovec array (the loop keeps one, cap IOVMax) reused across
// calls so that a flush allocates nothing. It returns the bytes written; err is EAGAIN when the
// socket is full (the rest stays queued for the next EPOLLOUT), or another errno from writev.
func (q *Queue) Flush(fd int, scratch []unix.Iovec) (int, []unix.Iovec, error) {
	scratch = q.Iovecs(scratch[:0], IOVMax)
	if len(scratch) == 0 {
		return 0, scratch, nil
	}
	n, err := Writev(fd, scratch)
	if n > 0 {
		q.Advance(n)
	}
	return n, scratch, err
}

// Writev is writev(2) on a non-blocking fd without the per-call allocation of unix.Writev, as a
// raw system call: it never blocks, so the Go scheduler need not hand the caller's P away (see
// netpoll.Read). EINTR is retried.
func Writev(fd int, iov []unix.Iovec) (int, error) {
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
