package wsgate

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/pubsub"
)

// SSE against WebSocket, side by side in one run (docs/benchmarks.md): the Go heap an idle
// subscriber keeps alive, and the cost of a fan-out per delivery. Both transports run the same
// pub/sub gateway; only how the clients connect differs.

// transports are the two ways a subscriber of channel ch connects: the request to write on a
// fresh socket, what to send after the response head (a WebSocket's subscribe), and what the
// answer must contain.
var benchTransports = []struct {
	name      string
	request   func(ch string) string
	subscribe func(ch string) []byte
}{
	{"websocket", func(string) string { return upgradeRequest("/") },
		func(ch string) []byte {
			return clientFrame(ws.OpText, true, []byte(`{"op":"subscribe","channel":"`+ch+`"}`))
		}},
	{"sse", func(ch string) string { return sseRequest("/sse?channel=" + ch) }, nil},
}

// benchSubscribe opens a blocking raw socket subscribed to ch over transport k and returns it
// once the subscription is answered.
func benchSubscribe(b *testing.B, s *Server, k int, ch string, buf []byte) int {
	b.Helper()
	tr := benchTransports[k]
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	sa := &unix.SockaddrInet4{Port: s.Addr().Port}
	copy(sa.Addr[:], s.Addr().IP.To4())
	if err := unix.Connect(fd, sa); err != nil {
		b.Fatal(err)
	}
	readUntil := func(want string) {
		n := 0
		for !bytes.Contains(buf[:n], []byte(want)) {
			k, err := unix.Read(fd, buf[n:])
			if k <= 0 {
				b.Fatalf("%s: read %d %v after %q", tr.name, k, err, buf[:n])
			}
			n += k
		}
	}
	if _, err := unix.Write(fd, []byte(tr.request(ch))); err != nil {
		b.Fatal(err)
	}
	if tr.subscribe != nil {
		readUntil("\r\n\r\n")
		if _, err := unix.Write(fd, tr.subscribe(ch)); err != nil {
			b.Fatal(err)
		}
	}
	readUntil(`"subscribed"`)
	return fd
}

func benchPubSub(b *testing.B) (*Server, *pubsub.PubSub) {
	b.Helper()
	app, err := pubsub.New(pubsub.Config{})
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(Config{Handler: app, Addr: "127.0.0.1:0", Loops: 2,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	return s, app
}

// BenchmarkTransportIdleMemory: the Go heap that idle subscribers (one channel each, 50
// channels) keep alive in a fresh gateway, per connection, after a garbage collection: the
// Conn, the gateway's client state and subscription, and for SSE the stream's state. One op
// starts a server and opens conns connections.
func BenchmarkTransportIdleMemory(b *testing.B) {
	const conns = 2500 // 5000 descriptors in this process
	for k, tr := range benchTransports {
		b.Run(tr.name, func(b *testing.B) {
			fds := make([]int, conns)
			buf := make([]byte, 4096)
			var heap, objects float64
			for range b.N {
				b.StopTimer()
				s, _ := benchPubSub(b)
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				b.StartTimer()
				for i := range fds {
					fds[i] = benchSubscribe(b, s, k, "idle"+strconv.Itoa(i%50), buf)
				}
				b.StopTimer()
				runtime.GC()
				runtime.ReadMemStats(&after)
				heap += float64(after.HeapAlloc) - float64(before.HeapAlloc)
				objects += float64(after.HeapObjects) - float64(before.HeapObjects)
				for _, fd := range fds {
					unix.Close(fd)
				}
				s.Close()
				b.StartTimer()
			}
			b.ReportMetric(heap/float64(b.N*conns), "heap-B/conn")
			b.ReportMetric(objects/float64(b.N*conns), "heap-objects/conn")
		})
	}
}

// BenchmarkTransportFanout: one op publishes a small message to subs subscribers of one
// channel (over two loops) and waits until the loops have queued it; the clients read
// everything on goroutines of their own. Reported per delivery: the wall time of the fan-out
// (ns/delivery), the CPU time of the server's loop threads (user+sys, getrusage(RUSAGE_THREAD)
// on each loop: queueing, writev, everything the server does per delivery; the clients' reads
// are not in it) and the bytes each client receives.
func BenchmarkTransportFanout(b *testing.B) {
	const subs = 500
	for k, tr := range benchTransports {
		b.Run(tr.name, func(b *testing.B) {
			s, app := benchPubSub(b)
			defer s.Close()
			buf := make([]byte, 4096)
			var wg sync.WaitGroup
			var mu sync.Mutex
			var received int64
			fds := make([]int, subs)
			for i := range fds {
				fds[i] = benchSubscribe(b, s, k, "hot", buf)
			}
			for _, fd := range fds {
				wg.Add(1)
				go func(fd int) {
					defer wg.Done()
					rb := make([]byte, 32<<10)
					var n int64
					for {
						k, _ := unix.Read(fd, rb)
						if k <= 0 {
							break
						}
						n += int64(k)
					}
					mu.Lock()
					received += n
					mu.Unlock()
				}(fd)
			}
			data := []byte(`{"price":42.5,"sym":"EURUSD"}`)
			publish := func() {
				out, err := app.Publish(context.Background(), "hot", "", data, true)
				if err != nil || out.Delivered != subs {
					b.Fatalf("publish: %+v %v", out, err)
				}
			}
			publish()
			cpu0 := s.loopCPU()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				publish()
			}
			b.StopTimer()
			// Let the loops write what is queued before their CPU is read.
			for deadline := time.Now().Add(20 * time.Second); s.queuedBytes() > 0 && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			cpu := s.loopCPU() - cpu0
			deliveries := float64(b.N) * subs
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
			b.ReportMetric(float64(cpu.Nanoseconds())/deliveries, "loop-cpu-ns/delivery")
			for _, fd := range fds {
				unix.Shutdown(fd, unix.SHUT_RDWR)
			}
			wg.Wait()
			for _, fd := range fds {
				unix.Close(fd)
			}
			b.ReportMetric(float64(received)/(deliveries+subs), "B/delivery")
		})
	}
}

// loopCPU is the CPU time the loop threads have used (each loop goroutine is locked to its
// thread, so getrusage(RUSAGE_THREAD) run as a task on it reads that loop's).
func (s *Server) loopCPU() time.Duration {
	var total time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, e := range s.engines {
		wg.Add(1)
		e.Post(func() {
			defer wg.Done()
			var ru unix.Rusage
			unix.Getrusage(unix.RUSAGE_THREAD, &ru)
			mu.Lock()
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			mu.Unlock()
		})
	}
	wg.Wait()
	return total
}

// queuedBytes is the output the loops hold for their connections.
func (s *Server) queuedBytes() int64 {
	var t int64
	for _, e := range s.engines {
		t += e.Stats.QueuedBytes.Load()
	}
	return t
}
