package lb

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// builtinMetrics are the built-in engine's metrics.
type builtinMetrics struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
}

var (
	descActive = prometheus.NewDesc("skyfleet_lb_active_connections",
		"Requests currently open to each backend (streams for HTTP/2, the whole connection for websockets).",
		[]string{"backend"}, nil)
	descBackends = prometheus.NewDesc("skyfleet_lb_backends",
		"Backends by state: up (receiving traffic), down (passed over after refusing a connection), draining (removed, finishing requests).",
		[]string{"state"}, nil)
)

func newBuiltinMetrics(reg prometheus.Registerer, b *Builtin) (*builtinMetrics, error) {
	m := &builtinMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skyfleet_lb_requests_total",
			Help: "Requests proxied, by backend node id and HTTP status code (backend \"none\" when no backend was available).",
		}, []string{"backend", "code"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skyfleet_lb_errors_total",
			Help: "Proxy errors by backend node id and kind: dial, dial_retried, timeout, upstream, no_backend, client_canceled.",
		}, []string{"backend", "kind"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.errors, stateCollector{b}} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Join(errors.New("register lb metrics"), err)
		}
	}
	return m, nil
}

// forget drops the series of a backend that is gone, so the label set stays bounded.
func (m *builtinMetrics) forget(id string) {
	m.requests.DeletePartialMatch(prometheus.Labels{"backend": id})
	m.errors.DeletePartialMatch(prometheus.Labels{"backend": id})
}

// stateCollector reads backend states at scrape time.
type stateCollector struct{ b *Builtin }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descActive
	ch <- descBackends
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	var up, down int
	active := map[string]int64{}
	for id, be := range b.backends {
		active[id] += be.active.Load()
		if now.Before(be.downUntil) {
			down++
		} else {
			up++
		}
	}
	for be := range b.draining {
		active[be.id] += be.active.Load()
	}
	send := func(d *prometheus.Desc, v float64, label string) {
		if m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, v, label); err == nil {
			ch <- m
		}
	}
	for id, n := range active {
		send(descActive, float64(n), id)
	}
	send(descBackends, float64(up), "up")
	send(descBackends, float64(down), "down")
	send(descBackends, float64(len(b.draining)), "draining")
}
