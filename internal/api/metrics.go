package api

import (
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's request metrics. With a nil Registerer they are created but not
// registered, so handlers never check for nil.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	panics   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, logger *slog.Logger) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skyfleet_api_requests_total",
			Help: "HTTP API requests by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "skyfleet_api_request_duration_seconds",
			Help:    "HTTP API request duration by route pattern (event streams count their whole life).",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30},
		}, []string{"route"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skyfleet_api_panics_total",
			Help: "Handler panics recovered by the HTTP API.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration, m.panics} {
			if err := reg.Register(c); err != nil {
				// A second server on the same registry keeps working, only unmeasured.
				logger.Warn("register api metrics", "err", err)
			}
		}
	}
	return m
}

// observe records one finished request. route is the mux pattern ("GET /v1/…"), so the
// label set stays bounded whatever the paths requested.
func (m *metrics) observe(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}
