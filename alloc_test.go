//go:build !race

package wsgate

import (
	"bytes"
	"testing"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// TestEchoSteadyStateNoAllocs: once pools are warm, an echoed message costs zero allocations in
// the whole process (server loop included; the client uses blocking syscalls on preallocated
// buffers so it allocates nothing either).
func TestEchoSteadyStateNoAllocs(t *testing.T) {
	s := startServer(t, Config{Handler: Echo{}, Loops: 1})
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	sa := &unix.SockaddrInet4{Port: s.Addr().Port}
	copy(sa.Addr[:], s.Addr().IP.To4())
	if err := unix.Connect(fd, sa); err != nil {
		t.Fatal(err)
	}
	readN := func(buf []byte) {
		for got := 0; got < len(buf); {
			n, err := unix.Read(fd, buf[got:])
			if err != nil || n == 0 {
				t.Fatalf("read: %d %v", n, err)
			}
			got += n
		}
	}
	if _, err := unix.Write(fd, []byte(upgradeRequest("/"))); err != nil {
		t.Fatal(err)
	}
	resp := make([]byte, 4096)
	n, _ := unix.Read(fd, resp)
	if !bytes.HasPrefix(resp[:n], []byte("HTTP/1.1 101")) {
		t.Fatalf("handshake: %q", resp[:n])
	}
	for _, size := range []int{64, 4000, 100000} {
		payload := bytes.Repeat([]byte("x"), size)
		req := clientFrame(ws.OpBinary, true, payload)
		echo := make([]byte, len(payload)+10)
		hl := 2
		if size >= 126 {
			hl = 4
		}
		if size >= 1<<16 {
			hl = 10
		}
		echo = echo[:hl+size]
		roundTrip := func() {
			if _, err := unix.Write(fd, req); err != nil {
				t.Fatal(err)
			}
			readN(echo)
		}
		for i := 0; i < 50; i++ { // warm the pools
			roundTrip()
		}
		if !bytes.Equal(echo[hl:], payload) {
			t.Fatal("echo differs")
		}
		if a := testing.AllocsPerRun(200, roundTrip); a != 0 {
			t.Errorf("%d-byte echo: %v allocations per message, want 0", size, a)
		}
	}
}
