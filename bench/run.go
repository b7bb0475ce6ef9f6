package bench

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Runner coordinates one run: it splits the connections over workers,
// drives their phases in lockstep, samples the server, runs the pubsub
// publisher, prints progress and aggregates the workers' results.
type Runner struct {
	Config Config
	// Log receives progress and warnings (wsbench: stderr).
	Log io.Writer
	// Live redraws one progress line in place (Log is a terminal);
	// otherwise plain lines are printed every PlainEvery.
	Live       bool
	PlainEvery time.Duration
	// WorkerCommand returns a command that runs WorkerMain on its stdin
	// and stdout: the wsbench binary with its hidden worker flag. It is
	// needed only when the run uses more than one process.
	WorkerCommand func() *exec.Cmd
	// SetupTimeout bounds the wait for all connections to settle
	// (0: derived from -conns, the dial rate and -timeout).
	SetupTimeout time.Duration

	liveDrawn bool // a live line is on screen; coordinator goroutine only
}

// worker is the coordinator's handle on one worker.
type worker struct {
	idx  int
	send func(ctlMsg) error
	stop func() // closes the command channel
	kill func()
	wait func() error
}

type workerEvent struct {
	idx    int
	msg    workerMsg
	exited bool
	err    error
}

// Run executes the configured scenario. Cancelling ctx (e.g. on SIGINT)
// ends the current phase early; the partial result is still returned.
func (r *Runner) Run(ctx context.Context) (*Result, error) {
	cfg := r.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if r.Log == nil {
		r.Log = io.Discard
	}
	if r.PlainEvery <= 0 {
		r.PlainEvery = 2 * time.Second
	}
	// Fail early on a bad URL, before any process is started.
	if _, err := resolveTarget(ctx, cfg.URL); err != nil {
		return nil, err
	}
	procs, _ := cfg.procCount()
	if procs > 1 && r.WorkerCommand == nil {
		return nil, fmt.Errorf("%d connections need %d worker processes, but no worker command is set", cfg.Conns, procs)
	}
	if procs == 1 {
		if err := checkFDs(cfg.Conns); err != nil {
			return nil, err
		}
	}
	loops := cfg.Loops
	if loops <= 0 {
		loops = defaultLoops(procs)
	}
	runID := newRunID()
	res := &Result{
		Scenario: cfg.Scenario, Label: cfg.Label, URL: cfg.URL, Start: time.Now().UTC(),
		Procs: procs, Conns: cfg.Conns, Config: cfg,
	}
	warn := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		res.Warnings = append(res.Warnings, msg)
		r.clearLive()
		fmt.Fprintln(r.Log, "wsbench: warning:", msg)
	}
	if src, _ := ParseSrcRange(cfg.Src); src.Len() == 0 {
		if lo, hi, err := portRange(); err == nil && cfg.Conns > (hi-lo+1)*9/10 {
			warn("%d connections from one source address may exhaust ip_local_port_range (%d-%d); use -src", cfg.Conns, lo, hi)
		}
	}

	var srv *ServerStats
	sample := func(dst *ProcSample) {
		if srv == nil {
			return
		}
		s, err := SampleProc(srv.PID)
		if err != nil {
			warn("sampling server pid %d: %v", srv.PID, err)
			return
		}
		*dst = s
	}
	if cfg.ServerPID > 0 {
		srv = &ServerStats{PID: cfg.ServerPID}
		sample(&srv.Start)
	}

	events := make(chan workerEvent, 64*procs)
	workers := make([]*worker, 0, procs)
	defer func() {
		for _, w := range workers {
			w.kill()
		}
	}()
	base := 0
	for i := range procs {
		n := cfg.Conns / procs
		if i < cfg.Conns%procs {
			n++
		}
		spec := WorkerSpec{Config: cfg, APIKey: cfg.APIKey, Index: i, Workers: procs, SlotBase: base, Slots: n, Loops: loops}
		base += n
		var w *worker
		var err error
		if procs == 1 {
			w = startLocalWorker(ctx, spec, events)
		} else {
			w, err = startProcWorker(r.WorkerCommand(), spec, events)
		}
		if err != nil {
			return nil, fmt.Errorf("starting worker %d: %w", i, err)
		}
		workers = append(workers, w)
	}

	st := &runState{
		r: r, progress: make([]Progress, procs), results: make([]*Result, procs),
		ready: make([]bool, procs), exited: make([]bool, procs), events: events, t0: time.Now(),
	}
	// Setup: every worker dials its share and says "ready" once all its
	// connections settled (opened or failed; pubsub: subscribed).
	st.phase = "setup"
	setupTimeout := r.SetupTimeout
	if setupTimeout <= 0 {
		setupTimeout = cfg.Timeout + 30*time.Second
		if cfg.DialRate > 0 {
			setupTimeout += time.Duration(float64(cfg.Conns) / cfg.DialRate * 1.5 * float64(time.Second))
		}
	}
	setupOK := st.pump(ctx, time.Now().Add(setupTimeout), func() bool { return st.count(st.ready) == procs })
	if err := st.fatal(); err != nil {
		return nil, err
	}
	if !setupOK && ctx.Err() == nil {
		warn("setup did not settle within %v: starting anyway", setupTimeout)
	}

	var pub publisher
	if cfg.Scenario == ScenarioPubSub && ctx.Err() == nil {
		if cfg.PublishURL != "" {
			pub = newHTTPPublisher(&cfg, runID)
		} else {
			pub = newWSPublisher(&cfg, runID)
		}
		defer pub.close()
		if err := pub.connect(ctx); err != nil {
			return nil, err
		}
		st.pub = pub
	}

	// Measured phase: started on all workers at once, stopped at once.
	if srv != nil {
		sample(&srv.Setup)
	}
	st.phase = "measure"
	st.resetRate()
	tStart := time.Now()
	coordCPU := selfCPU()
	for _, w := range workers {
		if err := w.send(ctlMsg{Cmd: "start"}); err != nil {
			warn("worker %d: %v", w.idx, err)
		}
	}
	if pub != nil {
		pub.start(cfg.PublishRate)
	}
	length := cfg.Duration
	if cfg.Scenario == ScenarioConnect {
		length = cfg.Hold
	}
	st.pump(ctx, tStart.Add(length), func() bool { return false })
	measured := time.Since(tStart)
	if procs > 1 {
		// In-process workers already count this process; worker
		// processes do not count the coordinator (and its publisher).
		res.DriverCPUSeconds += (selfCPU() - coordCPU).Seconds()
	}
	if srv != nil {
		sample(&srv.End)
	}
	// Drain: the publisher waits for its acks, whose seqs tell the workers
	// when every subscriber has everything; workers wait for in-flight
	// messages, then send their results.
	stop := ctlMsg{Cmd: "stop"}
	if pub != nil {
		st.phase = "drain"
		pub.stop(cfg.Drain)
		pc := pub.counts()
		stop.Final = pc.Final
		res.PubSub = &PubSubCounts{Channels: cfg.Channels, Published: pc.Published, PublishAcked: pc.Acked,
			PublishErrors: pc.Errors, PublishErrorReasons: pc.ErrorReasons, PublisherClosed: pc.Closed, PublishDuplicates: pc.Duplicates,
			ServerDelivered: pc.ServerDelivered, Final: pc.Final}
	}
	st.phase = "drain"
	for _, w := range workers {
		if err := w.send(stop); err != nil {
			warn("worker %d: %v", w.idx, err)
		}
	}
	collectBy := time.Now().Add(cfg.Drain + 30*time.Second)
	st.pump(context.Background(), collectBy, func() bool { return st.count(st.exited) == procs })
	st.phase = "done"
	st.print()
	r.clearLive()
	for i, w := range workers {
		w.stop()
		if !st.exited[i] {
			w.kill()
		}
		if err := w.wait(); err != nil && st.results[i] == nil {
			warn("worker %d: %v", i, err)
		}
	}
	workers = nil
	if err := st.fatal(); err != nil {
		return nil, err
	}
	for i, wr := range st.results {
		if wr == nil {
			warn("worker %d returned no result", i)
			continue
		}
		res.Merge(wr)
	}
	if ctx.Err() != nil {
		warn("run interrupted after %.1fs of the measured phase", measured.Seconds())
	}
	res.finalize(measured, srv)
	if cfg.JSON != "" {
		if err := WriteResult(cfg.JSON, res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// WriteResult writes r as indented JSON to path.
func WriteResult(path string, r *Result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadResult reads a result file written by WriteResult.
func ReadResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// runState is the coordinator's view of its workers; coordinator goroutine.
type runState struct {
	r        *Runner
	phase    string
	progress []Progress
	results  []*Result
	ready    []bool
	exited   []bool
	errs     []error
	events   chan workerEvent
	pub      publisher
	t0       time.Time

	lastPrint time.Time
	lastP     Progress
	lastPub   int64
	lastAt    time.Time
}

func (s *runState) count(v []bool) int {
	n := 0
	for _, b := range v {
		if b {
			n++
		}
	}
	return n
}

func (s *runState) fatal() error { return errors.Join(s.errs...) }

// pump handles worker events and prints progress until done() holds, the
// deadline passes or ctx ends. It reports whether done() held.
func (s *runState) pump(ctx context.Context, deadline time.Time, done func() bool) bool {
	every := s.r.PlainEvery
	if s.r.Live {
		every = 250 * time.Millisecond
	}
	period := min(every/4, 250*time.Millisecond)
	tick := time.NewTicker(period)
	defer tick.Stop()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		if done() {
			return true
		}
		if len(s.errs) > 0 {
			return false
		}
		select {
		case ev := <-s.events:
			s.handle(ev)
		case <-tick.C:
			if time.Since(s.lastPrint) >= every-period/2 {
				s.print()
			}
		case <-timer.C:
			return done()
		case <-ctx.Done():
			return done()
		}
	}
}

func (s *runState) handle(ev workerEvent) {
	i := ev.idx
	if ev.exited {
		s.exited[i] = true
		if ev.err != nil && s.results[i] == nil {
			s.errs = append(s.errs, fmt.Errorf("worker %d: %w", i, ev.err))
		}
		return
	}
	switch ev.msg.Type {
	case "progress":
		if ev.msg.Progress != nil {
			s.progress[i] = *ev.msg.Progress
		}
	case "ready":
		s.ready[i] = true
	case "result":
		s.results[i] = ev.msg.Result
	case "error":
		s.errs = append(s.errs, fmt.Errorf("worker %d: %s", i, ev.msg.Error))
	}
}

func (s *runState) resetRate() {
	s.lastP = s.total()
	s.lastAt = time.Now()
	if s.pub != nil {
		s.lastPub = s.pub.published()
	}
}

func (s *runState) total() Progress {
	var p Progress
	for _, x := range s.progress {
		p.add(x)
	}
	return p
}

// print writes one progress line: connections open / target, the current
// rate, errors and elapsed time.
func (s *runState) print() {
	now := time.Now()
	p := s.total()
	dt := now.Sub(s.lastAt).Seconds()
	if s.lastAt.IsZero() {
		dt = now.Sub(s.t0).Seconds()
	}
	rate := func(cur, prev int64) float64 {
		if dt <= 0 {
			return 0
		}
		return float64(cur-prev) / dt
	}
	cfg := &s.r.Config
	line := fmt.Sprintf("[%s %s] open %d/%d", cfg.Scenario, s.phase, p.Open, cfg.Conns)
	switch {
	case s.phase == "setup" || cfg.Scenario == ScenarioConnect:
		line += fmt.Sprintf(" opened %d (%.0f/s)", p.Opened, rate(p.Opened, s.lastP.Opened))
	case cfg.Scenario == ScenarioEcho:
		line += fmt.Sprintf(" msgs %d (%.0f/s)", p.Received, rate(p.Received, s.lastP.Received))
	case cfg.Scenario == ScenarioPubSub:
		var pubd int64
		if s.pub != nil {
			pubd = s.pub.published()
		}
		line += fmt.Sprintf(" published %d (%.0f/s) delivered %d (%.0f/s)", pubd, rate(pubd, s.lastPub), p.Received, rate(p.Received, s.lastP.Received))
		s.lastPub = pubd
	case cfg.Scenario == ScenarioChurn:
		line += fmt.Sprintf(" reconnects %d (%.0f/s)", p.Events, rate(p.Events, s.lastP.Events))
	}
	line += fmt.Sprintf(" errors %d elapsed %.1fs", p.Errors, now.Sub(s.t0).Seconds())
	if s.r.Live {
		fmt.Fprint(s.r.Log, "\r\x1b[K"+line)
		s.r.liveDrawn = true
	} else {
		fmt.Fprintln(s.r.Log, line)
	}
	s.lastPrint, s.lastP, s.lastAt = now, p, now
}

// clearLive ends a live progress line so the next output starts clean.
func (r *Runner) clearLive() {
	if r.Live && r.liveDrawn {
		fmt.Fprintln(r.Log)
		r.liveDrawn = false
	}
}

// startLocalWorker runs a worker as a goroutine of this process.
func startLocalWorker(ctx context.Context, spec WorkerSpec, events chan<- workerEvent) *worker {
	ctl := make(chan ctlMsg, 4)
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() {
		err := runWorker(wctx, spec, ctl, func(m workerMsg) { events <- workerEvent{idx: spec.Index, msg: m} })
		events <- workerEvent{idx: spec.Index, exited: true, err: err}
		done <- err
	}()
	var once sync.Once
	closeCtl := func() { once.Do(func() { close(ctl) }) }
	return &worker{
		idx: spec.Index,
		send: func(m ctlMsg) error {
			select {
			case ctl <- m:
				return nil
			case <-time.After(5 * time.Second):
				return errors.New("worker is not accepting commands")
			}
		},
		stop: closeCtl,
		kill: func() { cancel(); closeCtl() },
		wait: func() error {
			err := <-done
			done <- err
			return err
		},
	}
}

// startProcWorker starts a worker process; cmd must run WorkerMain.
func startProcWorker(cmd *exec.Cmd, spec WorkerSpec, events chan<- workerEvent) (*worker, error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var mu sync.Mutex
	enc := json.NewEncoder(stdin)
	if err := enc.Encode(spec); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	waitErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		var rerr error
		for sc.Scan() {
			var m workerMsg
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				rerr = fmt.Errorf("bad message from worker: %w", err)
				continue
			}
			events <- workerEvent{idx: spec.Index, msg: m}
		}
		if rerr == nil {
			rerr = sc.Err()
		}
		err := cmd.Wait()
		events <- workerEvent{idx: spec.Index, exited: true, err: errors.Join(err, rerr)}
		waitErr <- errors.Join(err, rerr)
	}()
	var once sync.Once
	return &worker{
		idx: spec.Index,
		send: func(m ctlMsg) error {
			mu.Lock()
			defer mu.Unlock()
			return enc.Encode(m)
		},
		stop: func() { once.Do(func() { stdin.Close() }) },
		kill: func() {
			once.Do(func() { stdin.Close() })
			if cmd.ProcessState == nil {
				cmd.Process.Kill() // the worker this coordinator started, by PID
			}
		},
		wait: func() error {
			err := <-waitErr
			waitErr <- err
			return err
		},
	}, nil
}

// checkFDs fails when n sockets cannot fit under this process's open-files
// limit (getrlimit(2) RLIMIT_NOFILE; Go raises the soft limit to the hard
// one at start-up).
func checkFDs(n int) error {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return nil
	}
	if uint64(n)+256 > rl.Cur {
		return fmt.Errorf("%d connections do not fit under this process's open-files limit (%d); use more -procs", n, rl.Cur)
	}
	return nil
}

// portRange reads /proc/sys/net/ipv4/ip_local_port_range.
func portRange() (lo, hi int, err error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, err
	}
	_, err = fmt.Sscan(string(b), &lo, &hi)
	return lo, hi, err
}

func newRunID() string {
	var b [6]byte
	crand.Read(b[:])
	return hex.EncodeToString(b[:])
}
