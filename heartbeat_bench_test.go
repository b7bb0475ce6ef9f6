package wsgate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/conn"
)

// Benchmarks of the data path as a whole: the heartbeat cost per ping on the loop threads with
// 15k idle connections, the echo round trip over loopback, and the heap per idle connection.
// They measure a whole Server (its loops, listeners, engines and the Echo application, started
// with New and Start) as cmd/wsgate runs it, which is why they live here and not in conn/; the
// behaviour of heartbeats and deadlines is tested in conn/.
//
// 15k connections need 15k client sockets and 15k server sockets, more than one process may
// open here (20000 files), so the clients live in a child process: this test binary started
// again with hbClientsEnv set, which turns it into a plain epoll client (see init below) before
// any test or benchmark runs.

// hbClientsEnv, when set to "ADDR CONNS pong|silent", makes the test binary a client process.
const hbClientsEnv = "WSGATE_HEARTBEAT_CLIENTS"

func init() {
	if spec := os.Getenv(hbClientsEnv); spec != "" {
		if err := hbClientsMain(spec, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "heartbeat clients:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// hbClientsLifetime bounds the child's life whatever happens to its parent.
const hbClientsLifetime = 10 * time.Minute

// hbClientsMain opens the connections, completes every handshake, prints "ready", then answers
// each ping with a pong (or, silent, only reads) on one epoll loop, until stdin reaches EOF (the
// parent closed it or died) or hbClientsLifetime passes.
func hbClientsMain(spec string, stdin io.Reader, stdout io.Writer) error {
	f := strings.Fields(spec)
	if len(f) != 3 {
		return fmt.Errorf("spec %q: want ADDR CONNS pong|silent", spec)
	}
	host, portStr, ok := strings.Cut(f[0], ":")
	port, err1 := strconv.Atoi(portStr)
	n, err2 := strconv.Atoi(f[1])
	if !ok || err1 != nil || err2 != nil || host != "127.0.0.1" {
		return fmt.Errorf("spec %q: want 127.0.0.1:PORT and a count", spec)
	}
	answer := f[2] == "pong"
	go func() {
		io.Copy(io.Discard, stdin)
		os.Exit(0)
	}()
	time.AfterFunc(hbClientsLifetime, func() { os.Exit(2) })

	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	req := []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n")
	buf := make([]byte, 4096)
	sa := &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
	for i := 0; i < n; i++ {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("socket %d: %w", i, err)
		}
		if err := unix.Connect(fd, sa); err != nil {
			return fmt.Errorf("connect %d: %w", i, err)
		}
		if _, err := unix.Write(fd, req); err != nil {
			return fmt.Errorf("write %d: %w", i, err)
		}
		head := 0
		for !bytes.Contains(buf[:head], []byte("\r\n\r\n")) {
			k, err := unix.Read(fd, buf[head:])
			if k <= 0 {
				return fmt.Errorf("handshake %d: read %d, %v", i, k, err)
			}
			head += k
		}
		if !bytes.HasPrefix(buf, []byte("HTTP/1.1 101 ")) {
			return fmt.Errorf("handshake %d: %q", i, buf[:head])
		}
		// Bytes after the head (a ping, if this process was slow to read the response) are
		// dropped: with the benchmark's PongMisses an unanswered ping costs nothing.
		if err := unix.SetNonblock(fd, true); err != nil {
			return err
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout, "ready")

	// Server frames here are pings (0x89 0x00) and, at the end, close frames. A pong is
	// masked as RFC 6455 5.3 requires of clients; the key is arbitrary.
	pong := []byte{0x8a, 0x80, 0x37, 0xfa, 0x21, 0x3d}
	events := make([]unix.EpollEvent, 256)
	for {
		k, err := unix.EpollWait(epfd, events, -1)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
		for _, ev := range events[:max(k, 0)] {
			fd := int(ev.Fd)
			r, err := unix.Read(fd, buf)
			if r <= 0 {
				if err != unix.EAGAIN {
					unix.Close(fd) // the server closed it
				}
				continue
			}
			if !answer {
				continue
			}
			for p := buf[:r]; len(p) >= 2; {
				size := 2 + int(p[1]&0x7f)
				if p[0]&0x0f == byte(ws.OpPing) {
					unix.Write(fd, pong)
				}
				p = p[min(size, len(p)):]
			}
		}
	}
}

// hbClients is the parent's handle on a client process.
type hbClients struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func startHBClients(b *testing.B, s *Server, n int, mode string) *hbClients {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %s", hbClientsEnv, s.Addr(), n, mode))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := &hbClients{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		c.stop()
		b.Fatalf("client process: %q, %v", line, err)
	}
	return c
}

// stop closes the child's stdin, which makes it exit, and reaps it; it is killed (by its PID,
// through cmd.Process) only if it does not exit.
func (c *hbClients) stop() {
	c.stdin.Close()
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// hbSum adds up one counter over every engine.
func hbSum(s *Server, f func(st *conn.Stats) uint64) uint64 {
	var n uint64
	for _, e := range s.Engines() {
		n += f(&e.Stats)
	}
	return n
}

func hbPingsSent(s *Server) uint64 {
	return hbSum(s, func(st *conn.Stats) uint64 { return st.PingsSent.Load() })
}

func hbFramesIn(s *Server) uint64 {
	return hbSum(s, func(st *conn.Stats) uint64 { return st.FramesIn.Load() })
}

// hbLoopCPU returns the user and system CPU time consumed so far by the loops' threads: each
// loop goroutine is locked to its thread, so getrusage(RUSAGE_THREAD) run as a task on the loop
// measures exactly the loop (getrusage(2)).
func hbLoopCPU(s *Server) (user, sys time.Duration) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, e := range s.Engines() {
		wg.Add(1)
		e.Post(func() {
			defer wg.Done()
			var ru unix.Rusage
			if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
				panic(err)
			}
			mu.Lock()
			user += time.Duration(ru.Utime.Nano())
			sys += time.Duration(ru.Stime.Nano())
			mu.Unlock()
		})
	}
	wg.Wait()
	return user, sys
}

// BenchmarkHeartbeatCPU: 15000 idle connections pinged every second. One op is one
// ping sent; loop-ns/ping is the CPU time of the loop threads (every thread that touches a
// connection) per ping: timer firing, ping framing, the writev, and for "pong" the epoll event,
// read and parse of the answer. ns/op is wall time, so about 1 s / 15000. The clients run in a
// child process; both share this machine's CPUs with the loops, which does not change the
// loops' own CPU time. Run with -benchtime=60000x or more for steadier numbers (4 rounds).
func BenchmarkHeartbeatCPU(b *testing.B) {
	const conns = 15000
	for _, mode := range []string{"pong", "silent"} {
		func() {
			s, err := New(Config{Handler: Echo{}, Addr: "127.0.0.1:0", Loops: 2,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Conn: conn.Config{
					PingInterval: time.Second,
					PongMisses:   1000, // silent clients are kept: only the send side is measured
					MaxConns:     conns + 100,
				}})
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Start(); err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			clients := startHBClients(b, s, conns, mode)
			defer clients.stop()
			// Every connection pings at its own phase within its first second; after two
			// seconds the ping rate is steady.
			time.Sleep(2 * time.Second)
			b.Run(fmt.Sprintf("conns=%d/%s", conns, mode), func(b *testing.B) {
				if got := s.Connections(); got != conns {
					b.Fatalf("%d connections held, want %d", got, conns)
				}
				user0, sys0 := hbLoopCPU(s)
				pings0, in0 := hbPingsSent(s), hbFramesIn(s)
				start := time.Now()
				b.ReportAllocs()
				b.ResetTimer()
				for hbPingsSent(s)-pings0 < uint64(b.N) {
					time.Sleep(2 * time.Millisecond)
				}
				b.StopTimer()
				wall := time.Since(start)
				user1, sys1 := hbLoopCPU(s)
				user, sys := user1-user0, sys1-sys0
				pings, in := float64(hbPingsSent(s)-pings0), float64(hbFramesIn(s)-in0)
				if got := s.Connections(); got != conns {
					b.Fatalf("%d connections held at the end, want %d", got, conns)
				}
				b.ReportMetric(float64((user+sys).Nanoseconds())/pings, "loop-ns/ping")
				b.ReportMetric(float64(user.Nanoseconds())/pings, "loop-user-ns/ping")
				b.ReportMetric(float64(sys.Nanoseconds())/pings, "loop-sys-ns/ping")
				b.ReportMetric(in/pings, "frames-in/ping")
				b.ReportMetric(100*(user+sys).Seconds()/wall.Seconds(), "loop-cpu-%")
			})
		}()
	}
}

// BenchmarkEcho: one client, one message at a time, over loopback TCP to a one-loop server:
// ns/op is the round trip (client write, loop read, parse, unmask, UTF-8 check for text, handler
// copy into the queue, writev, client read). The client uses blocking syscalls on preallocated
// buffers, so allocs/op is the server's.
func BenchmarkEcho(b *testing.B) {
	s := startServer(b, Config{Handler: Echo{}, Loops: 1})
	for _, tc := range []struct {
		op   ws.OpCode
		size int
	}{{ws.OpText, 32}, {ws.OpBinary, 32}, {ws.OpBinary, 1024}, {ws.OpBinary, 16 << 10}, {ws.OpBinary, 256 << 10}} {
		name := "binary"
		if tc.op == ws.OpText {
			name = "text"
		}
		b.Run(fmt.Sprintf("%s/size=%d", name, tc.size), func(b *testing.B) {
			fd := hbDialBlocking(b, s)
			payload := bytes.Repeat([]byte("a"), tc.size)
			req := clientFrame(tc.op, true, payload)
			hl := 2
			if tc.size >= 126 {
				hl = 4
			}
			if tc.size >= 1<<16 {
				hl = 10
			}
			echo := make([]byte, hl+tc.size)
			roundTrip := func() {
				for w := req; len(w) > 0; {
					n, err := unix.Write(fd, w)
					if err != nil {
						b.Fatal(err)
					}
					w = w[n:]
				}
				for got := 0; got < len(echo); {
					n, err := unix.Read(fd, echo[got:])
					if n <= 0 {
						b.Fatalf("read: %d %v", n, err)
					}
					got += n
				}
			}
			roundTrip()
			if !bytes.Equal(echo[hl:], payload) {
				b.Fatal("echo differs")
			}
			b.SetBytes(int64(tc.size))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				roundTrip()
			}
		})
	}
}

// hbDialBlocking connects a blocking client socket and completes the handshake.
func hbDialBlocking(b *testing.B, s *Server) int {
	b.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unix.Close(fd) })
	sa := &unix.SockaddrInet4{Port: s.Addr().Port}
	copy(sa.Addr[:], s.Addr().IP.To4())
	if err := unix.Connect(fd, sa); err != nil {
		b.Fatal(err)
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if _, err := unix.Write(fd, []byte(upgradeRequest("/"))); err != nil {
		b.Fatal(err)
	}
	resp := make([]byte, 1024)
	n := 0
	for !bytes.Contains(resp[:n], []byte("\r\n\r\n")) {
		k, err := unix.Read(fd, resp[n:])
		if k <= 0 {
			b.Fatalf("handshake: %d %v", k, err)
		}
		n += k
	}
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 101 ")) {
		b.Fatalf("handshake: %q", resp[:n])
	}
	return fd
}

// BenchmarkIdleConnMemory: the Go heap that idle, open connections keep alive in a fresh server,
// per connection, after a garbage collection (runtime.MemStats.HeapAlloc and HeapObjects around
// opening them). This is the part of the RSS per connection that wsgate's own data structures
// cost; the rest of the RSS (see docs/benchmarks.md) is the garbage collector's headroom and the
// runtime's. The clients are raw sockets whose only Go memory is preallocated, so that the
// difference is the server's. One op starts a server and opens conns connections.
func BenchmarkIdleConnMemory(b *testing.B) {
	const conns = 2500 // 5000 descriptors in this process
	fds := make([]int, conns)
	req := []byte(upgradeRequest("/"))
	resp := make([]byte, 512)
	var heap, objects float64
	b.ReportAllocs()
	for range b.N {
		b.StopTimer()
		s, err := New(Config{Handler: Echo{}, Addr: "127.0.0.1:0", Loops: 2,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Start(); err != nil {
			b.Fatal(err)
		}
		sa := &unix.SockaddrInet4{Port: s.Addr().Port}
		copy(sa.Addr[:], s.Addr().IP.To4())
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		for i := range fds {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			fds[i] = fd
			if err := unix.Connect(fd, sa); err != nil {
				b.Fatal(err)
			}
			if _, err := unix.Write(fd, req); err != nil {
				b.Fatal(err)
			}
			if n, err := unix.Read(fd, resp); n < 12 || string(resp[:12]) != "HTTP/1.1 101" {
				b.Fatalf("handshake %d: %q %v", i, resp[:max(n, 0)], err)
			}
		}
		b.StopTimer()
		if got := s.Connections(); got != conns {
			b.Fatalf("%d connections held, want %d", got, conns)
		}
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
	b.ReportMetric(float64(unsafe.Sizeof(conn.Conn{})), "Conn-struct-B")
}
