package bench

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os/exec"
	"time"
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

func newRunID() string {
	var b [6]byte
	crand.Read(b[:])
	return hex.EncodeToString(b[:])
}
