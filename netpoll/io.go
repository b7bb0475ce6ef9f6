package netpoll

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Read is read(2) on a non-blocking socket as a raw system call. The loops' sockets never block,
// so there is no need to tell the Go scheduler about the call (unix.Read does, through
// entersyscall/exitsyscall): with a loop thread in such calls most of the time, the runtime's
// monitor keeps waking up to hand the loop's P to another thread and back, which cost more CPU
// than the reads themselves in a profiled echo run. EINTR is retried.
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
