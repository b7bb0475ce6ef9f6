package wsgate

import (
	"fmt"
	"io"
	"strconv"

	"github.com/VictoriaMetrics/metrics"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/conn"
	"github.com/wsgate/wsgate/netpoll"
)

// registerMetrics exposes the engines' and loops' counters in the server's metric set. Each
// metric is a function summing the per-loop atomics when scraped: the loops never touch the set.
func (s *Server) registerMetrics() {
	m := s.metrics
	sumE := func(f func(e *conn.Engine) uint64) func() float64 {
		return func() float64 {
			var t uint64
			for _, e := range s.engines {
				t += f(e)
			}
			return float64(t)
		}
	}
	sumL := func(f func(st *netpoll.LoopStats) uint64) func() float64 {
		return func() float64 {
			var t uint64
			for _, l := range s.loops {
				t += f(&l.Stats)
			}
			return float64(t)
		}
	}
	sumW := func(f func(w netpoll.WheelStats) uint64) func() float64 {
		return func() float64 {
			var t uint64
			for _, l := range s.loops {
				t += f(l.WheelStats())
			}
			return float64(t)
		}
	}
	m.NewGauge("wsgate_connections_open", func() float64 { return float64(s.held.Load()) })
	m.NewGauge("wsgate_connections_accepted_total", sumL(func(st *netpoll.LoopStats) uint64 { return st.Accepted.Load() }))
	m.NewGauge("wsgate_accept_errors_total", sumL(func(st *netpoll.LoopStats) uint64 { return st.AcceptErrors.Load() }))
	m.NewGauge("wsgate_accept_pauses_total", sumL(func(st *netpoll.LoopStats) uint64 { return st.AcceptPauses.Load() }))
	m.NewGauge("wsgate_loop_wakeups_total", sumL(func(st *netpoll.LoopStats) uint64 { return st.Wakeups.Load() }))
	m.NewGauge("wsgate_stale_events_total", sumL(func(st *netpoll.LoopStats) uint64 { return st.StaleEvents.Load() }))
	// By transport (open connections by transport: wsgate_loop_connections below).
	m.NewGauge(`wsgate_transport_opened_total{transport="websocket"}`, sumE(func(e *conn.Engine) uint64 { return e.Stats.Handshakes.Load() }))
	m.NewGauge(`wsgate_transport_opened_total{transport="sse"}`, sumE(func(e *conn.Engine) uint64 { return e.Stats.Streams.Load() }))
	m.NewGauge("wsgate_sse_events_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.EventsOut.Load() }))
	m.NewGauge("wsgate_handshakes_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.Handshakes.Load() }))
	for i, name := range conn.RejectNames {
		m.NewGauge(fmt.Sprintf(`wsgate_handshake_rejects_total{reason=%q}`, name),
			sumE(func(e *conn.Engine) uint64 { return e.Stats.Rejects[i].Load() }))
	}
	m.NewGauge("wsgate_frames_in_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.FramesIn.Load() }))
	m.NewGauge("wsgate_frames_out_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.FramesOut.Load() }))
	m.NewGauge("wsgate_messages_in_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.MessagesIn.Load() }))
	m.NewGauge("wsgate_bytes_in_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.BytesIn.Load() }))
	m.NewGauge("wsgate_bytes_out_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.BytesOut.Load() }))
	m.NewGauge("wsgate_writev_calls_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.Writev.Load() }))
	for i, code := range conn.CloseCodes {
		label := fmt.Sprint(code)
		if code == 0 {
			label = "other"
		}
		m.NewGauge(fmt.Sprintf(`wsgate_close_codes_sent_total{code=%q}`, label),
			sumE(func(e *conn.Engine) uint64 { return e.Stats.CloseSent[i].Load() }))
		m.NewGauge(fmt.Sprintf(`wsgate_close_codes_received_total{code=%q}`, label),
			sumE(func(e *conn.Engine) uint64 { return e.Stats.CloseRecv[i].Load() }))
	}
	m.NewGauge("wsgate_messages_out_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.MessagesOut() }))
	m.NewGauge("wsgate_pongs_sent_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.PongsSent.Load() }))
	m.NewGauge("wsgate_queued_bytes", func() float64 {
		var t int64
		for _, e := range s.engines {
			t += e.Stats.QueuedBytes.Load()
		}
		return float64(t)
	})
	m.NewGauge("wsgate_pings_sent_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.PingsSent.Load() }))
	m.NewGauge("wsgate_ping_timeouts_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.PingTimeouts.Load() }))
	m.NewGauge("wsgate_idle_timeouts_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.IdleTimeouts.Load() }))
	m.NewGauge("wsgate_expired_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.Expired.Load() }))
	m.NewGauge("wsgate_close_timeouts_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.CloseTimeouts.Load() }))
	m.NewGauge("wsgate_handshake_timeouts_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.Rejects[conn.RejectTimeout].Load() }))
	m.NewGauge("wsgate_slow_consumers_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.SlowConsumers.Load() }))
	m.NewGauge("wsgate_read_pauses_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.ReadPauses.Load() }))
	m.NewGauge("wsgate_queue_peak_bytes", func() float64 {
		var peak uint64
		for _, e := range s.engines {
			peak = max(peak, e.Stats.QueuePeak.Load())
		}
		return float64(peak)
	})
	m.NewGauge("wsgate_rate_limited_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.RateLimited.Load() }))
	m.NewGauge("wsgate_socket_errors_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.ReadErrors.Load() + e.Stats.WriteErrors.Load() }))
	m.NewGauge("wsgate_read_errors_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.ReadErrors.Load() }))
	m.NewGauge("wsgate_write_errors_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.WriteErrors.Load() }))
	// permessage-deflate: what compressing saved (a fanned-out message counts once, however many
	// subscribers get it) and what inflating received.
	m.NewGauge("wsgate_deflate_handshakes_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.DeflateHandshakes.Load() }))
	m.NewGauge("wsgate_compressed_messages_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.MessagesCompressed.Load() }))
	compressIn := sumE(func(e *conn.Engine) uint64 { return e.Stats.CompressBytesIn.Load() })
	compressOut := sumE(func(e *conn.Engine) uint64 { return e.Stats.CompressBytesOut.Load() })
	m.NewGauge("wsgate_compression_bytes_before_total", compressIn)
	m.NewGauge("wsgate_compression_bytes_after_total", compressOut)
	m.NewGauge("wsgate_compression_ratio", func() float64 {
		if out := compressOut(); out > 0 {
			return compressIn() / out
		}
		return 0
	})
	m.NewGauge("wsgate_inflated_messages_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.MessagesInflated.Load() }))
	m.NewGauge("wsgate_inflate_bytes_before_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.InflateBytesIn.Load() }))
	m.NewGauge("wsgate_inflate_bytes_after_total", sumE(func(e *conn.Engine) uint64 { return e.Stats.InflateBytesOut.Load() }))
	m.NewGauge("wsgate_timers_scheduled_total", sumW(func(w netpoll.WheelStats) uint64 { return w.Scheduled }))
	m.NewGauge("wsgate_timers_fired_total", sumW(func(w netpoll.WheelStats) uint64 { return w.Fired }))
	m.NewGauge("wsgate_timers_pending", sumW(func(w netpoll.WheelStats) uint64 { return uint64(w.Pending) }))
	m.NewGauge("wsgate_wheel_tick_lag_seconds", func() float64 {
		var worst float64
		for _, l := range s.loops {
			worst = max(worst, l.WheelStats().LastLag.Seconds())
		}
		return worst
	})
	s.registerLoopMetrics()
	// Go runtime (go_*) and process (process_*: CPU, memory), then the open files and their
	// limit. Counting open files walks /proc/self/fd, an entry per socket: the count is taken at
	// most every 10 s (fdCount), not at every scrape as metrics.WriteFDMetrics would.
	m.RegisterMetricsWriter(metrics.WriteProcessMetrics)
	m.RegisterMetricsWriter(func(w io.Writer) {
		var lim unix.Rlimit
		if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil {
			metrics.WriteGaugeUint64(w, "process_max_fds", lim.Cur)
		}
		metrics.WriteGaugeUint64(w, "process_open_fds", uint64(s.fds.get()))
	})
}

// registerLoopMetrics exposes each loop's health under a loop label, so that one hot loop shows
// beside idle ones: busy time and fraction, passes, events and tasks (per pass: divide their rates
// by the passes'), tasks waiting, connections by transport and the pass duration histogram
// (wsgate_loop_pass_seconds, Prometheus buckets written from the loop's own atomic counters).
func (s *Server) registerLoopMetrics() {
	m := s.metrics
	for i, l := range s.loops {
		st := &l.Stats
		e := s.engines[i]
		lb := fmt.Sprintf(`loop="%d"`, i)
		u := func(name string, f func() uint64) {
			m.NewGauge(name+"{"+lb+"}", func() float64 { return float64(f()) })
		}
		u("wsgate_loop_passes_total", st.Passes.Load)
		u("wsgate_loop_events_total", st.Events.Load)
		u("wsgate_loop_tasks_total", st.Tasks.Load)
		u("wsgate_loop_task_yields_total", st.TaskYields.Load)
		m.NewGauge("wsgate_loop_busy_seconds_total{"+lb+"}", func() float64 { return float64(st.BusyNanos.Load()) / 1e9 })
		m.NewGauge("wsgate_loop_busy_ratio{"+lb+"}", l.BusyRatio)
		m.NewGauge("wsgate_loop_pending_tasks{"+lb+"}", func() float64 { return float64(l.PendingTasks()) })
		for k, name := range conn.TransportNames {
			m.NewGauge(fmt.Sprintf(`wsgate_loop_connections{%s,transport=%q}`, lb, name),
				func() float64 { return float64(e.Stats.Open[k].Load()) })
		}
		for k := 0; k <= len(netpoll.PassBounds); k++ {
			le := "+Inf"
			if k < len(netpoll.PassBounds) {
				le = strconv.FormatFloat(netpoll.PassBounds[k].Seconds(), 'g', -1, 64)
			}
			m.NewGauge(fmt.Sprintf(`wsgate_loop_pass_seconds_bucket{%s,le=%q}`, lb, le), func() float64 {
				var c uint64
				for j := 0; j <= k; j++ {
					c += st.PassBuckets[j].Load()
				}
				return float64(c)
			})
		}
		m.NewGauge("wsgate_loop_pass_seconds_sum{"+lb+"}", func() float64 { return float64(st.PassNanos.Load()) / 1e9 })
		m.NewGauge("wsgate_loop_pass_seconds_count{"+lb+"}", func() float64 {
			var c uint64
			for j := range st.PassBuckets {
				c += st.PassBuckets[j].Load()
			}
			return float64(c)
		})
	}
}
