package consul

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/skyfleet/skyfleet/internal/registry/readyset"
	"github.com/skyfleet/skyfleet/internal/store"
)

// Defaults and names of the registrations.
const (
	// DefaultAddress is the agent address used when Options.Address is empty.
	DefaultAddress = "127.0.0.1:8500"
	// DefaultPort is the service port of a node whose variables set none of PortKeys:
	// node_exporter's, as in the seed.
	DefaultPort = 9100
	// IDPrefix starts the ID of every service skyfleet registers.
	IDPrefix = "skyfleet-"
	// Tag marks every service skyfleet registers.
	Tag = "skyfleet"
	// ServiceSuffix follows the node name in the service name (the seed's "da_cluster").
	ServiceSuffix = "_cluster"

	// CheckTCP registers a TCP connect check on the service's address and port.
	CheckTCP = "tcp"
	// CheckNone registers no check.
	CheckNone = "none"
)

// PortKeys are the node variables read, in this order, for the service port.
var PortKeys = []string{"consul_port", "metrics_port"}

// AppPortKeys are the node variables read, in this order, for the app_port meta field (the
// same lookup as the DNS server's SRV port).
var AppPortKeys = []string{"port", "app_port", "applicationport"}

// Options configures New.
type Options struct {
	// Store is where the ready instances are read from (required).
	Store store.Store
	// Hub tells the sync which infrastructures changed (an *events.Hub); nil leaves it on
	// the periodic reconcile only.
	Hub readyset.Subscriber
	// Address is the Consul agent's HTTP address: host:port, or a URL with the http or
	// https scheme (default DefaultAddress).
	Address string
	// Token is the ACL token sent with every request. It is a secret: it is never logged
	// and never appears in errors.
	Token string
	// Datacenter is passed with every request; empty uses the agent's own.
	Datacenter string
	// Logger receives the sync's messages; nil discards them.
	Logger *slog.Logger
	// Registerer receives the sync's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Resync is how often the agent's services are listed and reconciled in full even when
	// nothing changed (default 60s).
	Resync time.Duration
	// MinBackoff and MaxBackoff bound the wait before a failed sync is retried: it starts at
	// MinBackoff and doubles up to MaxBackoff (defaults 1s and 1m).
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// Check is the health check registered with each service: CheckTCP (default) or
	// CheckNone.
	Check string
	// CheckInterval and CheckTimeout configure the TCP check (defaults 10s and 5s).
	CheckInterval time.Duration
	CheckTimeout  time.Duration
	// RequestTimeout bounds each call to the agent (default 10s).
	RequestTimeout time.Duration
}

// Syncer registers ready instances with a Consul agent. Run does the work.
type Syncer struct {
	opts      Options
	log       *slog.Logger
	tracker   *readyset.Tracker
	transport *http.Transport
	agent     *api.Agent

	syncErrors prometheus.Counter
	services   prometheus.Gauge

	mu      sync.Mutex
	running bool
}

// New validates opts and returns a syncer; it contacts nothing until Run.
func New(opts Options) (*Syncer, error) {
	var errs []error
	if opts.Store == nil {
		errs = append(errs, errors.New("a store is required"))
	}
	if opts.Address == "" {
		opts.Address = DefaultAddress
	}
	if scheme, _, ok := strings.Cut(opts.Address, "://"); ok && scheme != "http" && scheme != "https" {
		errs = append(errs, fmt.Errorf("address %q: scheme %q is not allowed; want host:port, http://host:port or https://host:port", opts.Address, scheme))
	}
	switch opts.Check {
	case "":
		opts.Check = CheckTCP
	case CheckTCP, CheckNone:
	default:
		errs = append(errs, fmt.Errorf("check %q: want %q or %q", opts.Check, CheckTCP, CheckNone))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("new consul sync: %w", errors.Join(errs...))
	}
	setDefault(&opts.Resync, time.Minute)
	setDefault(&opts.MinBackoff, time.Second)
	setDefault(&opts.MaxBackoff, time.Minute)
	opts.MaxBackoff = max(opts.MaxBackoff, opts.MinBackoff)
	setDefault(&opts.CheckInterval, 10*time.Second)
	setDefault(&opts.CheckTimeout, 5*time.Second)
	setDefault(&opts.RequestTimeout, 10*time.Second)

	s := &Syncer{opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "consul")
	var err error
	s.tracker, err = readyset.New(readyset.Options{Store: opts.Store, Hub: opts.Hub, Logger: s.log})
	if err != nil {
		return nil, fmt.Errorf("new consul sync: %w", err)
	}
	// An own transport, so that Run can close its idle connections when it returns.
	s.transport = http.DefaultTransport.(*http.Transport).Clone()
	client, err := api.NewClient(&api.Config{
		Address:    opts.Address,
		Token:      opts.Token,
		Datacenter: opts.Datacenter,
		HttpClient: &http.Client{Transport: s.transport, Timeout: opts.RequestTimeout},
	})
	if err != nil {
		return nil, fmt.Errorf("new consul sync: client for %s: %w", opts.Address, err)
	}
	s.agent = client.Agent()

	s.syncErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "skyfleet_consul_sync_errors_total",
		Help: "Consul syncs that failed (each is retried with backoff).",
	})
	s.services = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "skyfleet_consul_services",
		Help: "Services skyfleet has registered with the Consul agent, as far as it knows.",
	})
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{s.syncErrors, s.services} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("new consul sync: register metrics: %w", err)
			}
		}
	}
	return s, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Run keeps the agent's skyfleet services equal to the ready instances until ctx is done,
// then returns nil; services stay registered (the next start reconciles them). Consul being
// unavailable is logged and retried, never returned. Run may be called once at a time.
func (s *Syncer) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("run consul sync: already running")
	}
	s.running = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()
	defer s.transport.CloseIdleConnections()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.tracker.Run(gctx) })
	g.Go(func() error { s.loop(gctx); return nil })
	return g.Wait()
}

// loop syncs whenever the ready set changes, reconciles in full at start, after a failure
// and every Resync, and backs off after failures.
func (s *Syncer) loop(ctx context.Context) {
	resync := time.NewTicker(s.opts.Resync)
	defer resync.Stop()
	var known map[string]*api.AgentServiceRegistration // what the agent holds, as far as we know
	full := true
	failures := 0
	wait := time.NewTimer(0)
	defer wait.Stop()
	<-wait.C

	for {
		set, next := s.tracker.Current()
		if set == nil {
			select {
			case <-ctx.Done():
				return
			case <-next:
				continue
			}
		}
		desired := s.desired(set)
		var err error
		if full {
			var listed map[string]*api.AgentServiceRegistration
			if listed, err = s.listOwn(ctx); err == nil {
				known = listed
			}
		}
		if err == nil {
			err = s.apply(ctx, desired, known)
			s.services.Set(float64(len(known)))
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			delay := Backoff(failures, s.opts.MinBackoff, s.opts.MaxBackoff)
			s.syncErrors.Inc()
			s.log.Warn("consul sync failed; retrying", "address", s.opts.Address, "error", err,
				"attempt", failures, "retry_in", delay.String())
			full = true
			wait.Reset(delay)
			select {
			case <-ctx.Done():
				return
			case <-wait.C:
			}
			continue
		}
		if failures > 0 {
			s.log.Info("consul sync recovered", "address", s.opts.Address, "after_attempts", failures)
		}
		failures, full = 0, false
		select {
		case <-ctx.Done():
			return
		case <-next:
		case <-resync.C:
			full = true
		}
	}
}

// Backoff returns the wait before retry number attempt (1 for the first): min doubled
// attempt-1 times, capped at max.
func Backoff(attempt int, minWait, maxWait time.Duration) time.Duration {
	d := minWait
	for i := 1; i < attempt && d < maxWait; i++ {
		d *= 2
	}
	return min(d, maxWait)
}

// desired builds the registration of every ready instance in set, keyed by service ID.
func (s *Syncer) desired(set *readyset.Set) map[string]*api.AgentServiceRegistration {
	out := map[string]*api.AgentServiceRegistration{}
	for _, in := range set.Infras() {
		for _, name := range in.NodeNames() {
			n := in.Nodes[name]
			port := n.Port(DefaultPort, PortKeys...)
			for _, inst := range n.Ready {
				meta := map[string]string{
					"infra_id":       in.ID,
					"node":           name,
					"node_id":        inst.NodeID,
					"skyfleet_check": s.opts.Check,
				}
				if in.Name != "" && len(in.Name) <= 512 {
					meta["infra_name"] = in.Name
				}
				if p := n.Port(0, AppPortKeys...); p != 0 {
					meta["app_port"] = strconv.Itoa(p)
				}
				reg := &api.AgentServiceRegistration{
					ID:      IDPrefix + inst.NodeID,
					Name:    name + ServiceSuffix,
					Address: inst.Address,
					Port:    port,
					Tags:    []string{Tag, "infra:" + in.ID, "node:" + name},
					Meta:    meta,
				}
				if s.opts.Check == CheckTCP {
					reg.Check = &api.AgentServiceCheck{
						Name:     "skyfleet tcp " + net.JoinHostPort(inst.Address, strconv.Itoa(port)),
						TCP:      net.JoinHostPort(inst.Address, strconv.Itoa(port)),
						Interval: s.opts.CheckInterval.String(),
						Timeout:  s.opts.CheckTimeout.String(),
					}
				}
				out[reg.ID] = reg
			}
		}
	}
	return out
}

// listOwn lists the agent's services that skyfleet registered.
func (s *Syncer) listOwn(ctx context.Context) (map[string]*api.AgentServiceRegistration, error) {
	all, err := s.agent.ServicesWithFilterOpts("", (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("list agent services: %w", err)
	}
	own := map[string]*api.AgentServiceRegistration{}
	for id, svc := range all {
		if !strings.HasPrefix(id, IDPrefix) || !slices.Contains(svc.Tags, Tag) {
			continue
		}
		own[id] = &api.AgentServiceRegistration{ID: id, Name: svc.Service, Address: svc.Address, Port: svc.Port,
			Tags: svc.Tags, Meta: svc.Meta}
	}
	return own, nil
}

// apply registers every desired service that known lacks or holds differently and
// deregisters every known service that is not desired, updating known as calls succeed. It
// stops at the first failure.
func (s *Syncer) apply(ctx context.Context, desired, known map[string]*api.AgentServiceRegistration) error {
	for _, id := range slices.Sorted(maps.Keys(known)) {
		if _, ok := desired[id]; ok {
			continue
		}
		err := s.agent.ServiceDeregisterOpts(id, (&api.QueryOptions{}).WithContext(ctx))
		if se, ok := errors.AsType[api.StatusError](err); ok && se.Code == http.StatusNotFound {
			err = nil // already gone
		}
		if err != nil {
			return fmt.Errorf("deregister service %s: %w", id, err)
		}
		gone := known[id]
		delete(known, id)
		s.log.Info("consul service deregistered", "service_id", id, "service", gone.Name,
			"infra_id", gone.Meta["infra_id"], "node", gone.Meta["node"], "node_id", strings.TrimPrefix(id, IDPrefix))
	}
	for _, id := range slices.Sorted(maps.Keys(desired)) {
		reg := desired[id]
		if cur, ok := known[id]; ok && same(cur, reg) {
			continue
		}
		err := s.agent.ServiceRegisterOpts(reg, api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx))
		if err != nil {
			return fmt.Errorf("register service %s (%s at %s): %w", id, reg.Name, net.JoinHostPort(reg.Address, strconv.Itoa(reg.Port)), err)
		}
		known[id] = reg
		s.log.Info("consul service registered", "service_id", id, "service", reg.Name,
			"infra_id", reg.Meta["infra_id"], "node", reg.Meta["node"], "node_id", reg.Meta["node_id"],
			"address", net.JoinHostPort(reg.Address, strconv.Itoa(reg.Port)))
	}
	return nil
}

// same reports whether the agent's copy a matches the wanted registration b in everything
// the agent lists back (the check is represented by the skyfleet_check meta field).
func same(a, b *api.AgentServiceRegistration) bool {
	return a.Name == b.Name && a.Address == b.Address && a.Port == b.Port &&
		slices.Equal(slices.Sorted(slices.Values(a.Tags)), slices.Sorted(slices.Values(b.Tags))) &&
		maps.Equal(a.Meta, b.Meta)
}
