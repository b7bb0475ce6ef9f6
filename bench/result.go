package bench

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ResultVersion is bumped when the meaning of a result field changes.
// Version 2: drops no longer count the disconnects the driver asked for
// (client_closes does), and reason keys carry the server's close reason or
// the error as a detail.
const ResultVersion = 2

// Result is the full outcome of one run; -json writes it and report reads
// it. Counters from several workers are summed by Merge and histograms are
// merged bucket by bucket, so an aggregated result equals the one a single
// process would have produced.
//
// A Result, and every struct it holds, is plain data owned by one goroutine
// at a time: a worker fills its own and hands it over; the coordinator
// merges them on its goroutine. No field is shared or atomic.
type Result struct {
	Version  int       `json:"version"`
	Scenario string    `json:"scenario"`
	Label    string    `json:"label"`
	URL      string    `json:"url"`
	Start    time.Time `json:"start"`
	Procs    int       `json:"procs"`
	Conns    int       `json:"conns"`
	Config   Config    `json:"config"`

	// Connection attempts.
	Attempts    int64 `json:"attempts"`
	Opened      int64 `json:"opened"`
	Failed      int64 `json:"failed"`
	Disconnects int64 `json:"disconnects"`
	OpenAtEnd   int64 `json:"open_at_end"`
	// Failures counts failed attempts and Drops the disconnects the driver
	// did not ask for, by reason key (see reasons.go): HTTP status, close
	// code and reason, errno. ClientCloses counts the disconnects it asked
	// for (churn's -hold), which are not problems.
	Failures     map[string]int64 `json:"failures"`
	Drops        map[string]int64 `json:"drops"`
	ClientCloses int64            `json:"client_closes"`
	// FirstDial and LastOpen are wall-clock Unix nanoseconds, comparable
	// across worker processes on one host.
	FirstDial      int64       `json:"first_dial_unix_ns"`
	LastOpen       int64       `json:"last_open_unix_ns"`
	AllOpen        bool        `json:"all_open"`
	TimeToAllOpenS float64     `json:"time_to_all_open_s"`
	ConnectRate    float64     `json:"connect_rate"`
	Handshake      *Histogram  `json:"handshake_hist,omitempty"`
	HandshakeUs    Percentiles `json:"handshake"`
	PingsAnswered  int64       `json:"pings_answered"`
	// With -compression: connections that agreed on permessage-deflate and compressed messages
	// received. BytesIn is every byte the driver's sockets read (the wire, headers included).
	Deflated     int64 `json:"deflate_conns"`
	CompressedIn int64 `json:"compressed_msgs_in"`
	BytesIn      int64 `json:"bytes_in"`

	// The measured phase: ops are round trips (echo), deliveries
	// (pubsub), opened connections (connect) or reconnects (churn).
	MeasuredS      float64     `json:"measured_s"`
	Ops            int64       `json:"ops"`
	Throughput     float64     `json:"throughput"`
	ThroughputUnit string      `json:"throughput_unit"`
	Latency        *Histogram  `json:"latency_hist,omitempty"`
	LatencyUs      Percentiles `json:"latency"`

	// DriverCPUSeconds is the load driver's own CPU time (all its
	// processes) during the measured phase: on a shared machine it is CPU
	// the server did not get. DriverCPUMicrosPerOp divides it by Ops.
	DriverCPUSeconds     float64 `json:"driver_cpu_s"`
	DriverCPUMicrosPerOp float64 `json:"driver_cpu_us_per_op"`

	Echo   *EchoCounts   `json:"echo,omitempty"`
	PubSub *PubSubCounts `json:"pubsub,omitempty"`
	Churn  *ChurnCounts  `json:"churn,omitempty"`
	Server *ServerStats  `json:"server,omitempty"`

	Warnings []string `json:"warnings,omitempty"`
}

// EchoCounts are the echo scenario's message counters.
type EchoCounts struct {
	Size int `json:"size"`
	// TargetRate is -rate (0: closed loop, as fast as possible).
	TargetRate float64 `json:"target_rate"`
	Sent       int64   `json:"sent"`
	Received   int64   `json:"received"`
	// Lost are messages in flight on a connection that closed, or still
	// unanswered when the drain time ran out.
	Lost       int64 `json:"lost"`
	Mismatched int64 `json:"mismatched"` // echo differs from what was sent
	Unexpected int64 `json:"unexpected"` // message with nothing in flight
	// Behind counts paced sends skipped because every connection still
	// had a message in flight (the target rate was not reachable).
	Behind int64 `json:"behind"`
}

// PubSubCounts are the pubsub scenario's counters. Lost and Duplicated come
// from the per-channel sequence numbers.
type PubSubCounts struct {
	Channels        int   `json:"channels"`
	Subscribed      int64 `json:"subscribed"`
	SubscribeErrors int64 `json:"subscribe_errors"`
	Published       int64 `json:"published"`
	PublishAcked    int64 `json:"publish_acked"`
	PublishErrors   int64 `json:"publish_errors"`
	// PublishErrorReasons counts the publish errors by cause: the HTTP
	// status and body, the code and reason of a WebSocket error message,
	// the publisher's connection closing.
	PublishErrorReasons map[string]int64 `json:"publish_error_reasons,omitempty"`
	// PublisherClosed says why the WebSocket publisher's connection
	// closed during the run; "" when it did not.
	PublisherClosed   string `json:"publisher_closed,omitempty"`
	PublishDuplicates int64  `json:"publish_duplicates"`
	// ServerDelivered sums the "delivered" counts the server reported
	// for HTTP publishes (0 for WebSocket publishes).
	ServerDelivered int64 `json:"server_delivered"`
	// PublishCallUs is the time from an HTTP publish request to its answer
	// (the publisher's view of the API's latency); nil for WebSocket
	// publishes.
	PublishCallUs *Percentiles `json:"publish_call_us,omitempty"`
	// Expected deliveries: for every subscriber, the messages published
	// on its channel after its subscription was acknowledged.
	Expected   int64 `json:"expected"`
	Delivered  int64 `json:"delivered"` // distinct in-order deliveries
	Lost       int64 `json:"lost"`
	Duplicated int64 `json:"duplicated"` // seq not above the last one seen
	Unexpected int64 `json:"unexpected"` // messages before a subscription ack
	// ErrorReasons counts the error messages subscribers received
	// ({"op":"error"}), refused subscriptions included, by code and reason.
	ErrorReasons map[string]int64 `json:"error_reasons,omitempty"`
	// Tally holds per-channel sums that workers hand to the coordinator
	// to compute Expected and Lost.
	Tally []ChannelTally `json:"tally,omitempty"`
	// Final is each channel's last sequence number at the end.
	Final []int64 `json:"final_seq,omitempty"`
}

// ChannelTally sums one channel's subscribers.
type ChannelTally struct {
	Subs    int64 `json:"subs"`     // subscriptions acknowledged
	SumBase int64 `json:"sum_base"` // sum of the seq in their acks
}

// ChurnCounts are the churn scenario's counters.
type ChurnCounts struct {
	Connects      int64   `json:"connects"`   // successful opens, first ones included
	Reconnects    int64   `json:"reconnects"` // successful opens after the first
	ReconnectRate float64 `json:"reconnect_rate"`
}

// ServerStats are the server process's resource use from /proc, sampled at
// the start of the run (before any connection), when setup finished, and at
// the end of the measured phase. The coordinator goroutine fills it.
type ServerStats struct {
	PIDs  []int      `json:"pids"` // every sample adds up these processes
	Start ProcSample `json:"start"`
	Setup ProcSample `json:"setup"`
	End   ProcSample `json:"end"`
	// CPUSeconds is server CPU in the measured phase (connect: while
	// connecting); CPUMicrosPerOp divides it by Ops.
	CPUSeconds     float64 `json:"cpu_s"`
	CPUMicrosPerOp float64 `json:"cpu_us_per_op"`
	// RSSPerConn divides the growth of the server's RSS from Start to End
	// by the connections open at the end. It is set only when that can be
	// measured: both samples taken, connections open, RSS grown. Otherwise
	// it is 0 and RSSNote says why.
	RSSPerConn float64 `json:"rss_per_conn"`
	RSSNote    string  `json:"rss_note,omitempty"`
}

// noServerPID is the summary's note when the server was not sampled.
const noServerPID = "no -server-pid: the server's memory was not sampled"

// memPerConn sets RSSPerConn, or RSSNote when the growth of RSS per
// connection cannot be measured. A shrinking RSS (the server freed other
// memory meanwhile: a GC returning pages, a cache emptied) hides the
// connections' share, so it gives no number rather than a negative one.
func (s *ServerStats) memPerConn(openAtEnd int64) {
	s.RSSPerConn, s.RSSNote = 0, ""
	switch {
	case s.Start.RSS <= 0 || s.End.RSS <= 0:
		s.RSSNote = "the server's RSS could not be sampled at the start and the end"
	case openAtEnd <= 0:
		s.RSSNote = "no connection was open at the end"
	case s.End.RSS <= s.Start.RSS:
		s.RSSNote = fmt.Sprintf("the server's RSS did not grow (%d to %d bytes): it freed other memory meanwhile, so the connections' share is unknown",
			s.Start.RSS, s.End.RSS)
	default:
		s.RSSPerConn = float64(s.End.RSS-s.Start.RSS) / float64(openAtEnd)
	}
}

// Merge adds a worker's partial result o into r.
func (r *Result) Merge(o *Result) {
	r.Attempts += o.Attempts
	r.Opened += o.Opened
	r.Failed += o.Failed
	r.Disconnects += o.Disconnects
	r.OpenAtEnd += o.OpenAtEnd
	r.PingsAnswered += o.PingsAnswered
	r.Deflated += o.Deflated
	r.CompressedIn += o.CompressedIn
	r.BytesIn += o.BytesIn
	r.DriverCPUSeconds += o.DriverCPUSeconds
	r.Failures = mergeCounts(r.Failures, o.Failures)
	r.Drops = mergeCounts(r.Drops, o.Drops)
	r.ClientCloses += o.ClientCloses
	if o.FirstDial != 0 && (r.FirstDial == 0 || o.FirstDial < r.FirstDial) {
		r.FirstDial = o.FirstDial
	}
	r.LastOpen = max(r.LastOpen, o.LastOpen)
	r.Handshake = mergeHist(r.Handshake, o.Handshake)
	r.Latency = mergeHist(r.Latency, o.Latency)
	r.Warnings = append(r.Warnings, o.Warnings...)
	if o.Echo != nil {
		if r.Echo == nil {
			r.Echo = &EchoCounts{Size: o.Echo.Size, TargetRate: o.Echo.TargetRate}
		}
		e, x := r.Echo, o.Echo
		e.Sent += x.Sent
		e.Received += x.Received
		e.Lost += x.Lost
		e.Mismatched += x.Mismatched
		e.Unexpected += x.Unexpected
		e.Behind += x.Behind
	}
	if o.PubSub != nil {
		if r.PubSub == nil {
			r.PubSub = &PubSubCounts{Channels: o.PubSub.Channels}
		}
		p, x := r.PubSub, o.PubSub
		p.Subscribed += x.Subscribed
		p.SubscribeErrors += x.SubscribeErrors
		p.Delivered += x.Delivered
		p.Duplicated += x.Duplicated
		p.Unexpected += x.Unexpected
		p.ErrorReasons = mergeCounts(p.ErrorReasons, x.ErrorReasons)
		if len(p.Tally) < len(x.Tally) {
			p.Tally = append(p.Tally, make([]ChannelTally, len(x.Tally)-len(p.Tally))...)
		}
		for i, t := range x.Tally {
			p.Tally[i].Subs += t.Subs
			p.Tally[i].SumBase += t.SumBase
		}
	}
	if o.Churn != nil {
		if r.Churn == nil {
			r.Churn = &ChurnCounts{}
		}
		r.Churn.Connects += o.Churn.Connects
		r.Churn.Reconnects += o.Churn.Reconnects
	}
}

func mergeCounts(dst, src map[string]int64) map[string]int64 {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = make(map[string]int64, len(src))
	}
	for k, v := range src {
		dst[k] += v
	}
	return dst
}

func mergeHist(dst, src *Histogram) *Histogram {
	if src == nil {
		return dst
	}
	if dst == nil {
		dst = new(Histogram)
	}
	dst.Merge(src)
	return dst
}

// finalize derives the summary fields from the merged counters. measured is
// the length of the measured phase; samples are nil without -server-pid.
func (r *Result) finalize(measured time.Duration, srv *ServerStats) {
	r.Version = ResultVersion
	r.MeasuredS = measured.Seconds()
	if r.Handshake != nil {
		r.HandshakeUs = r.Handshake.Summary()
	}
	if r.Latency != nil {
		r.LatencyUs = r.Latency.Summary()
	}
	r.AllOpen = r.Opened >= int64(r.Conns) && r.Scenario != ScenarioChurn
	if r.FirstDial != 0 && r.LastOpen > r.FirstDial {
		span := float64(r.LastOpen-r.FirstDial) / 1e9
		r.TimeToAllOpenS = span
		r.ConnectRate = float64(r.Opened) / span
	}
	switch r.Scenario {
	case ScenarioConnect:
		r.Ops = r.Opened
		r.Throughput = r.ConnectRate
		r.ThroughputUnit = "conns/s"
	case ScenarioEcho:
		if r.Echo != nil {
			r.Ops = r.Echo.Received
		}
		r.ThroughputUnit = "msgs/s"
	case ScenarioPubSub, ScenarioSSE:
		if p := r.PubSub; p != nil {
			r.Ops = p.Delivered
			p.Expected = 0
			for i, t := range p.Tally {
				var final int64
				if i < len(p.Final) {
					final = p.Final[i]
				}
				p.Expected += t.Subs*final - t.SumBase
			}
			p.Lost = max(0, p.Expected-p.Delivered)
		}
		r.ThroughputUnit = "deliveries/s"
	case ScenarioChurn:
		if r.Churn != nil {
			r.Ops = r.Churn.Reconnects
			r.Churn.ReconnectRate = throughput(r.Churn.Reconnects, measured)
		}
		r.ThroughputUnit = "reconnects/s"
	}
	if r.Scenario != ScenarioConnect {
		r.Throughput = throughput(r.Ops, measured)
	}
	if r.Ops > 0 && r.Scenario != ScenarioConnect {
		r.DriverCPUMicrosPerOp = r.DriverCPUSeconds * 1e6 / float64(r.Ops)
	}
	if srv != nil {
		srv.CPUSeconds = float64(srv.End.CPUTicks-srv.Setup.CPUTicks) / userHZ
		if r.Scenario == ScenarioConnect {
			srv.CPUSeconds = float64(srv.Setup.CPUTicks-srv.Start.CPUTicks) / userHZ
		}
		if r.Ops > 0 {
			srv.CPUMicrosPerOp = srv.CPUSeconds * 1e6 / float64(r.Ops)
		}
		srv.memPerConn(r.OpenAtEnd)
		r.Server = srv
	}
}

// throughput is n events over d: the summary's throughput (Ops over the
// measured phase) and the rates on progress lines are both computed by it,
// so the last progress line shows the summary's number.
func throughput(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// SummaryLine formats the key results as one line of key=value pairs.
func (r *Result) SummaryLine() string {
	var b strings.Builder
	kv := func(k string, v any) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		switch x := v.(type) {
		case float64:
			b.WriteString(strconv.FormatFloat(x, 'f', fmtPrec(x), 64))
		case string:
			if x == "" || strings.ContainsAny(x, " \t\"=") {
				b.WriteString(strconv.Quote(x))
			} else {
				b.WriteString(x)
			}
		default:
			fmt.Fprint(&b, x)
		}
	}
	kv("scenario", r.Scenario)
	kv("label", r.Label)
	kv("conns", r.Conns)
	kv("procs", r.Procs)
	kv("opened", r.Opened)
	kv("failed", r.Failed)
	kv("open_at_end", r.OpenAtEnd)
	if r.Scenario == ScenarioConnect {
		kv("time_to_all_open_s", r.TimeToAllOpenS)
		kv("all_open", r.AllOpen)
	}
	kv("connect_rate", r.ConnectRate)
	kv("handshake_p50_us", r.HandshakeUs.P50)
	kv("handshake_p99_us", r.HandshakeUs.P99)
	kv("handshake_max_us", r.HandshakeUs.Max)
	if r.Scenario != ScenarioConnect {
		kv("measured_s", r.MeasuredS)
	}
	kv("throughput", r.Throughput)
	kv("unit", r.ThroughputUnit)
	if r.Config.Compression {
		kv("deflate_conns", r.Deflated)
		kv("compressed_msgs_in", r.CompressedIn)
	}
	kv("bytes_in", r.BytesIn)
	if r.Latency != nil && r.Latency.Count() > 0 {
		kv("p50_us", r.LatencyUs.P50)
		kv("p90_us", r.LatencyUs.P90)
		kv("p99_us", r.LatencyUs.P99)
		kv("p999_us", r.LatencyUs.P999)
		kv("max_us", r.LatencyUs.Max)
	}
	if e := r.Echo; e != nil {
		kv("sent", e.Sent)
		kv("received", e.Received)
		kv("lost", e.Lost)
		kv("mismatched", e.Mismatched)
		if e.TargetRate > 0 {
			kv("behind", e.Behind)
		}
	}
	if p := r.PubSub; p != nil {
		kv("subscribed", p.Subscribed)
		kv("published", p.Published)
		kv("publish_errors", p.PublishErrors)
		if c := p.PublishCallUs; c != nil {
			kv("publish_call_p50_us", c.P50)
			kv("publish_call_p99_us", c.P99)
			kv("publish_call_max_us", c.Max)
		}
		if len(p.PublishErrorReasons) > 0 {
			kv("publish_error_reasons", describeCounts(p.PublishErrorReasons))
		}
		if p.PublisherClosed != "" {
			kv("publisher_closed", p.PublisherClosed)
		}
		kv("expected", p.Expected)
		kv("delivered", p.Delivered)
		kv("lost", p.Lost)
		kv("duplicated", p.Duplicated)
		if len(p.ErrorReasons) > 0 {
			kv("server_errors", describeCounts(p.ErrorReasons))
		}
	}
	if c := r.Churn; c != nil {
		kv("connects", c.Connects)
		kv("reconnects", c.Reconnects)
		kv("reconnect_rate", c.ReconnectRate)
		kv("client_closes", r.ClientCloses)
	}
	if r.Scenario != ScenarioConnect {
		kv("driver_cpu_s", r.DriverCPUSeconds)
		kv("driver_cpu_us_per_op", r.DriverCPUMicrosPerOp)
	}
	if s := r.Server; s != nil {
		kv("server_cpu_s", s.CPUSeconds)
		kv("cpu_us_per_op", s.CPUMicrosPerOp)
		if s.End.RSS > 0 {
			kv("server_rss_bytes", s.End.RSS)
		}
	}
	// Memory per connection is a number only when it was measured.
	switch s := r.Server; {
	case s == nil:
		kv("rss_per_conn", "unmeasured")
		kv("rss_note", noServerPID)
	case s.RSSPerConn > 0:
		kv("rss_per_conn", s.RSSPerConn)
	default:
		kv("rss_per_conn", "unmeasured")
		kv("rss_note", s.RSSNote)
	}
	if len(r.Failures) > 0 {
		kv("failures", describeCounts(r.Failures))
	}
	if len(r.Drops) > 0 {
		kv("drops", describeCounts(r.Drops))
	}
	return b.String()
}

func fmtPrec(x float64) int {
	switch {
	case x == 0 || x >= 1000:
		return 0
	case x >= 10:
		return 1
	case x >= 0.1:
		return 2
	}
	return 4
}

// Problems lists what makes a run imperfect: failed connection attempts,
// disconnects the client did not ask for, and lost, duplicated, corrupted
// or unexpected messages. An empty list means every count adds up.
func Problems(r *Result) []string {
	var p []string
	add := func(n int64, what string) {
		if n > 0 {
			p = append(p, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(r.Failed, "failed connection attempts ("+describeCounts(r.Failures)+")")
	var drops int64
	for _, n := range r.Drops {
		drops += n
	}
	add(drops, "unrequested disconnects ("+describeCounts(r.Drops)+")")
	if e := r.Echo; e != nil {
		add(e.Lost, "echo messages lost")
		add(e.Mismatched, "echo messages corrupted")
		add(e.Unexpected, "unexpected echo messages")
		add(e.Sent-e.Received-e.Lost, "echo messages unaccounted for")
	}
	if s := r.PubSub; s != nil {
		add(s.Lost, "pubsub messages lost")
		add(s.Duplicated, "pubsub messages duplicated")
		add(s.Unexpected, "unexpected pubsub messages")
		add(s.PublishErrors, "publish errors ("+describeCounts(s.PublishErrorReasons)+")")
		if s.PublisherClosed != "" {
			p = append(p, "the publisher's connection was closed: "+s.PublisherClosed)
		}
		add(s.SubscribeErrors, "subscribe errors")
		var errs int64
		for _, n := range s.ErrorReasons {
			errs += n
		}
		add(errs, "error messages to subscribers ("+describeCounts(s.ErrorReasons)+")")
		add(int64(r.Conns)-s.Subscribed, "subscribers not subscribed")
	}
	for _, w := range r.Warnings {
		p = append(p, "warning: "+w)
	}
	return p
}

// Unusable lists why a run could not do its job, so that its numbers
// measure nothing: no connection opened; no echo came back; no subscription
// was acknowledged, no publish accepted or nothing delivered; no connection
// reconnected. Each entry names the cause as far as the counters know it.
// An empty list means the scenario worked at least once; Problems says how
// well.
func Unusable(r *Result) []string {
	if r.Opened == 0 {
		return []string{"no connection opened" + causes(r.Failures)}
	}
	var u []string
	switch r.Scenario {
	case ScenarioEcho:
		if e := r.Echo; e == nil || e.Received == 0 {
			var sent int64
			if e != nil {
				sent = e.Sent
			}
			u = append(u, fmt.Sprintf("no echo came back (%d sent)", sent)+causes(r.Drops))
		}
	case ScenarioPubSub, ScenarioSSE:
		p := r.PubSub
		if p == nil {
			return []string{"the run ended before pub/sub started"}
		}
		if p.Subscribed == 0 {
			why := p.ErrorReasons
			if len(why) == 0 {
				why = r.Drops
			}
			u = append(u, "no subscription was acknowledged"+causes(why))
		}
		closed := ""
		if p.PublisherClosed != "" {
			closed = "; the publisher's connection was closed: " + p.PublisherClosed
		}
		switch {
		case p.Published == 0:
			u = append(u, "nothing was published"+causes(p.PublishErrorReasons)+closed)
		case p.PublishAcked == 0:
			unanswered := p.Published - p.PublishErrors - p.PublishDuplicates
			u = append(u, fmt.Sprintf("no publish was accepted (%d sent, %d errors, %d duplicates, %d unanswered)",
				p.Published, p.PublishErrors, p.PublishDuplicates, max(0, unanswered))+causes(p.PublishErrorReasons)+closed)
		case p.Subscribed > 0 && p.Delivered == 0:
			u = append(u, fmt.Sprintf("no message reached a subscriber (%d publishes accepted)", p.PublishAcked)+causes(r.Drops))
		}
	case ScenarioChurn:
		if c := r.Churn; c == nil || c.Reconnects == 0 {
			why := r.Failures
			if len(why) == 0 {
				why = r.Drops
			}
			u = append(u, "no connection reconnected"+causes(why))
		}
	}
	return u
}

// causes renders a reason map as ": reason: N; ...", or "" when empty.
func causes(m map[string]int64) string {
	if len(m) == 0 {
		return ""
	}
	return ": " + describeCounts(m)
}
