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
	s := startServer(t, Config{Mode: ModeEcho, Loops: 1})
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

// TestFanoutNoAllocsPerDelivery: queueing a published frame on a loop's subscribers allocates
// nothing per delivered message (measured on the loop goroutine, where fan-out runs).
func TestFanoutNoAllocsPerDelivery(t *testing.T) {
	s := pubsubServer(t, Config{Loops: 1})
	const subs = 50
	var cs []*sub
	for i := 0; i < subs; i++ {
		c := dialSub(t, s)
		c.subscribe("hot")
		cs = append(cs, c)
	}
	// Keep every subscriber drained so that no queue nears its cap.
	stop := make(chan struct{})
	defer close(stop)
	for _, c := range cs {
		go func(c *sub) {
			for {
				if _, _, err := c.c.ReadMessage(); err != nil {
					return
				}
			}
		}(c)
	}
	p := s.PubSub()
	frame := encodeMessage("hot", 1<<40, "", []byte(`{"price":42}`))
	run := func() (allocs float64, delivered int) {
		done := make(chan struct{})
		s.engines[0].Post(func() {
			defer close(done)
			allocs = testing.AllocsPerRun(100, func() {
				delivered = p.subs[0].Deliver("hot", 1<<41, frame)
			})
		})
		<-done
		return
	}
	run() // warm: queues and the dirty list grow to their working size once
	allocs, delivered := run()
	if delivered != subs {
		t.Fatalf("delivered to %d subscribers, want %d", delivered, subs)
	}
	if allocs != 0 {
		t.Fatalf("%v allocations per fan-out to %d subscribers, want 0", allocs, subs)
	}
}
