package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Scenario names, as used for subcommands and in results.
const (
	ScenarioConnect = "connect"
	ScenarioEcho    = "echo"
	ScenarioPubSub  = "pubsub"
	ScenarioSSE     = "sse"
	ScenarioChurn   = "churn"
)

// Scenarios lists the scenarios in display order.
var Scenarios = []string{ScenarioConnect, ScenarioEcho, ScenarioPubSub, ScenarioSSE, ScenarioChurn}

// MaxConnsPerWorker is how many sockets "-procs auto" puts in one worker
// process: the per-process open-files limit on the hosts this runs on is
// 20000 and cannot be raised, so auto splits a run into ceil(conns/15000)
// processes, leaving headroom for epoll, eventfd, pipes and the runtime. An
// explicit -procs N may fill a worker up to workerCap (the open-files limit
// less workerFileReserve): fewer processes for a very large run, each of which
// costs a Go runtime and a loop per CPU.
const MaxConnsPerWorker = 15000

// workerFileReserve is the descriptors a worker keeps for everything but its
// connections (epoll, eventfds, the coordinator's pipes, the runtime).
const workerFileReserve = 512

// workerCap is the most connections an explicit -procs may put in one worker:
// this process's open-files limit (which the workers inherit; Go raises the
// soft limit to the hard one at start-up) less workerFileReserve, and never
// under MaxConnsPerWorker.
func workerCap() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur < workerFileReserve+MaxConnsPerWorker {
		return MaxConnsPerWorker
	}
	return int(min(rl.Cur-workerFileReserve, 1<<30))
}

// Config is one run's parameters. Every field comes from a command-line
// flag; the coordinator hands the whole Config to each worker as JSON. It
// is a value: immutable once a run starts, every worker and publisher
// reads its own copy.
type Config struct {
	Scenario string `json:"scenario"`
	// URL is the server's ws:// URL (http:// for the sse scenario: the stream's URL).
	URL string `json:"url"`
	// Conns is the total number of connections over all workers.
	Conns int `json:"conns"`
	// DialRate is connections per second for opening the connections
	// (<= 0: as fast as possible).
	DialRate float64 `json:"dial_rate"`
	// MsgRate is the echo scenario's total messages per second
	// (<= 0: every connection sends its next message on the echo).
	MsgRate float64 `json:"msg_rate"`
	// Hold is how long connect keeps all connections open, and how long
	// each churn connection lives before it disconnects.
	Hold time.Duration `json:"hold"`
	// Duration is the measured phase of echo, pubsub and churn.
	Duration time.Duration `json:"duration"`
	// Size is the echo message size in bytes; for pubsub, the size of each published data
	// object (padded with a "p" string member; 0 or anything below the bare {"t":..,"n":..}
	// object means no padding).
	Size int `json:"size"`
	// Channels is the number of pub/sub channels; subscriber i takes
	// channel i % Channels.
	Channels int `json:"channels"`
	// ChannelPrefix names the channels: prefix + index.
	ChannelPrefix string `json:"channel_prefix"`
	// PublishRate is the publisher's messages per second over all channels.
	PublishRate float64 `json:"publish_rate"`
	// PublishURL, when set, publishes with HTTP POST to this URL instead
	// of the WebSocket publish op.
	PublishURL string `json:"publish_url,omitempty"`
	// APIKey is sent as "Authorization: Bearer" with HTTP publishes.
	APIKey string `json:"-"`
	// Tokens are the connection tokens (-token, -token-file): connection i
	// sends Tokens[i % len(Tokens)] as "Authorization: Bearer". Never
	// written to results.
	Tokens []string `json:"-"`
	// Auth records that the run presented tokens (results and reports).
	Auth bool `json:"auth,omitempty"`
	// ServerPIDs are sampled for CPU and RSS from /proc and added up: the
	// server's processes (several for a cluster of nodes on one host).
	ServerPIDs []int `json:"server_pids,omitempty"`
	// Procs is "auto" or a worker process count.
	Procs string `json:"procs"`
	// Src is a source address range, "A-B" or a single address.
	Src string `json:"src,omitempty"`
	// Label names the server under test in results and reports.
	Label string `json:"label"`
	// Loops is the event loops per worker (0: automatic).
	Loops int `json:"loops"`
	// Timeout bounds connect plus handshake for one connection.
	Timeout time.Duration `json:"timeout"`
	// Drain bounds the wait for in-flight messages after the measured
	// phase.
	Drain time.Duration `json:"drain"`
	// Backoff is churn's reconnect schedule.
	Backoff Backoff `json:"backoff"`
	// Compression offers permessage-deflate (RFC 7692) without context takeover; messages the
	// server compresses are inflated by the driver (bench/deflate.go).
	Compression bool `json:"compression,omitempty"`
	// JSON is the result file path ("" for none).
	JSON string `json:"-"`
}

// DefaultConfig returns the defaults the command line starts from.
func DefaultConfig(scenario string) Config {
	c := Config{
		Scenario:      scenario,
		URL:           "ws://127.0.0.1:8080/",
		Conns:         1000,
		DialRate:      2000,
		Hold:          10 * time.Second,
		Duration:      10 * time.Second,
		Size:          32,
		Channels:      10,
		ChannelPrefix: "wsbench-",
		PublishRate:   100,
		Procs:         "auto",
		Timeout:       10 * time.Second,
		Drain:         5 * time.Second,
		Backoff:       DefaultBackoff,
	}
	if scenario == ScenarioChurn {
		c.Hold = time.Second
		c.DialRate = 500
	}
	return c
}

// target is a resolved ws:// URL.
type target struct {
	addr [4]byte
	port int
	host string // Host header
	path string // request target
}

func resolveTarget(ctx context.Context, raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, fmt.Errorf("-url: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "http" {
		return target{}, fmt.Errorf("-url %q: only ws:// (and http:// for sse) is supported (the driver measures the server, not TLS)", raw)
	}
	port := 80
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port <= 0 || port > 65535 {
			return target{}, fmt.Errorf("-url %q: bad port", raw)
		}
	}
	host := u.Hostname()
	var addr netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addr = a
	} else {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
		if err != nil || len(ips) == 0 {
			return target{}, fmt.Errorf("-url %q: cannot resolve %s to IPv4: %v", raw, host, err)
		}
		addr = ips[0]
	}
	addr = addr.Unmap()
	if !addr.Is4() {
		return target{}, fmt.Errorf("-url %q: IPv4 only", raw)
	}
	path := u.RequestURI()
	if path == "" {
		path = "/"
	}
	return target{addr: addr.As4(), port: port, host: u.Host, path: path}, nil
}

// Validate checks the configuration for the chosen scenario.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch c.Scenario {
	case ScenarioConnect, ScenarioEcho, ScenarioPubSub, ScenarioSSE, ScenarioChurn:
	default:
		bad("unknown scenario %q", c.Scenario)
	}
	if c.Conns <= 0 {
		bad("-conns must be positive")
	}
	if c.URL != "" {
		want := "ws://"
		if c.Scenario == ScenarioSSE {
			want = "http://"
		}
		if !strings.HasPrefix(c.URL, want) {
			bad("-url must be a %s URL for %s", want, c.Scenario)
		}
	}
	if c.Timeout <= 0 {
		bad("-timeout must be positive")
	}
	if c.Loops < 0 {
		bad("-loops must not be negative")
	}
	if c.DialRate < 0 || c.MsgRate < 0 {
		bad("rates must not be negative")
	}
	if c.Drain < 0 {
		bad("-drain must not be negative")
	}
	switch c.Scenario {
	case ScenarioConnect:
		if c.Hold < 0 {
			bad("-hold must not be negative")
		}
	case ScenarioEcho:
		if c.Size < 1 || c.Size > maxFrameSize {
			bad("-size must be in [1, %d]", maxFrameSize)
		}
		if c.Duration <= 0 {
			bad("-duration must be positive")
		}
	case ScenarioPubSub, ScenarioSSE:
		if c.Scenario == ScenarioSSE && c.PublishURL == "" {
			bad("sse needs -publish-url (streams cannot publish)")
		}
		if c.Size < 0 || c.Size > maxFrameSize/2 {
			bad("-size must be in [0, %d]", maxFrameSize/2)
		}
		if c.Channels < 1 {
			bad("-channels must be at least 1")
		}
		if c.PublishRate <= 0 {
			bad("-publish-rate must be positive")
		}
		if c.Duration <= 0 {
			bad("-duration must be positive")
		}
		if c.PublishURL != "" {
			u, err := url.Parse(c.PublishURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
				bad("-publish-url must be an http(s) URL")
			}
		}
		if strings.ContainsAny(c.ChannelPrefix, "\"\\") {
			bad("channel prefix must not need JSON escaping")
		}
	case ScenarioChurn:
		if c.Hold <= 0 {
			bad("-hold (connection lifetime) must be positive")
		}
		if c.Duration <= 0 {
			bad("-duration must be positive")
		}
		if c.Backoff.Base < 0 || c.Backoff.Max < c.Backoff.Base || c.Backoff.Jitter < 0 {
			bad("backoff must satisfy 0 <= base <= max and jitter >= 0")
		}
	}
	if _, err := ParseSrcRange(c.Src); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.procCount(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// procCount resolves -procs: "auto" is ceil(conns/MaxConnsPerWorker).
func (c *Config) procCount() (int, error) {
	if c.Procs == "" || c.Procs == "auto" {
		return max(1, (c.Conns+MaxConnsPerWorker-1)/MaxConnsPerWorker), nil
	}
	n, err := strconv.Atoi(c.Procs)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("-procs %q: want auto or a positive number", c.Procs)
	}
	if n > c.Conns {
		n = c.Conns
	}
	if per, most := (c.Conns+n-1)/n, workerCap(); per > most {
		return 0, fmt.Errorf("-procs %d puts %d connections in one process, over the %d per-process cap (open-files limit less %d); use -procs auto or more processes", n, per, most, workerFileReserve)
	}
	return n, nil
}

// channelName returns the name of channel i.
func (c *Config) channelName(i int) string { return c.ChannelPrefix + strconv.Itoa(i) }
