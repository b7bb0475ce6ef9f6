package wsgate

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// startAdmin serves the demo page at /, the browser client at /wsgate.js, the live dashboard at
// /dashboard, /metrics, /healthz and /debug/pprof/ (and the
// application's routes) on Config.AdminAddr with net/http: this listener carries a few requests a
// second, not the data path.
func (s *Server) startAdmin() error {
	ln := s.cfg.AdminListener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.AdminAddr); err != nil {
			return fmt.Errorf("admin listener: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		s.metrics.WritePrometheus(w)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			http.Error(w, "shutting down\n", http.StatusServiceUnavailable)
			return
		}
		if app, ok := s.cfg.Handler.(Application); ok {
			if err := app.Health(); err != nil {
				// Load balancers and reconnecting clients move elsewhere meanwhile.
				http.Error(w, "unavailable: "+err.Error()+"\n", http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintf(w, "ok\nconnections %d\n", s.held.Load())
	})
	mux.HandleFunc("GET /dashboard", s.serveDashboard)            // dashboard.go: the page, no key
	mux.HandleFunc("GET /dashboard/stats", s.serveDashboardStats) // its data, behind Config.APIKey
	mux.HandleFunc("GET /{$}", s.serveDemo)                       // the demo page (demo.go); "/{$}" is "/" only, so no key
	mux.HandleFunc("GET /wsgate.js", serveClientJS)               // the browser client (clientjs.go); GET covers HEAD
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	if app, ok := s.cfg.Handler.(Application); ok {
		app.Routes(mux)
	} else {
		// Without the pub/sub gateway there is no API; say where it is rather than a bare 404.
		mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":"the publish API exists in pubsub mode (-mode pubsub)"}`+"\n")
		})
	}
	s.adminLn = ln
	s.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.adminDone = make(chan struct{})
	go func() {
		defer close(s.adminDone)
		if err := s.admin.Serve(ln); err != nil && err != http.ErrServerClosed && !s.handedOver.Load() {
			s.log.Error("admin listener failed", "err", err)
		}
	}()
	return nil
}

func (s *Server) stopAdmin() {
	if s.admin == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.admin.Shutdown(ctx)
	<-s.adminDone
}
