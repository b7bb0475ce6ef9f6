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
	st.setupTook = time.Since(st.t0)

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
	tStart := time.Now()
	st.tMeasure = tStart
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
	st.measured = measured
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
		r.clearLive()
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
	st.printDone(res)
	r.clearLive()
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

	// The denominators of the rates on progress lines (see rateOf).
	setupTook time.Duration // zero until setup ended
	tMeasure  time.Time     // zero until the measured phase started
	measured  time.Duration // zero until it ended; then Result.MeasuredS

	lastPrint time.Time
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

// total sums the workers' latest progress. Its At is the mean of theirs:
// when workers progress at equal rates, the sum of their counts is what
// all of them together had at that mean time.
func (s *runState) total() Progress {
	var p Progress
	var at, n int64
	for _, x := range s.progress {
		p.add(x)
		if x.At != 0 {
			at += x.At
			n++
		}
	}
	if n > 0 {
		p.At = at / n
	}
	return p
}

// rateOf is the rate a progress line shows for n events counted at asOf,
// computed as the summary computes its throughput (throughput): during
// setup over the time since the run started; from the measured phase on
// over the time since it started and, once it ended, over its whole length,
// like Result.Throughput. Connect's count is its connections, opened during
// setup: its rate stays over the setup's length.
func (s *runState) rateOf(n int64, asOf time.Time) float64 {
	switch {
	case s.r.Config.Scenario == ScenarioConnect && s.setupTook > 0:
		return throughput(n, s.setupTook)
	case s.measured > 0:
		return throughput(n, s.measured)
	case !s.tMeasure.IsZero():
		return throughput(n, asOf.Sub(s.tMeasure))
	}
	return throughput(n, asOf.Sub(s.t0))
}

// print writes one progress line from the workers' latest progress.
func (s *runState) print() {
	now := time.Now()
	p := s.total()
	cfg := &s.r.Config
	opening := s.phase == "setup" || cfg.Scenario == ScenarioConnect
	var n int64
	switch {
	case opening:
		n = p.Opened
	case cfg.Scenario == ScenarioEcho || cfg.Scenario == ScenarioPubSub:
		n = p.Received
	case cfg.Scenario == ScenarioChurn:
		n = p.Events
	}
	// Worker counts are as of their last report (progressEvery), the
	// publisher's are live.
	asOf := now
	if p.At != 0 {
		asOf = time.Unix(0, p.At)
	}
	var pubd int64
	if s.pub != nil {
		pubd = s.pub.published()
	}
	s.emit(s.line(s.phase, opening, p.Open, n, s.rateOf(n, asOf), pubd, s.rateOf(pubd, now), p.Errors, now))
}

// printDone writes the last progress line from the final result: its count
// and rate are the summary's Ops and Throughput.
func (s *runState) printDone(res *Result) {
	var pubd int64
	if res.PubSub != nil {
		pubd = res.PubSub.Published
	}
	s.emit(s.line("done", res.Scenario == ScenarioConnect, res.OpenAtEnd, res.Ops, res.Throughput,
		pubd, throughput(pubd, s.measured), s.total().Errors, time.Now()))
}

// line formats a progress line: connections open / target, the count n and
// its rate, errors and elapsed time. n counts opened connections while
// opening, else the scenario's operations (messages, deliveries,
// reconnects); pubsub also shows the publisher's count and rate.
func (s *runState) line(phase string, opening bool, open, n int64, rate float64, pubd int64, pubRate float64, errs int64, now time.Time) string {
	cfg := &s.r.Config
	line := fmt.Sprintf("[%s %s] open %d/%d", cfg.Scenario, phase, open, cfg.Conns)
	switch {
	case opening:
		line += fmt.Sprintf(" opened %d (%.0f/s)", n, rate)
	case cfg.Scenario == ScenarioEcho:
		line += fmt.Sprintf(" msgs %d (%.0f/s)", n, rate)
	case cfg.Scenario == ScenarioPubSub:
		line += fmt.Sprintf(" published %d (%.0f/s) delivered %d (%.0f/s)", pubd, pubRate, n, rate)
	case cfg.Scenario == ScenarioChurn:
		line += fmt.Sprintf(" reconnects %d (%.0f/s)", n, rate)
	}
	return line + fmt.Sprintf(" errors %d elapsed %.1fs", errs, now.Sub(s.t0).Seconds())
}

// emit prints a progress line: redrawn in place on a terminal, a plain line
// otherwise.
func (s *runState) emit(line string) {
	if s.r.Live {
		fmt.Fprint(s.r.Log, "\r\x1b[K"+line)
		s.r.liveDrawn = true
	} else {
		fmt.Fprintln(s.r.Log, line)
	}
	s.lastPrint = time.Now()
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
