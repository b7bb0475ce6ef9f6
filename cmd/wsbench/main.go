// Command wsbench is wsgate's load driver: a black-box WebSocket client that
// opens, holds and exercises many connections against any server and reports
// what it measured. See package bench for the engine and the scenarios.
//
//	wsbench connect -conns 100000 -rate 5000 -hold 30s -src 127.0.0.2-127.0.0.250 -server-pid PID
//	wsbench echo    -conns 1000 -size 32 -duration 10s [-rate MSGS/S]
//	wsbench pubsub  -conns 10000 -channels 10 -publish-rate 1000 [-publish-url URL -api-key KEY]
//	wsbench sse     -url http://HOST:PORT/sse -conns 10000 -channels 10 -publish-rate 1000 -publish-url URL
//	wsbench churn   -conns 1000 -rate 500 -hold 1s -duration 30s
//	wsbench report  results/*.json -o docs/img/ [-md FILE]
//
// Exit status: 0 when the run worked; 1 on an error that stopped it; 2 on a
// usage error; 3 with -strict when any connection failed or dropped or any
// message was lost, duplicated or corrupted; 4 when the scenario could not
// do its job at all (no connection opened, no echo came back, no
// subscription acknowledged, no publish accepted, nothing delivered, no
// reconnect), with the cause on stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/bench"
)

// workerFlag is the hidden first argument that turns the binary into a
// worker process of a multi-process run (see bench.WorkerMain).
const workerFlag = "-worker"

// Exit codes.
const (
	exitOK     = 0
	exitError  = 1
	exitUsage  = 2
	exitStrict = 3 // -strict and the run saw failures or lost messages
	// exitUnusable: the scenario could not do its job, so its numbers
	// measure nothing (bench.Unusable).
	exitUnusable = 4
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == workerFlag {
		// The coordinator owns the run: a terminal's Ctrl-C reaches the
		// whole process group, and the worker must still report.
		signal.Ignore(os.Interrupt, syscall.SIGTERM)
		if err := bench.WorkerMain(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(stderr, "wsbench worker:", err)
			return exitError
		}
		return exitOK
	}
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch cmd := args[0]; cmd {
	case bench.ScenarioConnect, bench.ScenarioEcho, bench.ScenarioPubSub, bench.ScenarioSSE, bench.ScenarioChurn:
		return runScenario(cmd, args[1:], stdout, stderr)
	case "report":
		return runReport(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return exitOK
	default:
		fmt.Fprintf(stderr, "wsbench: unknown command %q\n", cmd)
		usage(stderr)
		return exitUsage
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: wsbench <command> [flags]

commands:
  connect   open -conns connections at -rate per second, hold them for -hold
  echo      -conns connections send -size byte messages and time the echoes
  pubsub    -conns subscribers on -channels channels, one publisher at -publish-rate
  sse       pubsub with Server-Sent Events subscribers (-url http://host:port/sse), publishing to -publish-url
  churn     connections that disconnect after -hold and reconnect with backoff
  report    wsbench report results/*.json -o docs/img/ [-md FILE]

Run "wsbench <command> -h" for a command's flags.
`)
}

// runScenario runs "wsbench <name> [flags]": it parses and checks the
// flags, runs the scenario, prints the summary line on stdout and returns
// the exit status.
func runScenario(name string, args []string, stdout, stderr io.Writer) int {
	cfg := bench.DefaultConfig(name)
	fs, strict := scenarioFlags(name, &cfg, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wsbench %s: unexpected arguments %q\n", name, fs.Args())
		return exitUsage
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "wsbench %s: %v\n", name, err)
		return exitUsage
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "wsbench:", err)
		return exitError
	}
	r := &bench.Runner{
		Config: cfg,
		Log:    stderr,
		Live:   isTerminal(stderr),
		WorkerCommand: func() *exec.Cmd {
			c := exec.Command(exe, workerFlag)
			c.Stderr = stderr
			return c
		},
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := r.Run(ctx)
	if res != nil {
		fmt.Fprintln(stdout, res.SummaryLine())
	}
	if err != nil {
		fmt.Fprintf(stderr, "wsbench %s: %v\n", name, err)
		return exitError
	}
	if why := bench.Unusable(res); len(why) > 0 {
		fmt.Fprintf(stderr, "wsbench %s: the run measured nothing: %s\n", name, strings.Join(why, "; and "))
		return exitUnusable
	}
	if *strict {
		if problems := bench.Problems(res); len(problems) > 0 {
			fmt.Fprintf(stderr, "wsbench %s: -strict: %s\n", name, strings.Join(problems, "; "))
			return exitStrict
		}
	}
	return exitOK
}

// readTokens reads a file of tokens, one per line (blank lines and lines
// starting with # are skipped).
func readTokens(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var toks []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		toks = append(toks, line)
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("%s holds no token", path)
	}
	return toks, nil
}

// scenarioFlags defines scenario name's flags on a new FlagSet that writes
// into cfg, whose values are the defaults; strict is -strict.
func scenarioFlags(name string, cfg *bench.Config, stderr io.Writer) (fs *flag.FlagSet, strict *bool) {
	fs = flag.NewFlagSet("wsbench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.URL, "url", cfg.URL, "server `URL` (ws:// only)")
	fs.IntVar(&cfg.Conns, "conns", cfg.Conns, "number of connections over all workers")
	fs.StringVar(&cfg.Procs, "procs", cfg.Procs, "worker processes: auto (ceil(conns/15000)) or N (each at most the open-files limit less 512 connections)")
	fs.StringVar(&cfg.Src, "src", cfg.Src, "source address `range` to spread sockets over, e.g. 127.0.0.2-127.0.0.250")
	fs.StringVar(&cfg.JSON, "json", "", "write the full result to `FILE`")
	fs.StringVar(&cfg.Label, "label", cfg.Label, "name of the server under test, recorded in the result")
	fs.Func("server-pid", "sample the server's `PIDs` (comma-separated: every process of a cluster on this host) for CPU and RSS from /proc, added up (without it, CPU and memory per connection are not measured)", func(v string) error {
		cfg.ServerPIDs = nil
		for _, f := range strings.Split(v, ",") {
			pid, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || pid <= 0 {
				return fmt.Errorf("%q is not a process id", f)
			}
			cfg.ServerPIDs = append(cfg.ServerPIDs, pid)
		}
		return nil
	})
	fs.IntVar(&cfg.Loops, "loops", 0, "event loops per worker (0: CPUs / workers)")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "connect plus handshake timeout per connection")
	fs.DurationVar(&cfg.Drain, "drain", cfg.Drain, "longest wait for in-flight messages after the measured phase")
	fs.BoolVar(&cfg.Compression, "compression", false, "offer permessage-deflate without context takeover (server_no_context_takeover required); compressed messages are inflated")
	strict = fs.Bool("strict", false, "exit with status 3 if any connection failed or any message was lost, duplicated or corrupted")
	fs.Func("token", "connection `token` (JWT) sent by every connection as \"Authorization: Bearer\" (a server with -jwt-secret or -jwt-public-key)", func(v string) error {
		if v = strings.TrimSpace(v); v == "" {
			return errors.New("empty token")
		}
		cfg.Tokens, cfg.Auth = []string{v}, true
		return nil
	})
	fs.Func("token-file", "`FILE` of connection tokens, one per line: connection i sends line i % lines (many users)", func(path string) error {
		toks, err := readTokens(path)
		if err != nil {
			return err
		}
		cfg.Tokens, cfg.Auth = toks, true
		return nil
	})
	switch name {
	case bench.ScenarioConnect:
		fs.Float64Var(&cfg.DialRate, "rate", cfg.DialRate, "connections per second (0: unpaced)")
		fs.DurationVar(&cfg.Hold, "hold", cfg.Hold, "how long to hold all connections open")
	case bench.ScenarioEcho:
		fs.Float64Var(&cfg.MsgRate, "rate", 0, "total messages per second (0: as fast as possible, one in flight per connection)")
		fs.Float64Var(&cfg.DialRate, "connect-rate", cfg.DialRate, "connections per second while opening")
		fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length of the measured phase")
		fs.IntVar(&cfg.Size, "size", cfg.Size, "message size in bytes")
	case bench.ScenarioPubSub, bench.ScenarioSSE:
		fs.Float64Var(&cfg.DialRate, "rate", cfg.DialRate, "connections per second while opening")
		fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to publish")
		fs.IntVar(&cfg.Channels, "channels", cfg.Channels, "number of channels; subscriber i takes channel i % channels")
		fs.StringVar(&cfg.ChannelPrefix, "channel-prefix", cfg.ChannelPrefix, "channel names are prefix + index")
		fs.Float64Var(&cfg.PublishRate, "publish-rate", cfg.PublishRate, "messages published per second over all channels")
		fs.StringVar(&cfg.PublishURL, "publish-url", "", "publish with HTTP POST to this `URL` (e.g. http://127.0.0.1:9090/api/publish) instead of the WebSocket publish op")
		fs.StringVar(&cfg.APIKey, "api-key", "", "bearer `key` for -publish-url")
		fs.IntVar(&cfg.Size, "size", 0, "size of each published data object in bytes, padded (0: the bare {\"t\":..,\"n\":..}, about 35 bytes)")
	case bench.ScenarioChurn:
		fs.Float64Var(&cfg.DialRate, "rate", cfg.DialRate, "connections per second for the initial connects")
		fs.DurationVar(&cfg.Hold, "hold", cfg.Hold, "lifetime of each connection before it disconnects")
		fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length of the run")
		fs.DurationVar(&cfg.Backoff.Base, "backoff-base", cfg.Backoff.Base, "first reconnect delay")
		fs.DurationVar(&cfg.Backoff.Max, "backoff-max", cfg.Backoff.Max, "reconnect delay cap")
		fs.DurationVar(&cfg.Backoff.Jitter, "backoff-jitter", cfg.Backoff.Jitter, "reconnect delay jitter (+/-)")
	}
	return fs, strict
}

func runReport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wsbench report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "docs/img", "output `directory` for the SVG charts")
	mdFile := fs.String("md", "", "also write the Markdown table to `FILE`")
	// Accept flags before, between and after the file arguments
	// ("report results/*.json -o docs/img/").
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK
			}
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "wsbench report: no result files given")
		return exitUsage
	}
	var md strings.Builder
	charts, err := bench.Report(files, *out, &md)
	if err != nil {
		fmt.Fprintln(stderr, "wsbench report:", err)
		return exitError
	}
	fmt.Fprint(stdout, md.String())
	if *mdFile != "" {
		if err := os.WriteFile(*mdFile, []byte(md.String()), 0o644); err != nil {
			fmt.Fprintln(stderr, "wsbench report:", err)
			return exitError
		}
	}
	for _, c := range charts {
		fmt.Fprintln(stderr, "wrote", c)
	}
	return exitOK
}

// isTerminal reports whether w is a terminal (ioctl TCGETS succeeds).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
