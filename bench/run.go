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
//
// The caller sets the exported fields before Run and leaves them alone
// until Run returns. Run, on the goroutine that called it (the
// coordinator), sets Log and PlainEvery when they are unset and otherwise
// only reads them.
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
	procs, loops, err := r.prepare(ctx)
	if err != nil {
		return nil, err
	}
	s := r.newRunState(procs)
	defer s.killWorkers()
	if err := s.startWorkers(ctx, loops); err != nil {
		return nil, err
	}
	if err := s.setup(ctx); err != nil {
		return nil, err
	}
	if (r.Config.Scenario == ScenarioPubSub || r.Config.Scenario == ScenarioSSE) && ctx.Err() == nil {
		pub := s.newPublisher()
		defer pub.close()
		if err := pub.connect(ctx); err != nil {
			return nil, err
		}
		s.pub = pub
	}
	s.measure(ctx)
	s.drain()
	if err := s.collect(ctx); err != nil {
		return nil, err
	}
	return s.summary()
}

// prepare checks the configuration and this host before any worker starts
// and applies the Runner's defaults. It returns the number of workers and
// the event loops each runs.
func (r *Runner) prepare(ctx context.Context) (procs, loops int, err error) {
	cfg := &r.Config
	if err := cfg.Validate(); err != nil {
		return 0, 0, err
	}
	if r.Log == nil {
		r.Log = io.Discard
	}
	if r.PlainEvery <= 0 {
		r.PlainEvery = 2 * time.Second
	}
	// Fail early on a bad URL, before any process is started.
	if _, err := resolveTarget(ctx, cfg.URL); err != nil {
		return 0, 0, err
	}
	procs, _ = cfg.procCount()
	if procs > 1 && r.WorkerCommand == nil {
		return 0, 0, fmt.Errorf("%d connections need %d worker processes, but no worker command is set", cfg.Conns, procs)
	}
	if procs == 1 {
		if err := checkFDs(cfg.Conns); err != nil {
			return 0, 0, err
		}
	}
	loops = cfg.Loops
	if loops <= 0 {
		loops = defaultLoops(procs)
	}
	return procs, loops, nil
}

// newRunState starts the run's Result, warns when the source ports may run
// out and takes the server's first sample.
func (r *Runner) newRunState(procs int) *runState {
	cfg := &r.Config
	s := &runState{
		r: r, progress: make([]Progress, procs), results: make([]*Result, procs),
		ready: make([]bool, procs), exited: make([]bool, procs), events: make(chan workerEvent, 64*procs),
		res: &Result{
			Scenario: cfg.Scenario, Label: cfg.Label, URL: cfg.URL, Start: time.Now().UTC(),
			Procs: procs, Conns: cfg.Conns, Config: *cfg,
		},
	}
	if src, _ := ParseSrcRange(cfg.Src); src.Len() == 0 {
		if lo, hi, err := portRange(); err == nil && cfg.Conns > (hi-lo+1)*9/10 {
			s.warn("%d connections from one source address may exhaust ip_local_port_range (%d-%d); use -src", cfg.Conns, lo, hi)
		}
	}
	if len(cfg.ServerPIDs) > 0 {
		s.srv = &ServerStats{PIDs: cfg.ServerPIDs}
		s.sampleServer(&s.srv.Start)
	}
	return s
}

// setup waits until every worker dialled its share and said "ready": all
// its connections settled (opened or failed; pubsub: subscribed).
func (s *runState) setup(ctx context.Context) error {
	s.phase = "setup"
	timeout := s.setupTimeout()
	ok := s.pump(ctx, time.Now().Add(timeout), func() bool { return s.count(s.ready) == len(s.ready) })
	if err := s.fatal(); err != nil {
		return err
	}
	if !ok && ctx.Err() == nil {
		s.warn("setup did not settle within %v: starting anyway", timeout)
	}
	s.setupTook = time.Since(s.t0)
	return nil
}

// setupTimeout is Runner.SetupTimeout or, when that is 0, -timeout plus
// half a minute plus one and a half times the dialling at -rate.
func (s *runState) setupTimeout() time.Duration {
	cfg := &s.r.Config
	d := s.r.SetupTimeout
	if d <= 0 {
		d = cfg.Timeout + 30*time.Second
		if cfg.DialRate > 0 {
			d += time.Duration(float64(cfg.Conns) / cfg.DialRate * 1.5 * float64(time.Second))
		}
	}
	return d
}

// newPublisher returns the pubsub scenario's publisher: over HTTP with
// -publish-url, else over a WebSocket of its own.
func (s *runState) newPublisher() publisher {
	cfg := s.r.Config
	if cfg.PublishURL != "" {
		return newHTTPPublisher(&cfg, newRunID())
	}
	return newWSPublisher(&cfg, newRunID())
}

// measure runs the measured phase: started on all workers at once (and the
// publisher), stopped at once after -duration (connect: -hold).
func (s *runState) measure(ctx context.Context) {
	cfg := &s.r.Config
	if s.srv != nil {
		s.sampleServer(&s.srv.Setup)
	}
	s.phase = "measure"
	tStart := time.Now()
	s.tMeasure = tStart
	coordCPU := selfCPU()
	s.sendAll(ctlMsg{Cmd: "start"})
	if s.pub != nil {
		s.pub.start(cfg.PublishRate)
	}
	length := cfg.Duration
	if cfg.Scenario == ScenarioConnect {
		length = cfg.Hold
	}
	s.pump(ctx, tStart.Add(length), func() bool { return false })
	s.measured = time.Since(tStart)
	if len(s.workers) > 1 {
		// In-process workers already count this process; worker
		// processes do not count the coordinator (and its publisher).
		s.res.DriverCPUSeconds += (selfCPU() - coordCPU).Seconds()
	}
	if s.srv != nil {
		s.sampleServer(&s.srv.End)
	}
}

// drain stops the load: the publisher waits for its acks, whose seqs tell
// the workers when every subscriber has everything; workers wait for
// in-flight messages, then send their results and exit.
func (s *runState) drain() {
	cfg := &s.r.Config
	stop := ctlMsg{Cmd: "stop"}
	if s.pub != nil {
		s.phase = "drain"
		s.pub.stop(cfg.Drain)
		pc := s.pub.counts()
		stop.Final = pc.Final
		s.res.PubSub = &PubSubCounts{Channels: cfg.Channels, Published: pc.Published, PublishAcked: pc.Acked,
			PublishErrors: pc.Errors, PublishErrorReasons: pc.ErrorReasons, PublisherClosed: pc.Closed, PublishDuplicates: pc.Duplicates,
			ServerDelivered: pc.ServerDelivered, Final: pc.Final}
		if pc.CallLatency.Count > 0 {
			s.res.PubSub.PublishCallUs = &pc.CallLatency
		}
	}
	s.phase = "drain"
	s.sendAll(stop)
	collectBy := time.Now().Add(cfg.Drain + 30*time.Second)
	s.pump(context.Background(), collectBy, func() bool { return s.count(s.exited) == len(s.exited) })
}

// collect waits for every worker to end (killing those that did not exit)
// and merges their results into the run's.
func (s *runState) collect(ctx context.Context) error {
	for i, w := range s.workers {
		w.stop()
		if !s.exited[i] {
			w.kill()
		}
		if err := w.wait(); err != nil && s.results[i] == nil {
			s.warn("worker %d: %v", i, err)
		}
	}
	s.workers = nil
	if err := s.fatal(); err != nil {
		s.r.clearLive()
		return err
	}
	for i, wr := range s.results {
		if wr == nil {
			s.warn("worker %d returned no result", i)
			continue
		}
		s.res.Merge(wr)
	}
	if ctx.Err() != nil {
		s.warn("run interrupted after %.1fs of the measured phase", s.measured.Seconds())
	}
	return nil
}

// summary derives the result's totals, prints the last progress line and
// writes -json.
func (s *runState) summary() (*Result, error) {
	res := s.res
	res.finalize(s.measured, s.srv)
	s.printDone(res)
	s.r.clearLive()
	if s.r.Config.JSON != "" {
		if err := WriteResult(s.r.Config.JSON, res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// warn records a warning in the result and prints it.
func (s *runState) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.res.Warnings = append(s.res.Warnings, msg)
	s.r.clearLive()
	fmt.Fprintln(s.r.Log, "wsbench: warning:", msg)
}

// sampleServer reads the server's processes into dst, added up; a failure
// is a warning and leaves dst as it was.
func (s *runState) sampleServer(dst *ProcSample) {
	var sum ProcSample
	for _, pid := range s.srv.PIDs {
		p, err := SampleProc(pid)
		if err != nil {
			s.warn("sampling server pid %d: %v", pid, err)
			return
		}
		sum.CPUTicks += p.CPUTicks
		sum.RSS += p.RSS
	}
	*dst = sum
}

// runState is the coordinator's view of its workers. Every field is
// touched only on the coordinator goroutine; workers reach it through the
// events channel.
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
	res      *Result      // the run's result, filled phase by phase
	srv      *ServerStats // nil without -server-pid
	workers  []*worker    // nil once collected

	// The denominators of the rates on progress lines (see rateOf).
	setupTook time.Duration // zero until setup ended
	tMeasure  time.Time     // zero until the measured phase started
	measured  time.Duration // zero until it ended; then Result.MeasuredS

	lastPrint time.Time
}

// newRunID returns a random ID for this run's published messages.
func newRunID() string {
	var b [6]byte
	crand.Read(b[:])
	return hex.EncodeToString(b[:])
}
