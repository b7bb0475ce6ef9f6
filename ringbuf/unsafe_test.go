package ringbuf

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

func unsafeBytes(v unix.Iovec) []byte { return unsafe.Slice(v.Base, int(v.Len)) }
