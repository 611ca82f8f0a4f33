package engine

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus series.
type metrics struct {
	instances *prometheus.GaugeVec
	duration  prometheus.Histogram
	errors    prometheus.Counter
	calls     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "skyfleet_instances",
			Help: "Instances per infrastructure, node and state, as of the last reconcile pass.",
		}, []string{"infra_id", "node", "state"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "skyfleet_reconcile_duration_seconds",
			Help:    "Duration of one reconcile pass of one infrastructure.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skyfleet_reconcile_errors_total",
			Help: "Reconcile passes that failed or panicked.",
		}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skyfleet_provider_calls_total",
			Help: "Provider calls by resource type, operation (create, destroy, describe, list) and outcome (ok, retryable, error).",
		}, []string{"type", "op", "outcome"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.instances, m.duration, m.errors, m.calls} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("register engine metrics: %w (one engine per registry)", err)
			}
			return nil, fmt.Errorf("register engine metrics: %w", err)
		}
	}
	return m, nil
}

// call counts one provider call.
func (m *metrics) call(resourceType, op string, err error) {
	outcome := "ok"
	switch {
	case err == nil:
	case isRetryable(err):
		outcome = "retryable"
	default:
		outcome = "error"
	}
	m.calls.WithLabelValues(resourceType, op, outcome).Inc()
}
