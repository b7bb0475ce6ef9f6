package wsgate

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/wsgate/wsgate/conn"
	"github.com/wsgate/wsgate/netpoll"
)

// The connection tests (conn/) check the engines' counters; this file checks that a scrape shows
// each counter under its metric name, summed over the loops.

// metricsServer is a Server with two loops and their engines, built by hand and never run: the
// test goroutine stands in for the loop goroutines, so every counter and the timing wheels are
// set exactly. The loops' clock is fixed at origin.
func metricsServer(t *testing.T, origin int64) *Server {
	t.Helper()
	s := &Server{metrics: metrics.NewSet()}
	for i := range 2 {
		l, err := netpoll.NewLoop(netpoll.LoopConfig{Index: i, ListenFD: -1, Now: func() int64 { return origin }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Stop(); l.Run(nil) })
		s.loops = append(s.loops, l)
		s.engines = append(s.engines, conn.NewEngine(l, conn.Config{}, Echo{}, &s.held))
	}
	s.registerMetrics()
	return s
}

// scrape returns every sample of the server's /metrics output by name (labels included).
func scrape(t *testing.T, s *Server) map[string]float64 {
	t.Helper()
	var buf bytes.Buffer
	s.Metrics().WritePrometheus(&buf)
	out := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsSumEngineCounters: every counter of conn.Stats and netpoll.LoopStats is exported
// under its metric name as the sum over the loops; wsgate_socket_errors_total is read and
// write errors together.
func TestMetricsSumEngineCounters(t *testing.T) {
	s := metricsServer(t, 0)
	type counter struct {
		metric string
		engine func(st *conn.Stats) *atomic.Uint64
		loop   func(st *netpoll.LoopStats) *atomic.Uint64
	}
	counters := []counter{
		{metric: "wsgate_handshakes_total", engine: func(st *conn.Stats) *atomic.Uint64 { return &st.Handshakes }},
		{metric: "wsgate_frames_in_total", engine: func(st *conn.Stats) *atomic.Uint64 { return &st.FramesIn }},
		{metric: "wsgate_frames_out_total", engine: func(st *conn.Stats) *atomic.Uint64 { return &st.FramesOut }},
		{metric: "wsgate_messages_in_total", engine: func(st *conn.Stats) *atomic.Uint64 { return &st.MessagesIn }},
		{metric: "wsgate_bytes_in_total", engine: func(st *conn.Stats) *atomic.Uint64 { return &st.BytesIn }},
		{metric: "wsgate_bytes_out_total", engine: func(st *conn.Stats) *atomic.Uint64 { return &st.BytesOut }},
		{metric: "wsgate_writev_calls_total", engine: func(st *conn.Stats) *atomic.Uint64 { return &st.Writev }},
		{metric: "wsgate_pings_sent_total", engine: func(st *conn.Stats) *atomic.Uint64 { return &st.PingsSent }},
		{metric: "wsgate_ping_timeouts_total", engine: func(st *conn.Stats) *atomic.Uint64 { return &st.PingTimeouts }},
		{metric: "wsgate_idle_timeouts_total", engine: func(st *conn.Stats) *atomic.Uint64 { return &st.IdleTimeouts }},
		{metric: "wsgate_close_timeouts_total", engine: func(st *conn.Stats) *atomic.Uint64 { return &st.CloseTimeouts }},
		{metric: "wsgate_slow_consumers_total", engine: func(st *conn.Stats) *atomic.Uint64 { return &st.SlowConsumers }},
		{metric: "wsgate_rate_limited_total", engine: func(st *conn.Stats) *atomic.Uint64 { return &st.RateLimited }},
		{metric: "wsgate_read_errors_total", engine: func(st *conn.Stats) *atomic.Uint64 { return &st.ReadErrors }},
		{metric: "wsgate_write_errors_total", engine: func(st *conn.Stats) *atomic.Uint64 { return &st.WriteErrors }},
		{metric: "wsgate_read_pauses_total", engine: func(st *conn.Stats) *atomic.Uint64 { return &st.ReadPauses }},
		{metric: "wsgate_pongs_sent_total", engine: func(st *conn.Stats) *atomic.Uint64 { return &st.PongsSent }},
		{metric: "wsgate_handshake_timeouts_total", engine: func(st *conn.Stats) *atomic.Uint64 { return &st.Rejects[conn.RejectTimeout] }},
		{metric: "wsgate_connections_accepted_total", loop: func(st *netpoll.LoopStats) *atomic.Uint64 { return &st.Accepted }},
		{metric: "wsgate_accept_errors_total", loop: func(st *netpoll.LoopStats) *atomic.Uint64 { return &st.AcceptErrors }},
		{metric: "wsgate_accept_pauses_total", loop: func(st *netpoll.LoopStats) *atomic.Uint64 { return &st.AcceptPauses }},
		{metric: "wsgate_loop_wakeups_total", loop: func(st *netpoll.LoopStats) *atomic.Uint64 { return &st.Wakeups }},
		{metric: "wsgate_stale_events_total", loop: func(st *netpoll.LoopStats) *atomic.Uint64 { return &st.StaleEvents }},
	}
	for i, name := range conn.RejectNames {
		counters = append(counters, counter{metric: fmt.Sprintf(`wsgate_handshake_rejects_total{reason=%q}`, name),
			engine: func(st *conn.Stats) *atomic.Uint64 { return &st.Rejects[i] }})
	}
	for i, code := range conn.CloseCodes {
		label := strconv.Itoa(int(code))
		if code == 0 {
			label = "other"
		}
		counters = append(counters,
			counter{metric: fmt.Sprintf(`wsgate_close_codes_sent_total{code=%q}`, label),
				engine: func(st *conn.Stats) *atomic.Uint64 { return &st.CloseSent[i] }},
			counter{metric: fmt.Sprintf(`wsgate_close_codes_received_total{code=%q}`, label),
				engine: func(st *conn.Stats) *atomic.Uint64 { return &st.CloseRecv[i] }})
	}
	// A different value in every counter of every loop, so that a metric reading the wrong
	// counter or only one loop shows.
	counterOf := func(c counter, k int) *atomic.Uint64 {
		if c.engine != nil {
			return c.engine(&s.engines[k].Stats)
		}
		return c.loop(&s.loops[k].Stats)
	}
	for i, c := range counters {
		for k := range s.loops {
			counterOf(c, k).Add(uint64(1000*(k+1) + i))
		}
	}
	s.held.Store(7)
	got := scrape(t, s)
	for _, c := range counters {
		var want uint64
		for k := range s.loops {
			want += counterOf(c, k).Load()
		}
		if v, ok := got[c.metric]; !ok || v != float64(want) {
			t.Errorf("%s = %v (exported %v), want %d", c.metric, v, ok, want)
		}
	}
	if want := got["wsgate_read_errors_total"] + got["wsgate_write_errors_total"]; got["wsgate_socket_errors_total"] != want {
		t.Errorf("wsgate_socket_errors_total = %v, want read + write errors, %v", got["wsgate_socket_errors_total"], want)
	}
	if got["wsgate_connections_open"] != 7 {
		t.Errorf("wsgate_connections_open = %v, want 7", got["wsgate_connections_open"])
	}
}

// TestMetricsTimingWheels: the timer metrics are the wheels' counters summed over the loops, and
// the tick lag is the worst loop's.
func TestMetricsTimingWheels(t *testing.T) {
	const origin = int64(1_000_000_000_000)
	tick := int64(netpoll.DefaultWheelTick)
	s := metricsServer(t, origin)
	timers := make([]netpoll.Timer, 5)
	for i := range timers {
		timers[i].Init(func(*netpoll.Timer, int64) {})
	}
	// Loop 0: three timers, one fired on time. Loop 1: two timers, one fired 35 ms late.
	w0, w1 := s.loops[0].Wheel(), s.loops[1].Wheel()
	w0.Schedule(&timers[0], origin+tick)
	w0.Schedule(&timers[1], origin+100*tick)
	w0.Schedule(&timers[2], origin+200*tick)
	w0.Advance(origin + tick)
	w1.Schedule(&timers[3], origin+tick)
	w1.Schedule(&timers[4], origin+100*tick)
	w1.Advance(origin + tick + int64(35*time.Millisecond))
	got := scrape(t, s)
	for name, want := range map[string]float64{
		"wsgate_timers_scheduled_total": 5,
		"wsgate_timers_fired_total":     2,
		"wsgate_timers_pending":         3,
		"wsgate_wheel_tick_lag_seconds": 0.035,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	for i := range timers {
		s.loops[i/3].Wheel().Stop(&timers[i])
	}
}

// TestMetricsPerLoop: each loop's health is exported under its loop label: passes, events,
// tasks, busy seconds, waiting tasks, connections by transport and the pass histogram with
// cumulative buckets; the queued bytes and the messages out are summed over the loops.
func TestMetricsPerLoop(t *testing.T) {
	s := metricsServer(t, 0)
	for k, l := range s.loops {
		st := &l.Stats
		st.Passes.Store(uint64(100 + k))
		st.Events.Store(uint64(200 + k))
		st.Tasks.Store(uint64(300 + k))
		st.TaskYields.Store(uint64(40 + k))
		st.BusyNanos.Store(uint64(k+1) * 1_500_000_000)
		st.PassBuckets[0].Store(uint64(1 + k))                             // <= 10 µs
		st.PassBuckets[5].Store(2)                                         // <= 1 ms
		st.PassBuckets[len(netpoll.PassBounds)].Store(uint64(3 * (k + 1))) // > 1 s
		st.PassNanos.Store(uint64(7e9 * (k + 1)))
		es := &s.engines[k].Stats
		es.Open[conn.TransportWebSocket].Store(int64(10 * (k + 1)))
		es.QueuedBytes.Store(int64(1000 * (k + 1)))
		es.FramesOut.Store(50)
		es.PingsSent.Store(4)
		es.PongsSent.Store(1)
		es.CloseSent[0].Store(2)
	}
	for range 3 {
		s.loops[1].Post(func() {})
	}
	got := scrape(t, s)
	for k := range s.loops {
		lb := fmt.Sprintf(`loop="%d"`, k)
		want := map[string]float64{
			"wsgate_loop_passes_total{" + lb + "}":                      float64(100 + k),
			"wsgate_loop_events_total{" + lb + "}":                      float64(200 + k),
			"wsgate_loop_tasks_total{" + lb + "}":                       float64(300 + k),
			"wsgate_loop_task_yields_total{" + lb + "}":                 float64(40 + k),
			"wsgate_loop_busy_seconds_total{" + lb + "}":                1.5 * float64(k+1),
			"wsgate_loop_pending_tasks{" + lb + "}":                     float64(3 * k),
			`wsgate_loop_connections{` + lb + `,transport="websocket"}`: float64(10 * (k + 1)),
			`wsgate_loop_pass_seconds_bucket{` + lb + `,le="1e-05"}`:    float64(1 + k),
			`wsgate_loop_pass_seconds_bucket{` + lb + `,le="0.0005"}`:   float64(1 + k),
			`wsgate_loop_pass_seconds_bucket{` + lb + `,le="0.001"}`:    float64(3 + k),
			`wsgate_loop_pass_seconds_bucket{` + lb + `,le="1"}`:        float64(3 + k),
			`wsgate_loop_pass_seconds_bucket{` + lb + `,le="+Inf"}`:     float64(3 + k + 3*(k+1)),
			"wsgate_loop_pass_seconds_count{" + lb + "}":                float64(3 + k + 3*(k+1)),
			"wsgate_loop_pass_seconds_sum{" + lb + "}":                  7 * float64(k+1),
		}
		for name, v := range want {
			if g, ok := got[name]; !ok || g != v {
				t.Errorf("%s = %v (exported %v), want %v", name, g, ok, v)
			}
		}
		if _, ok := got["wsgate_loop_busy_ratio{"+lb+"}"]; !ok {
			t.Errorf("wsgate_loop_busy_ratio{%s} not exported", lb)
		}
	}
	if got["wsgate_queued_bytes"] != 3000 {
		t.Errorf("wsgate_queued_bytes = %v, want 3000", got["wsgate_queued_bytes"])
	}
	if got["wsgate_messages_out_total"] != 2*(50-4-1-2) {
		t.Errorf("wsgate_messages_out_total = %v, want %v", got["wsgate_messages_out_total"], 2*(50-4-1-2))
	}
	for _, name := range []string{"process_open_fds", "process_max_fds", "go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := got[name]; !ok {
			t.Errorf("%s (WriteProcessMetrics) not exported", name)
		}
	}
}
