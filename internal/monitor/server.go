package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/prometheus/promql/parser"
)

// server holds what the HTTP handlers of one Run read.
type server struct {
	c        *components
	logger   *slog.Logger
	gatherer prometheus.Gatherer
	extURL   *url.URL
	listen   string
	now      func() time.Time
	ready    func() bool
	reload   func(context.Context) error
	parser   parser.Parser
}

// handler builds the HTTP routes of a running monitor.
func (m *Monitor) handler(c *components) http.Handler {
	s := &server{
		c:        c,
		logger:   m.logger.With("component", "web"),
		gatherer: m.gatherer,
		extURL:   m.extURL,
		listen:   m.Addr().String(),
		now:      time.Now,
		ready:    m.Ready,
		reload:   m.Reload,
		parser:   parser.NewParser(parser.Options{}),
	}
	mux := http.NewServeMux()
	(&api{s: s}).register(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprint(w, "Prometheus Server is Healthy.\n")
	})
	mux.HandleFunc("GET /-/ready", s.readyHandler)
	mux.HandleFunc("POST /-/reload", s.reloadHandler)
	mux.HandleFunc("PUT /-/reload", s.reloadHandler)
	mux.HandleFunc("GET /alerts", s.alertsPage)
	mux.HandleFunc("GET /targets", s.targetsPage)
	mux.HandleFunc("GET /graph", s.graphPage)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/alerts", http.StatusFound)
	})
	return mux
}

func (s *server) readyHandler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !s.ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprint(w, "Service Unavailable\n")
		return
	}
	_, _ = fmt.Fprint(w, "Prometheus Server is Ready.\n")
}

func (s *server) reloadHandler(w http.ResponseWriter, r *http.Request) {
	if err := s.reload(r.Context()); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}
