package wsgate

import (
	"fmt"

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
	m.NewGauge("wsgate_loop_passes_total", sumL(func(st *netpoll.LoopStats) uint64 { return st.Passes.Load() }))
	m.NewGauge("wsgate_loop_wakeups_total", sumL(func(st *netpoll.LoopStats) uint64 { return st.Wakeups.Load() }))
	m.NewGauge("wsgate_loop_tasks_total", sumL(func(st *netpoll.LoopStats) uint64 { return st.Tasks.Load() }))
	m.NewGauge("wsgate_stale_events_total", sumL(func(st *netpoll.LoopStats) uint64 { return st.StaleEvents.Load() }))
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
}
