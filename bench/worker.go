package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// A run is split over workers: goroutines in the coordinator's process when
// one process suffices, otherwise child processes re-executing the wsbench
// binary (the per-process open-files limit caps sockets per process). Both
// kinds speak the same protocol of JSON lines:
//
//	coordinator -> worker: WorkerSpec, then ctlMsg{"start"}, ctlMsg{"stop"}
//	worker -> coordinator: workerMsg progress..., ready, progress..., result
//
// The worker dials during setup and says "ready" once every connection has
// settled; the coordinator starts the measured phase on all workers at once
// and stops it at once, so their results cover the same interval.

// WorkerSpec is the coordinator's instruction to one worker: built by the
// coordinator, sent once, immutable in the worker.
type WorkerSpec struct {
	Config   Config   `json:"config"`
	APIKey   string   `json:"api_key,omitempty"` // Config.APIKey is not serialised
	Tokens   []string `json:"tokens,omitempty"`  // Config.Tokens is not serialised
	Index    int      `json:"index"`
	Workers  int      `json:"workers"`
	SlotBase int      `json:"slot_base"`
	Slots    int      `json:"slots"`
	Loops    int      `json:"loops"`
}

type ctlMsg struct {
	Cmd   string  `json:"cmd"` // "start" or "stop"
	Final []int64 `json:"final,omitempty"`
}

type workerMsg struct {
	Type     string    `json:"type"` // "progress", "ready", "result", "error"
	Progress *Progress `json:"progress,omitempty"`
	Result   *Result   `json:"result,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// progressEvery is how often a worker reports progress.
const progressEvery = 500 * time.Millisecond

// drainPoll is how often a stopping worker checks for in-flight messages.
const drainPoll = 20 * time.Millisecond

// runWorker runs one worker's share of a run. ctl delivers the
// coordinator's commands; a closed ctl or a cancelled ctx ends the run
// early, still reporting a result. emit is called from this goroutine only.
func runWorker(ctx context.Context, spec WorkerSpec, ctl <-chan ctlMsg, emit func(workerMsg)) error {
	w, err := newWorkerRun(ctx, spec, emit)
	if err != nil {
		return err
	}
	w.e.Start()
	defer w.e.Stop()
	w.sc.setup(w.e)
	w.tick = time.NewTicker(progressEvery)
	defer w.tick.Stop()
	if !w.awaitStart(ctx, ctl) {
		return w.finish(false, 0)
	}
	cpu0 := selfCPU()
	w.sc.begin(w.e)
	w.sc.end(w.e, w.awaitStop(ctx, ctl))
	driverCPU := selfCPU() - cpu0
	w.drain()
	return w.finish(true, driverCPU)
}

// workerRun is one worker's run. Its fields are set by newWorkerRun and
// runWorker and used on the worker goroutine only; the engine's loops reach
// the scenario through Handler calls and Engine.Sync.
type workerRun struct {
	cfg  Config // this worker's copy: APIKey restored, DialRate its share
	spec WorkerSpec
	e    *Engine
	sc   scenario
	emit func(workerMsg)
	tick *time.Ticker // progress reports; set by runWorker
}

// newWorkerRun resolves the target and builds the worker's scenario and
// its engine, not yet started.
func newWorkerRun(ctx context.Context, spec WorkerSpec, emit func(workerMsg)) (*workerRun, error) {
	w := &workerRun{cfg: spec.Config, spec: spec, emit: emit}
	cfg := &w.cfg
	cfg.APIKey = spec.APIKey
	cfg.Tokens = spec.Tokens
	tg, err := resolveTarget(ctx, cfg.URL)
	if err != nil {
		return nil, err
	}
	src, err := ParseSrcRange(cfg.Src)
	if err != nil {
		return nil, err
	}
	loops := spec.Loops
	if loops <= 0 {
		loops = 1
	}
	loops = min(loops, max(spec.Slots, 1))
	// -rate is for the whole run: this worker dials its share.
	if cfg.DialRate > 0 && cfg.Conns > 0 {
		cfg.DialRate *= float64(spec.Slots) / float64(cfg.Conns)
	}
	w.sc = newScenario(cfg, spec.Slots, loops, cfg.Conns)
	ecfg := EngineConfig{
		Addr:             tg.addr,
		Port:             tg.port,
		Host:             tg.host,
		Path:             tg.path,
		Src:              src,
		Loops:            loops,
		Slots:            spec.Slots,
		SlotBase:         spec.SlotBase,
		HandshakeTimeout: cfg.Timeout,
		Tokens:           cfg.Tokens,
		Deflate:          cfg.Compression,
	}
	if cfg.Scenario == ScenarioEcho && cfg.MsgRate > 0 {
		ecfg.Tick = time.Millisecond
	}
	if cfg.Scenario == ScenarioSSE {
		ecfg.SSEChannels, ecfg.ChannelPrefix = cfg.Channels, cfg.ChannelPrefix
	}
	if w.e, err = NewEngine(ecfg, w.sc); err != nil {
		return nil, err
	}
	return w, nil
}

// awaitStart waits for every connection to settle, says "ready", then
// waits for "start". It reports false when the run ended first: ctx was
// cancelled, or ctl closed or said "stop" (the scenario is then ended).
func (w *workerRun) awaitStart(ctx context.Context, ctl <-chan ctlMsg) bool {
	isReady := false
	for {
		if !isReady && w.sc.ready(w.e) {
			isReady = true
			w.report()
			w.emit(workerMsg{Type: "ready"})
		}
		select {
		case <-ctx.Done():
			return false
		case m, ok := <-ctl:
			if !ok || m.Cmd == "stop" {
				w.sc.end(w.e, m)
				return false
			}
			if m.Cmd == "start" {
				return true
			}
		case <-w.tick.C:
			w.report()
		case <-time.After(drainPoll):
		}
	}
}

// awaitStop reports progress through the measured phase until "stop", ctl
// closing or ctx ending, and returns the stop command (zero if none came).
func (w *workerRun) awaitStop(ctx context.Context, ctl <-chan ctlMsg) ctlMsg {
	for {
		select {
		case <-ctx.Done():
			return ctlMsg{}
		case m, ok := <-ctl:
			if !ok || m.Cmd == "stop" {
				return m
			}
		case <-w.tick.C:
			w.report()
		}
	}
}

// drain waits, at most -drain, for the messages still in flight.
func (w *workerRun) drain() {
	deadline := time.Now().Add(w.cfg.Drain)
	for !w.sc.drained(w.e) && time.Now().Before(deadline) {
		time.Sleep(drainPoll)
	}
}

// report emits a progress snapshot.
func (w *workerRun) report() {
	var p Progress
	w.sc.progress(&p)
	p.At = time.Now().UnixNano()
	w.emit(workerMsg{Type: "progress", Progress: &p})
}

// finish emits the last progress and the worker's result; measured says
// whether the measured phase ran, driverCPU is this process's CPU during
// it.
func (w *workerRun) finish(measured bool, driverCPU time.Duration) error {
	w.report()
	r := &Result{Scenario: w.cfg.Scenario, DriverCPUSeconds: driverCPU.Seconds()}
	w.sc.collect(w.e, r)
	if !measured {
		r.Warnings = append(r.Warnings, fmt.Sprintf("worker %d stopped before the measured phase", w.spec.Index))
	}
	w.emit(workerMsg{Type: "result", Result: r})
	return nil
}

// WorkerMain is the body of a worker process: it reads a WorkerSpec and
// commands from in and writes messages to out, one JSON value per line.
// The coordinator's end of in closing stops the worker.
func WorkerMain(ctx context.Context, in io.Reader, out io.Writer) error {
	dec := json.NewDecoder(bufio.NewReader(in))
	var spec WorkerSpec
	if err := dec.Decode(&spec); err != nil {
		return fmt.Errorf("worker: reading spec: %w", err)
	}
	ctl := make(chan ctlMsg)
	go func() {
		defer close(ctl)
		for {
			var m ctlMsg
			if err := dec.Decode(&m); err != nil {
				return
			}
			select {
			case ctl <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	var mu sync.Mutex
	enc := json.NewEncoder(out)
	var werr error
	emit := func(m workerMsg) {
		mu.Lock()
		defer mu.Unlock()
		if err := enc.Encode(m); err != nil && werr == nil {
			werr = err
		}
	}
	err := runWorker(ctx, spec, ctl, emit)
	if err != nil {
		emit(workerMsg{Type: "error", Error: err.Error()})
	}
	return errors.Join(err, werr)
}

// defaultLoops picks event loops per worker: the CPUs divided among the
// workers, at least one.
func defaultLoops(workers int) int {
	return max(1, runtime.GOMAXPROCS(0)/max(workers, 1))
}

// selfCPU returns this process's user plus system CPU time (getrusage(2),
// RUSAGE_SELF).
func selfCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
