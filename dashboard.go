package wsgate

import (
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"html/template"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/conn"
	"github.com/wsgate/wsgate/netpoll"
	"github.com/wsgate/wsgate/pubsub"
)

// dashboardHTML is the live dashboard: one self-contained HTML file (inline CSS and JS, charts
// drawn on canvas, no external resource) that polls /dashboard/stats every second and keeps
// five minutes of samples in the browser.
//
//go:embed dashboard.html
var dashboardHTML string

// dashboardPage is parsed once and never modified afterwards; Execute is safe for concurrent use.
var dashboardPage = template.Must(template.New("dashboard.html").Parse(dashboardHTML))

// dashboardTop is how many channels each top list of the dashboard shows.
const dashboardTop = 10

// serveDashboard answers GET /dashboard with the page. The page holds no data, so it needs no
// key; its requests to /dashboard/stats carry the key the operator types. net/http goroutines.
func (s *Server) serveDashboard(w http.ResponseWriter, r *http.Request) {
	nonce := rand.Text()
	// Only the nonce'd inline script and style run, and fetch reaches this origin only.
	s.servePage(w, r, dashboardPage, struct{ Nonce string }{nonce}, nonce, "script-src 'nonce-"+nonce+"'", "connect-src 'self'")
}

// DashboardStats is the body of GET /dashboard/stats: the server's counters and gauges at one
// moment. Counters only grow; the page turns them into rates from one sample to the next.
type DashboardStats struct {
	Time          int64   `json:"time"` // Unix milliseconds
	Mode          string  `json:"mode"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	// Connections: held is every socket (handshaking too), open those past the handshake, by
	// transport.
	Connections struct {
		Held        int64            `json:"held"`
		Open        int64            `json:"open"`
		ByTransport map[string]int64 `json:"by_transport"`
	} `json:"connections"`
	Counters        map[string]uint64 `json:"counters"`
	Rejects         map[string]uint64 `json:"handshake_rejects"`
	CloseCodesSent  map[string]uint64 `json:"close_codes_sent"`
	CloseCodesRecvd map[string]uint64 `json:"close_codes_received"`
	QueuedBytes     int64             `json:"queued_bytes"`
	TimersPending   uint64            `json:"timers_pending"`
	// PassBounds are the upper bounds (seconds) of each loop's PassBuckets.
	PassBounds []float64       `json:"pass_bounds_seconds"`
	Loops      []DashboardLoop `json:"loops"`
	Process    struct {
		OpenFDs    int    `json:"open_fds"` // counted at most every 10 s
		MaxFDs     uint64 `json:"max_fds"`
		Goroutines int    `json:"goroutines"`
	} `json:"process"`
	// App is the pub/sub gateway's overview (counters, top channels, cluster), absent in other
	// modes.
	App *pubsub.Overview `json:"app,omitempty"`
}

// DashboardLoop is one loop's health.
type DashboardLoop struct {
	Loop         int              `json:"loop"`
	Connections  int64            `json:"connections"`
	ByTransport  map[string]int64 `json:"by_transport"`
	BusyRatio    float64          `json:"busy_ratio"`
	BusySeconds  float64          `json:"busy_seconds"`
	Passes       uint64           `json:"passes"`
	Events       uint64           `json:"events"`
	Tasks        uint64           `json:"tasks"`
	PendingTasks int              `json:"pending_tasks"`
	PassBuckets  []uint64         `json:"pass_buckets"` // cumulative, one per PassBounds, then +Inf
	Timers       int              `json:"timers"`
	QueuedBytes  int64            `json:"queued_bytes"`
}

// dashboardStats gathers DashboardStats. Any goroutine: it reads atomics and the goroutine-safe
// methods of the loops, engines and application.
func (s *Server) dashboardStats() *DashboardStats {
	d := &DashboardStats{Time: time.Now().UnixMilli(), Mode: s.mode(), UptimeSeconds: time.Since(s.started).Seconds()}
	d.Connections.Held = s.held.Load()
	d.Connections.ByTransport = map[string]int64{}
	d.Counters = map[string]uint64{}
	d.Rejects = map[string]uint64{}
	d.CloseCodesSent = map[string]uint64{}
	d.CloseCodesRecvd = map[string]uint64{}
	for _, b := range netpoll.PassBounds {
		d.PassBounds = append(d.PassBounds, b.Seconds())
	}
	add := func(name string, v uint64) { d.Counters[name] += v }
	for i, l := range s.loops {
		st, es := &l.Stats, &s.engines[i].Stats
		ws := l.WheelStats()
		dl := DashboardLoop{Loop: i, ByTransport: map[string]int64{}, BusyRatio: l.BusyRatio(),
			BusySeconds: float64(st.BusyNanos.Load()) / 1e9, Passes: st.Passes.Load(), Events: st.Events.Load(),
			Tasks: st.Tasks.Load(), PendingTasks: l.PendingTasks(), Timers: ws.Pending, QueuedBytes: es.QueuedBytes.Load()}
		var cum uint64
		for k := range st.PassBuckets {
			cum += st.PassBuckets[k].Load()
			dl.PassBuckets = append(dl.PassBuckets, cum)
		}
		for k, name := range conn.TransportNames {
			n := es.Open[k].Load()
			dl.ByTransport[name] = n
			dl.Connections += n
			d.Connections.ByTransport[name] += n
		}
		d.Connections.Open += dl.Connections
		d.QueuedBytes += dl.QueuedBytes
		d.TimersPending += uint64(ws.Pending)
		d.Loops = append(d.Loops, dl)
		add("accepted", st.Accepted.Load())
		add("accept_errors", st.AcceptErrors.Load())
		add("handshakes", es.Handshakes.Load())
		add("messages_in", es.MessagesIn.Load())
		add("messages_out", es.MessagesOut())
		add("bytes_in", es.BytesIn.Load())
		add("bytes_out", es.BytesOut.Load())
		add("slow_consumers", es.SlowConsumers.Load())
		add("rate_limited", es.RateLimited.Load())
		add("ping_timeouts", es.PingTimeouts.Load())
		add("idle_timeouts", es.IdleTimeouts.Load())
		add("read_pauses", es.ReadPauses.Load())
		add("socket_errors", es.ReadErrors.Load()+es.WriteErrors.Load())
		for k, name := range conn.RejectNames {
			d.Rejects[name] += es.Rejects[k].Load()
		}
		for k, code := range conn.CloseCodes {
			label := strconv.Itoa(int(code))
			if code == 0 {
				label = "other"
			}
			d.CloseCodesSent[label] += es.CloseSent[k].Load()
			d.CloseCodesRecvd[label] += es.CloseRecv[k].Load()
		}
	}
	d.Process.OpenFDs = s.fds.get()
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil {
		d.Process.MaxFDs = lim.Cur
	}
	d.Process.Goroutines = runtime.NumGoroutine()
	if p, ok := s.cfg.Handler.(*pubsub.PubSub); ok {
		o := p.Overview(dashboardTop)
		d.App = &o
	}
	return d
}

// serveDashboardStats answers GET /dashboard/stats with DashboardStats as JSON, behind
// Config.APIKey as the API is ("Authorization: Bearer <key>", 401 with a JSON error otherwise).
func (s *Server) serveDashboardStats(w http.ResponseWriter, r *http.Request) {
	if key := s.cfg.APIKey; key != "" {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, []byte("Bearer "+key)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="wsgate"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"missing or wrong API key (Authorization: Bearer <key>)"}` + "\n"))
			return
		}
	}
	b, err := json.Marshal(s.dashboardStats())
	if err != nil {
		s.log.Error("dashboard stats", "err", err)
		http.Error(w, `{"error":"encoding the stats failed"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(append(b, '\n'))
}

// fdCount counts the process's open files from /proc/self/fd at most every fdCountEvery: the
// walk costs time in proportion to the files open (a million sockets, a million entries).
type fdCount struct {
	mu sync.Mutex
	at time.Time
	n  int
}

const fdCountEvery = 10 * time.Second

func (f *fdCount) get() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now := time.Now(); f.at.IsZero() || now.Sub(f.at) >= fdCountEvery {
		if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
			f.n = len(ents) - 1 // the directory's own descriptor, open while it is read
		}
		f.at = now
	}
	return f.n
}
