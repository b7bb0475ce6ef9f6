package conn

import (
	"testing"
	"unsafe"
)

// TestConnSize guards memory per idle connection: the Conn struct is most of it (one object: its
// timer needs no closure, TestNewConnIsOneObject), and 176 bytes is a Go size class. Growing it past 176 costs 16 bytes per
// connection, 16 MB per million; do that on purpose, and update docs/benchmarks.md.
func TestConnSize(t *testing.T) {
	if n := unsafe.Sizeof(Conn{}); n > 176 {
		t.Fatalf("Conn is %d bytes, more than the 176-byte size class", n)
	}
}
