package bench

import (
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The kernel floor: what one small message costs on loopback TCP with nothing but epoll and one
// system call per message and socket, the least any server of this architecture (and its load
// driver) can do. No WebSocket framing, no queues, no timers, no Go scheduler hand-offs beyond
// two goroutines locked to their threads. docs/benchmarks.md (section 13) sets the million's
// targets against these figures: a heartbeat is one exchange per connection per ping interval,
// a fan-out is one delivery per subscriber.
//
//	go test -run '^$' -bench Floor -benchtime 200000x ./bench
//
// cpu-µs/op is user plus system CPU of the whole process (both ends, including the softirq work
// that loopback does in the sender's context) per message, from getrusage(2).

// floorPairs is the number of loopback connection pairs: enough that every round is a burst of
// many sockets, as a wheel tick or a fan-out is, and far under the open-files limit.
const floorPairs = 1000

// floorNet is floorPairs connected pairs, server and client ends, each end's sockets in an epoll
// instance of its own.
type floorNet struct {
	srv, cli       []int
	srvEp, cliEp   int
	closeOnCleanup []int
}

func newFloorNet(tb testing.TB) *floorNet {
	tb.Helper()
	f := &floorNet{}
	tb.Cleanup(func() {
		for _, fd := range f.closeOnCleanup {
			unix.Close(fd)
		}
	})
	keep := func(fd int) int { f.closeOnCleanup = append(f.closeOnCleanup, fd); return fd }
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	keep(lfd)
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		tb.Fatal(err)
	}
	if err := unix.Listen(lfd, 4096); err != nil {
		tb.Fatal(err)
	}
	sa, err := unix.Getsockname(lfd)
	if err != nil {
		tb.Fatal(err)
	}
	dst := sa.(*unix.SockaddrInet4)
	if f.srvEp, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		tb.Fatal(err)
	}
	keep(f.srvEp)
	if f.cliEp, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		tb.Fatal(err)
	}
	keep(f.cliEp)
	for i := 0; i < floorPairs; i++ {
		c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			tb.Fatal(err)
		}
		keep(c)
		if err := unix.Connect(c, dst); err != nil {
			tb.Fatal(err)
		}
		s, _, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			tb.Fatal(err)
		}
		keep(s)
		if err := unix.SetNonblock(c, true); err != nil {
			tb.Fatal(err)
		}
		for _, fd := range []int{c, s} {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
				tb.Fatal(err)
			}
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(s)}
		if err := unix.EpollCtl(f.srvEp, unix.EPOLL_CTL_ADD, s, &ev); err != nil {
			tb.Fatal(err)
		}
		ev.Fd = int32(c)
		if err := unix.EpollCtl(f.cliEp, unix.EPOLL_CTL_ADD, c, &ev); err != nil {
			tb.Fatal(err)
		}
		f.srv, f.cli = append(f.srv, s), append(f.cli, c)
	}
	return f
}

// ping is a WebSocket ping frame without payload from the server; pong a masked client pong.
var (
	floorPing = []byte{0x89, 0x00}
	floorPong = []byte{0x8a, 0x80, 1, 2, 3, 4}
)

// floorDrain reads every readable socket of ep until want messages of size each have arrived
// (loopback may coalesce several into one read), answering each with reply when reply is not
// nil. The calling goroutine is locked to its thread, as a loop is.
func floorDrain(ep int, want, size int, reply []byte) error {
	events := make([]unix.EpollEvent, 256)
	buf := make([]byte, 4096)
	got, quiet := 0, 0
	for got < want {
		n, err := unix.EpollWait(ep, events, 1000)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return err
		}
		if n == 0 {
			// A guard against a hang, not a verdict: a minute without a single readiness.
			if quiet++; quiet == 60 {
				return fmt.Errorf("%d of %d messages, then nothing for a minute", got, want)
			}
			continue
		}
		quiet = 0
		for i := 0; i < n; i++ {
			fd := int(events[i].Fd)
			for {
				k, err := unix.Read(fd, buf)
				if errors.Is(err, unix.EAGAIN) {
					break
				}
				if err != nil {
					return err
				}
				if k == 0 {
					return errors.New("peer closed")
				}
				got += k / size
				if reply != nil {
					for j := 0; j < k/size; j++ {
						if _, err := unix.Write(fd, reply); err != nil {
							return err
						}
					}
				}
				if k < len(buf) {
					break
				}
			}
		}
	}
	return nil
}

func processCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runFloor sends at least msgs messages in rounds of one per server socket; with exchange, the
// client answers each with a pong that the server reads before the next round. It returns the
// process's CPU per message in µs. b, when not nil, has its timer reset at the start.
func runFloor(tb testing.TB, b *testing.B, msgs int, exchange bool) float64 {
	f := newFloorNet(tb)
	rounds := (msgs + floorPairs - 1) / floorPairs
	errc := make(chan error, 1)
	go func() { // the client end: a load driver's loop
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var reply []byte
		if exchange {
			reply = floorPong
		}
		errc <- floorDrain(f.cliEp, rounds*floorPairs, len(floorPing), reply)
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if b != nil {
		b.ResetTimer()
	}
	cpu0 := processCPU()
	for r := 0; r < rounds; r++ {
		for _, s := range f.srv {
			if _, err := unix.Write(s, floorPing); err != nil {
				tb.Fatal(err)
			}
		}
		if exchange {
			if err := floorDrain(f.srvEp, floorPairs, len(floorPong), nil); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := <-errc; err != nil {
		tb.Fatal(err)
	}
	cpu := processCPU() - cpu0
	if b != nil {
		b.StopTimer()
	}
	return float64(cpu.Nanoseconds()) / 1e3 / float64(rounds*floorPairs)
}

func benchFloor(b *testing.B, exchange bool) {
	b.ReportMetric(runFloor(b, b, b.N, exchange), "cpu-µs/op")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkFloorDelivery: one 2-byte message from the server end to the client end per op, as a
// fan-out delivers (write on one side, epoll and read on the other).
func BenchmarkFloorDelivery(b *testing.B) { benchFloor(b, false) }

// BenchmarkFloorExchange: a ping and its pong per op, as a heartbeat costs (write, read, write,
// read, with epoll on both sides).
func BenchmarkFloorExchange(b *testing.B) { benchFloor(b, true) }

// TestFloorNetworkCarriesEveryMessage checks the harness the floor figures come from: every
// message of a few rounds arrives, in both modes, so a benchmark never measures lost work.
func TestFloorNetworkCarriesEveryMessage(t *testing.T) {
	for _, exchange := range []bool{false, true} {
		if v := runFloor(t, nil, 3*floorPairs, exchange); v <= 0 {
			t.Fatalf("exchange=%v: cpu-µs/op = %v, want a measured positive figure", exchange, v)
		}
	}
}
