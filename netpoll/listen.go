package netpoll

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"golang.org/x/sys/unix"
)

// Listen opens n non-blocking TCP listening sockets on addr (host:port), all bound with
// SO_REUSEPORT so that the kernel spreads incoming connections across them (socket(7)). When the
// port is 0, the first socket picks a port and the others bind the same one. TCP_NODELAY is set
// on the listeners, which accepted sockets inherit on Linux (tcp(7)), sparing a setsockopt per
// connection. backlog <= 0 means SOMAXCONN as the kernel clamps it (net.core.somaxconn).
// On error every socket opened so far is closed.
func Listen(addr string, n, backlog int) (fds []int, bound *net.TCPAddr, err error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, nil, fmt.Errorf("listen address %q: bad port", addr)
	}
	ip := net.IPv4zero
	if host != "" {
		ips, err := net.LookupIP(host)
		if err != nil || len(ips) == 0 {
			return nil, nil, fmt.Errorf("listen address %q: cannot resolve host: %v", addr, err)
		}
		ip = ips[0]
	}
	if backlog <= 0 {
		// The kernel clamps to net.core.somaxconn; asking for a large value lets a tuned host
		// use its setting (listen(2)).
		backlog = 65535
	}
	defer func() {
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
			fds = nil
		}
	}()
	for i := 0; i < n; i++ {
		fd, err := listenOne(ip, port, backlog)
		if err != nil {
			return fds, nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		fds = append(fds, fd)
		if port == 0 {
			sa, err := unix.Getsockname(fd)
			if err != nil {
				return fds, nil, fmt.Errorf("getsockname: %w", err)
			}
			switch sa := sa.(type) {
			case *unix.SockaddrInet4:
				port = sa.Port
			case *unix.SockaddrInet6:
				port = sa.Port
			}
		}
	}
	return fds, &net.TCPAddr{IP: ip, Port: port}, nil
}

func listenOne(ip net.IP, port, backlog int) (int, error) {
	var sa unix.Sockaddr
	family := unix.AF_INET
	if ip4 := ip.To4(); ip4 != nil {
		s := &unix.SockaddrInet4{Port: port}
		copy(s.Addr[:], ip4)
		sa = s
	} else {
		family = unix.AF_INET6
		s := &unix.SockaddrInet6{Port: port}
		copy(s.Addr[:], ip.To16())
		sa = s
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	for _, o := range []struct {
		level, opt int
		name       string
	}{
		{unix.SOL_SOCKET, unix.SO_REUSEADDR, "SO_REUSEADDR"},
		{unix.SOL_SOCKET, unix.SO_REUSEPORT, "SO_REUSEPORT"},
		{unix.IPPROTO_TCP, unix.TCP_NODELAY, "TCP_NODELAY"},
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, 1); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("setsockopt %s: %w", o.name, err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind: %w", err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen: %w", err)
	}
	return fd, nil
}

// Inherit takes over listening sockets another process handed down (fd passing across exec, as
// a zero-downtime restart does): it checks that each fd is a listening TCP socket, that all are
// bound to one address, and makes them non-blocking and close-on-exec, as Listen's are. The
// sockets keep their queues: connections the old process did not accept are accepted here.
// It returns the address they are bound to. The caller owns the fds (on error too).
func Inherit(fds []int) (*net.TCPAddr, error) {
	if len(fds) == 0 {
		return nil, errors.New("no listener to inherit")
	}
	var bound *net.TCPAddr
	for _, fd := range fds {
		if on, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || on == 0 {
			return nil, fmt.Errorf("inherited fd %d is not a listening socket (%v)", fd, err)
		}
		if typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_STREAM {
			return nil, fmt.Errorf("inherited fd %d is not a stream socket", fd)
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			return nil, fmt.Errorf("inherited fd %d: getsockname: %w", fd, err)
		}
		var a *net.TCPAddr
		switch sa := sa.(type) {
		case *unix.SockaddrInet4:
			a = &net.TCPAddr{IP: net.IP(append([]byte(nil), sa.Addr[:]...)), Port: sa.Port}
		case *unix.SockaddrInet6:
			a = &net.TCPAddr{IP: net.IP(append([]byte(nil), sa.Addr[:]...)), Port: sa.Port}
		default:
			return nil, fmt.Errorf("inherited fd %d is not a TCP socket", fd)
		}
		if bound == nil {
			bound = a
		} else if !bound.IP.Equal(a.IP) || bound.Port != a.Port {
			return nil, fmt.Errorf("inherited listeners are bound to different addresses (%s, %s)", bound, a)
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			return nil, fmt.Errorf("inherited fd %d: %w", fd, err)
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
			return nil, fmt.Errorf("inherited fd %d: %w", fd, err)
		}
	}
	return bound, nil
}

// SameAddr reports whether a listener bound to bound serves addr (host:port) as Listen would
// resolve it; port 0 in addr matches any port. A process that inherits listeners uses them only
// for the address it is configured with.
func SameAddr(addr string, bound *net.TCPAddr) (bool, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("listen address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return false, fmt.Errorf("listen address %q: bad port", addr)
	}
	ip := net.IPv4zero
	if host != "" {
		ips, err := net.LookupIP(host)
		if err != nil || len(ips) == 0 {
			return false, fmt.Errorf("listen address %q: cannot resolve host: %v", addr, err)
		}
		ip = ips[0]
	}
	return ip.Equal(bound.IP) && (port == 0 || port == bound.Port), nil
}
