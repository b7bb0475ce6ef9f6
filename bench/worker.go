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
	Config   Config `json:"config"`
	APIKey   string `json:"api_key,omitempty"` // Config.APIKey is not serialised
	Index    int    `json:"index"`
	Workers  int    `json:"workers"`
	SlotBase int    `json:"slot_base"`
	Slots    int    `json:"slots"`
	Loops    int    `json:"loops"`
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
	cfg := spec.Config
	cfg.APIKey = spec.APIKey
	tg, err := resolveTarget(ctx, cfg.URL)
	if err != nil {
		return err
	}
	src, err := ParseSrcRange(cfg.Src)
	if err != nil {
		return err
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
	sc := newScenario(&cfg, spec.Slots, loops, cfg.Conns)
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
	}
	if cfg.Scenario == ScenarioEcho && cfg.MsgRate > 0 {
		ecfg.Tick = time.Millisecond
	}
	e, err := NewEngine(ecfg, sc)
	if err != nil {
		return err
	}
	e.Start()
	defer e.Stop()
	sc.setup(e)

	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	report := func() {
		var p Progress
		sc.progress(&p)
		p.At = time.Now().UnixNano()
		emit(workerMsg{Type: "progress", Progress: &p})
	}
	var driverCPU time.Duration
	finish := func(measured bool) error {
		report()
		r := &Result{Scenario: cfg.Scenario, DriverCPUSeconds: driverCPU.Seconds()}
		sc.collect(e, r)
		if !measured {
			r.Warnings = append(r.Warnings, fmt.Sprintf("worker %d stopped before the measured phase", spec.Index))
		}
		emit(workerMsg{Type: "result", Result: r})
		return nil
	}

	// Setup: wait for every connection to settle, then for "start".
	isReady := false
	for started := false; !started; {
		if !isReady && sc.ready(e) {
			isReady = true
			report()
			emit(workerMsg{Type: "ready"})
		}
		select {
		case <-ctx.Done():
			return finish(false)
		case m, ok := <-ctl:
			if !ok || m.Cmd == "stop" {
				sc.end(e, m)
				return finish(false)
			}
			if m.Cmd == "start" {
				started = true
			}
		case <-tick.C:
			report()
		case <-time.After(drainPoll):
		}
	}
	cpu0 := selfCPU()
	sc.begin(e)

	// Measured phase: until "stop".
	var stop ctlMsg
	for stopping := false; !stopping; {
		select {
		case <-ctx.Done():
			stopping = true
		case m, ok := <-ctl:
			if !ok || m.Cmd == "stop" {
				stop, stopping = m, true
			}
		case <-tick.C:
			report()
		}
	}
	sc.end(e, stop)
	driverCPU = selfCPU() - cpu0
	deadline := time.Now().Add(cfg.Drain)
	for !sc.drained(e) && time.Now().Before(deadline) {
		time.Sleep(drainPoll)
	}
	return finish(true)
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
