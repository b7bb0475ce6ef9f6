package netpoll

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"
)

// socketpair returns both ends of a non-blocking stream socketpair, closed at the end of the test.
func socketpair(t testing.TB) (a, b int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

// newTestLoop returns a loop that is never run: the test goroutine stands in for its goroutine.
func newTestLoop(t testing.TB) *Loop {
	t.Helper()
	l, err := NewLoop(LoopConfig{ListenFD: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Stop(); l.Run(nil) })
	return l
}

// readAll reads what fd has buffered, up to EAGAIN.
func readAll(t testing.TB, fd int, dst []byte) []byte {
	t.Helper()
	buf := make([]byte, 64<<10)
	for {
		n, err := Read(fd, buf)
		if err == unix.EAGAIN {
			return dst
		}
		if err != nil || n == 0 {
			t.Fatalf("read: %d %v", n, err)
		}
		dst = append(dst, buf[:n]...)
	}
}

// TestWritevPartialAndFull: Writev gathers many buffers into one writev, reports a partial write
// when the socket fills up and EAGAIN (with 0 bytes) when it is full; what the caller resends
// from the returned count reaches the peer exactly once and in order.
func TestWritevPartialAndFull(t *testing.T) {
	l := newTestLoop(t)
	a, b := socketpair(t)
	if err := unix.SetsockoptInt(a, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
	var bufs [][]byte
	var want []byte
	for i := range 3000 {
		p := bytes.Repeat([]byte{byte(i)}, 1+i%300)
		bufs = append(bufs, p)
		want = append(want, p...)
	}
	var got []byte
	sawPartial, sawAgain := false, false
	for len(bufs) > 0 {
		// Two writes before reading: the second finds the socket full.
		for range 2 {
			n, err := l.Writev(a, bufs)
			switch {
			case err == unix.EAGAIN:
				if n != 0 {
					t.Fatalf("EAGAIN with %d bytes written", n)
				}
				sawAgain = true
			case err != nil:
				t.Fatal(err)
			}
			if total := totalLen(bufs[:min(len(bufs), IOVMax)]); n > 0 && n < total {
				sawPartial = true
			}
			bufs = consume(bufs, n)
		}
		got = readAll(t, b, got)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("peer got %d bytes, want %d (or the content differs)", len(got), len(want))
	}
	if !sawPartial || !sawAgain {
		t.Fatalf("partial write seen %v, EAGAIN seen %v: the test did not fill the socket", sawPartial, sawAgain)
	}
}

// TestWritevTakesAtMostIOVMax: more buffers than writev(2) accepts are written IOVMax at a time,
// not refused with EINVAL.
func TestWritevTakesAtMostIOVMax(t *testing.T) {
	l := newTestLoop(t)
	a, b := socketpair(t)
	bufs := make([][]byte, IOVMax+10)
	for i := range bufs {
		bufs[i] = []byte{byte(i)}
	}
	n, err := l.Writev(a, bufs)
	if err != nil || n != IOVMax {
		t.Fatalf("Writev of %d one-byte buffers: %d, %v; want %d", len(bufs), n, err, IOVMax)
	}
	if got := readAll(t, b, nil); len(got) != IOVMax || got[IOVMax-1] != byte((IOVMax-1)%256) {
		t.Fatalf("peer got %d bytes", len(got))
	}
	if n, err := l.Writev(a, nil); n != 0 || err != nil {
		t.Fatalf("Writev of nothing: %d, %v", n, err)
	}
}

func totalLen(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}

// consume drops the first n bytes of bufs.
func consume(bufs [][]byte, n int) [][]byte {
	for n > 0 {
		if n < len(bufs[0]) {
			bufs[0] = bufs[0][n:]
			return bufs
		}
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	return bufs
}
