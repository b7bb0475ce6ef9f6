package bench

import (
	"errors"

	"golang.org/x/sys/unix"
)

// newSocket creates a non-blocking TCP socket and, when src is non-nil, binds
// it to src with port 0 after setting IP_BIND_ADDRESS_NO_PORT (ip(7)): the
// kernel then defers choosing the source port to connect(2), where it only
// has to be unique for the full 4-tuple. Without that option bind(2) would
// reserve a port for any destination and a few tens of thousands of sockets
// would exhaust ip_local_port_range regardless of the address spread.
// TCP_NODELAY is set because the driver measures per-message latency and
// writes whole frames at once.
func newSocket(src *[4]byte) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, err
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if src != nil {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1); err != nil {
			unix.Close(fd)
			return -1, err
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: *src}); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

// startConnect begins a non-blocking connect(2). done reports that the
// connection completed at once (possible on loopback); otherwise completion
// is signalled by EPOLLOUT and the outcome read from SO_ERROR.
func startConnect(fd int, dst *unix.SockaddrInet4) (done bool, err error) {
	err = unix.Connect(fd, dst)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EINPROGRESS), errors.Is(err, unix.EINTR):
		// EINTR: connect(2) says the connection is then established
		// asynchronously, exactly as for EINPROGRESS.
		return false, nil
	}
	return false, err
}

// connectResult reads the outcome of an asynchronous connect (connect(2),
// "EINPROGRESS": read SO_ERROR at level SOL_SOCKET once writable).
func connectResult(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return err
	}
	if v != 0 {
		return unix.Errno(v)
	}
	return nil
}

// ignoringEINTR calls fn (unix.Read or unix.Write) on fd and p again for as
// long as a signal interrupts it (EINTR, signal(7)), as Go's internal/poll
// does. Every other error, EAGAIN included, is the caller's to handle.
func ignoringEINTR(fn func(fd int, p []byte) (int, error), fd int, p []byte) (int, error) {
	for {
		n, err := fn(fd, p)
		if !errors.Is(err, unix.EINTR) {
			return n, err
		}
	}
}

// Failure reasons. They are stable strings because they become map keys in
// results and columns in reports.
const (
	ReasonRefused       = "refused"
	ReasonTimeout       = "timeout"
	ReasonReset         = "reset"
	ReasonBrokenPipe    = "broken_pipe"
	ReasonAddrNotAvail  = "addr_not_available"
	ReasonAddrInUse     = "addr_in_use"
	ReasonTooManyFiles  = "too_many_open_files"
	ReasonUnreachable   = "unreachable"
	ReasonNoBuffers     = "no_buffer_space"
	ReasonOtherErrno    = "socket_error"
	ReasonHandshakeTime = "handshake_timeout"
	ReasonHTTPStatus    = "http_status"
	ReasonBadHandshake  = "bad_handshake"
	ReasonEOFHandshake  = "eof_in_handshake"
	ReasonEOF           = "eof"
	ReasonProtocol      = "protocol_error"
	ReasonServerClose   = "server_close"
	ReasonClosed        = "closed"
	ReasonCloseTimeout  = "close_timeout"
	ReasonAborted       = "aborted"
)

// errnoReason classifies a socket error.
func errnoReason(err error) string {
	var en unix.Errno
	if !errors.As(err, &en) {
		return ReasonOtherErrno
	}
	switch en {
	case unix.ECONNREFUSED:
		return ReasonRefused
	case unix.ETIMEDOUT:
		return ReasonTimeout
	case unix.ECONNRESET, unix.ECONNABORTED:
		return ReasonReset
	case unix.EPIPE:
		return ReasonBrokenPipe
	case unix.EADDRNOTAVAIL:
		return ReasonAddrNotAvail
	case unix.EADDRINUSE:
		return ReasonAddrInUse
	case unix.EMFILE, unix.ENFILE:
		return ReasonTooManyFiles
	case unix.ENETUNREACH, unix.EHOSTUNREACH:
		return ReasonUnreachable
	case unix.ENOBUFS, unix.ENOMEM:
		return ReasonNoBuffers
	}
	return ReasonOtherErrno
}
