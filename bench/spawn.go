package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"
)

// worker is the coordinator's handle on one worker, used on the
// coordinator goroutine; its functions may be called more than once.
type worker struct {
	idx  int
	send func(ctlMsg) error
	stop func() // closes the command channel
	kill func()
	wait func() error
}

// workerEvent is a message from worker idx, or its exit with err; the
// worker's goroutines send it to the coordinator's events channel.
type workerEvent struct {
	idx    int
	msg    workerMsg
	exited bool
	err    error
}

// startWorkers splits the connections over the workers, in-process when
// there is one, else as processes of WorkerCommand, and starts them.
func (s *runState) startWorkers(ctx context.Context, loops int) error {
	cfg := s.r.Config
	procs := len(s.ready)
	base := 0
	for i := range procs {
		n := cfg.Conns / procs
		if i < cfg.Conns%procs {
			n++
		}
		spec := WorkerSpec{Config: cfg, APIKey: cfg.APIKey, Tokens: cfg.Tokens, Index: i, Workers: procs, SlotBase: base, Slots: n, Loops: loops}
		base += n
		var w *worker
		var err error
		if procs == 1 {
			w = startLocalWorker(ctx, spec, s.events)
		} else {
			w, err = startProcWorker(s.r.WorkerCommand(), spec, s.events)
		}
		if err != nil {
			return fmt.Errorf("starting worker %d: %w", i, err)
		}
		s.workers = append(s.workers, w)
	}
	s.t0 = time.Now()
	return nil
}

// killWorkers kills the workers not yet collected: the run ends early.
func (s *runState) killWorkers() {
	for _, w := range s.workers {
		w.kill()
	}
}

// sendAll sends m to every worker; one that does not take it is a warning.
func (s *runState) sendAll(m ctlMsg) {
	for _, w := range s.workers {
		if err := w.send(m); err != nil {
			s.warn("worker %d: %v", w.idx, err)
		}
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
