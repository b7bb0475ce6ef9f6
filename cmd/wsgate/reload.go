package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate"
)

// Zero-downtime reload (SIGHUP). The running process (the old one) starts a copy of its own
// executable with the same arguments and environment, handing it the listening sockets across
// exec: every loop's SO_REUSEPORT listener and the admin listener, so that connections waiting in
// their accept queues are accepted by whichever process polls them, never refused. The child
// finds them through upgradeEnv and reports on a pipe, also inherited: "ready" once it serves,
// or "error <why>" if it cannot start. Only on "ready" does the old process stop polling its
// listeners (it does not close them: the sockets are the child's now too) and drain its
// connections with 1012; on anything else (an error, an exit, no answer within -reload-timeout)
// it kills the child if need be, logs why, and keeps serving.

// upgradeEnv names the inherited descriptors in a process started by a reload, e.g.
// "ready=3;listen=4,5;admin=6" (admin=-1: none). Its absence means a normal start.
const upgradeEnv = "WSGATE_UPGRADE_FDS"

// inherited is what a process started by a reload was handed.
type inherited struct {
	ready  int   // write end of the readiness pipe
	listen []int // the loops' listeners, in loop order
	admin  int   // the admin listener, -1 for none
}

func (h inherited) String() string {
	l := make([]string, len(h.listen))
	for i, fd := range h.listen {
		l[i] = strconv.Itoa(fd)
	}
	return fmt.Sprintf("ready=%d;listen=%s;admin=%d", h.ready, strings.Join(l, ","), h.admin)
}

// parseInherited parses upgradeEnv's value. Every descriptor must be above 2 (0-2 are stdio),
// distinct, and there must be at least one listener.
func parseInherited(s string) (inherited, error) {
	h := inherited{ready: -1, admin: -1}
	bad := func(why string) (inherited, error) {
		return inherited{}, fmt.Errorf("%s=%q: %s", upgradeEnv, s, why)
	}
	seen := map[int]bool{}
	fd := func(v string) (int, error) {
		n, err := strconv.Atoi(v)
		if err != nil || n < 3 || n > 1<<20 {
			return 0, fmt.Errorf("%q is not a descriptor above 2", v)
		}
		if seen[n] {
			return 0, fmt.Errorf("descriptor %d named twice", n)
		}
		seen[n] = true
		return n, nil
	}
	var got [3]bool
	for _, part := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return bad("want ready=N;listen=N,N...;admin=N")
		}
		var err error
		switch k {
		case "ready":
			if got[0] {
				return bad("ready given twice")
			}
			got[0] = true
			h.ready, err = fd(v)
		case "listen":
			if got[1] {
				return bad("listen given twice")
			}
			got[1] = true
			for _, f := range strings.Split(v, ",") {
				var n int
				if n, err = fd(f); err != nil {
					break
				}
				h.listen = append(h.listen, n)
			}
		case "admin":
			if got[2] {
				return bad("admin given twice")
			}
			got[2] = true
			if v != "-1" {
				h.admin, err = fd(v)
			}
		default:
			return bad("unknown key " + strconv.Quote(k))
		}
		if err != nil {
			return bad(err.Error())
		}
	}
	if !got[0] || !got[1] || !got[2] {
		return bad("want ready=N;listen=N,N...;admin=N")
	}
	return h, nil
}

// readyPipe is the child's side of a reload: it tells the old process whether the start worked.
// It records the last line written to stderr (the logger's and the flag errors' one writer), so
// that a failure is reported in the words the child logged. Main goroutine, except Write.
type readyPipe struct {
	f *os.File // the pipe; nil once reported
	w io.Writer

	mu   sync.Mutex
	last []byte // last complete line written to w
}

// Write implements io.Writer for stderr. Any goroutine.
func (p *readyPipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	if line := bytes.TrimSpace(b); len(line) > 0 {
		if i := bytes.LastIndexByte(line, '\n'); i >= 0 {
			line = line[i+1:]
		}
		p.last = append(p.last[:0], line...)
	}
	p.mu.Unlock()
	return p.w.Write(b)
}

// ready tells the old process this one serves.
func (p *readyPipe) ready() error {
	if p == nil || p.f == nil {
		return nil
	}
	_, err := p.f.WriteString("ready\n")
	p.f.Close()
	p.f = nil
	return err
}

// failed tells the old process this one could not start, with the last line it logged.
func (p *readyPipe) failed(code int) {
	if p == nil || p.f == nil {
		return
	}
	p.mu.Lock()
	why := string(p.last)
	p.mu.Unlock()
	if why == "" {
		why = "no message"
	}
	fmt.Fprintf(p.f, "error exit status %d: %s\n", code, strings.ReplaceAll(why, "\n", " "))
	p.f.Close()
	p.f = nil
}

// reloadResult is the outcome of starting a new process.
type reloadResult struct {
	pid int
	err error // nil: the new process serves
}

// startSuccessor runs a reload: it starts the executable again with args and this process's
// environment, handing it srv's listeners, and waits up to timeout for its readiness. On
// success the caller must stop accepting and drain; on error the child is gone (killed if it had
// to be) and srv is untouched. Main goroutine.
func startSuccessor(srv *wsgate.Server, args []string, timeout time.Duration, log *slog.Logger) reloadResult {
	exe, err := os.Executable()
	if err != nil {
		return reloadResult{err: fmt.Errorf("cannot find this executable: %w", err)}
	}
	loops, admin, err := srv.ListenerFDs()
	if err != nil {
		return reloadResult{err: err}
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		closeAll(loops, admin)
		return reloadResult{err: fmt.Errorf("pipe: %w", err)}
	}
	readyR := os.NewFile(uintptr(p[0]), "reload-ready") // non-blocking: SetReadDeadline works
	defer readyR.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		unix.Close(p[1])
		closeAll(loops, admin)
		return reloadResult{err: err}
	}
	// The child's descriptors: 0-2 stdio (its log goes where this one's goes), 3 the readiness
	// pipe, then the listeners, then the admin listener.
	files := []uintptr{devnull.Fd(), 1, 2, uintptr(p[1])}
	h := inherited{ready: 3, admin: -1}
	for _, fd := range loops {
		h.listen = append(h.listen, len(files))
		files = append(files, uintptr(fd))
	}
	if admin >= 0 {
		h.admin = len(files)
		files = append(files, uintptr(admin))
	}
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, upgradeEnv+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, upgradeEnv+"="+h.String())
	// syscall.ForkExec takes raw descriptors: os/exec's ExtraFiles would call File.Fd, which can
	// switch a shared socket to blocking mode under the loops that still poll it.
	pid, err := syscall.ForkExec(exe, append([]string{exe}, args...), &syscall.ProcAttr{Env: env, Files: files})
	devnull.Close()
	unix.Close(p[1])
	closeAll(loops, admin)
	if err != nil {
		return reloadResult{err: fmt.Errorf("cannot start %s: %w", exe, err)}
	}
	log.Info("reload: new process started; waiting for it to be ready", "new_pid", pid, "timeout", timeout)
	proc, _ := os.FindProcess(pid) // never fails on Unix
	exited := make(chan string, 1)
	go func() {
		st, err := proc.Wait()
		if err != nil {
			exited <- err.Error()
			return
		}
		exited <- st.String()
	}()
	readyR.SetReadDeadline(time.Now().Add(timeout))
	line, rerr := bufio.NewReader(readyR).ReadString('\n')
	line = strings.TrimSpace(line)
	switch {
	case line == "ready":
		return reloadResult{pid: pid}
	case strings.HasPrefix(line, "error "):
		<-exited
		return reloadResult{pid: pid, err: fmt.Errorf("the new process (pid %d) failed to start: %s", pid, strings.TrimPrefix(line, "error "))}
	case errors.Is(rerr, os.ErrDeadlineExceeded):
		proc.Kill()
		<-exited
		return reloadResult{pid: pid, err: fmt.Errorf("the new process (pid %d) was not ready within -reload-timeout %v; killed it", pid, timeout)}
	default: // EOF: it exited (or closed the pipe) without a word, a crash for instance
		select {
		case st := <-exited:
			return reloadResult{pid: pid, err: fmt.Errorf("the new process (pid %d) exited before it was ready (%s); its own log says why", pid, st)}
		case <-time.After(timeout):
			proc.Kill()
			<-exited
			return reloadResult{pid: pid, err: fmt.Errorf("the new process (pid %d) closed its readiness pipe without being ready; killed it", pid)}
		}
	}
}

func closeAll(fds []int, admin int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
	if admin >= 0 {
		unix.Close(admin)
	}
}

// adoptInherited turns the descriptors a reload handed this process into the server's config.
func adoptInherited(h inherited, cfg *wsgate.Config) error {
	cfg.ListenFDs = h.listen
	if h.admin >= 0 {
		if cfg.AdminAddr == "" {
			unix.Close(h.admin)
		} else {
			f := os.NewFile(uintptr(h.admin), "admin-listener")
			ln, err := net.FileListener(f) // a duplicate: f can go
			f.Close()
			if err != nil {
				return fmt.Errorf("inherited admin listener: %w", err)
			}
			cfg.AdminListener = ln
		}
	}
	return nil
}

// writePIDFile writes pid to path atomically (a temporary file renamed over it), so that a
// reader (systemd's PIDFile=) never sees a partial number.
func writePIDFile(path string, pid int) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return fmt.Errorf("-pid-file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("-pid-file: %w", err)
	}
	return nil
}

// removePIDFile removes path if it still names pid (a successor may have taken it over).
func removePIDFile(path string, pid int) {
	b, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(pid) {
		os.Remove(path)
	}
}

// sdNotify sends state to the service manager when it asked for notifications (systemd's
// Type=notify sets NOTIFY_SOCKET; see sd_notify(3)). Without NOTIFY_SOCKET it does nothing.
func sdNotify(state string) error {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}
