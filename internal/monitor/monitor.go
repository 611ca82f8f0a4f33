package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/logging"
)

// Defaults of a Monitor. The retention is short on purpose: the monitor feeds scaling
// decisions and a person watching a test, not long-term dashboards.
const (
	// DefaultRetention is how long samples are kept when Options.Retention is zero.
	DefaultRetention = 6 * time.Hour
	// DefaultListen is Prometheus' port on loopback.
	DefaultListen = "127.0.0.1:9090"
	// DefaultResendDelay is Prometheus' --rules.alert.resend-delay default.
	DefaultResendDelay = time.Minute
	// DefaultShutdownGrace bounds how long open HTTP requests are waited for at shutdown.
	DefaultShutdownGrace = 5 * time.Second
)

// Prometheus' own defaults for the query engine and the rules manager (cmd/prometheus flags).
const (
	queryTimeout      = 2 * time.Minute
	queryMaxSamples   = 50_000_000
	lookbackDelta     = 5 * time.Minute
	outageTolerance   = time.Hour
	forGracePeriod    = 10 * time.Minute
	notifierQueueSize = 10_000
	// discoveryReload throttles how often the scrape manager applies new target sets. Prometheus
	// uses 5 s; a monitor that follows scaling picks a new instance up sooner.
	discoveryReload = time.Second
)

// Options configure a Monitor. Only ConfigFile is required.
type Options struct {
	// ConfigFile is a standard Prometheus configuration file (prometheus.yml).
	ConfigFile string
	// DataDir is the TSDB directory. Empty means a temporary directory that Run removes on exit.
	DataDir string
	// Retention is how long samples are kept; zero means DefaultRetention.
	Retention time.Duration
	// Listen is the HTTP address; empty means DefaultListen. Ignored when Listener is set.
	Listen string
	// Listener, when set, is served instead of listening on Listen; Run closes it.
	Listener net.Listener
	// ExternalURL is the URL users reach this monitor at, used in alerts' generatorURL.
	// Empty means http://<listen address>/.
	ExternalURL string
	// ResendDelay is how often a still-firing alert is sent again; zero means DefaultResendDelay.
	ResendDelay time.Duration
	// ShutdownGrace bounds the wait for open HTTP requests at shutdown; zero means DefaultShutdownGrace.
	ShutdownGrace time.Duration
	// Logger receives the monitor's and Prometheus' logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the metrics of the TSDB, scrape, discovery, rules, notifier and
	// query engine. Nil means a fresh registry, which then also serves /metrics.
	Registerer prometheus.Registerer
	// Gatherer is what /metrics serves. Nil means Registerer when that is a Gatherer.
	Gatherer prometheus.Gatherer
}

// Monitor is one embedded Prometheus server. Build it with New and start it with Run.
type Monitor struct {
	opts     Options
	logger   *slog.Logger
	reg      prometheus.Registerer
	gatherer prometheus.Gatherer
	cfg      *config.Config
	extURL   *url.URL

	started  atomic.Bool
	running  atomic.Bool
	ready    atomic.Bool
	reloadCh chan chan error
	stopping chan struct{} // closed when Run starts to stop
	addrMu   sync.Mutex
	addr     net.Addr

	configSuccess     prometheus.Gauge
	configSuccessTime prometheus.Gauge
	evalIntervalMs    atomic.Int64
	ruleQueryOffset   atomic.Int64
}

// New checks opts and loads the configuration file (see LoadConfig), so that a bad file is
// reported before anything listens or writes. It starts nothing.
func New(opts Options) (*Monitor, error) {
	if opts.ConfigFile == "" {
		return nil, errors.New("new monitor: a Prometheus configuration file is required (--config.file)")
	}
	if opts.Retention < 0 {
		return nil, fmt.Errorf("new monitor: retention %s is negative", opts.Retention)
	}
	if opts.ResendDelay < 0 {
		return nil, fmt.Errorf("new monitor: resend delay %s is negative", opts.ResendDelay)
	}
	if opts.Retention == 0 {
		opts.Retention = DefaultRetention
	}
	if opts.ResendDelay == 0 {
		opts.ResendDelay = DefaultResendDelay
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = DefaultShutdownGrace
	}
	if opts.Listen == "" {
		opts.Listen = DefaultListen
	}
	if opts.Listener == nil {
		if _, _, err := net.SplitHostPort(opts.Listen); err != nil {
			return nil, fmt.Errorf("new monitor: listen address %q is not host:port: %w", opts.Listen, err)
		}
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Monitor{opts: opts, logger: logger, reloadCh: make(chan chan error), stopping: make(chan struct{})}

	m.reg, m.gatherer = opts.Registerer, opts.Gatherer
	if m.reg == nil {
		r := prometheus.NewRegistry()
		m.reg = r
		if m.gatherer == nil {
			m.gatherer = r
		}
	}
	if m.gatherer == nil {
		g, ok := m.reg.(prometheus.Gatherer)
		if !ok {
			return nil, errors.New("new monitor: a Gatherer is required when the Registerer is not one")
		}
		m.gatherer = g
	}

	listen := opts.Listen
	if opts.Listener != nil {
		listen = opts.Listener.Addr().String()
	}
	ext, err := externalURL(opts.ExternalURL, listen)
	if err != nil {
		return nil, fmt.Errorf("new monitor: %w", err)
	}
	m.extURL = ext

	cfg, err := LoadConfig(opts.ConfigFile, logger)
	if err != nil {
		return nil, fmt.Errorf("new monitor: %w", err)
	}
	m.cfg = cfg

	m.configSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "prometheus_config_last_reload_successful",
		Help: "Whether the last configuration reload attempt was successful.",
	})
	m.configSuccessTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "prometheus_config_last_reload_success_timestamp_seconds",
		Help: "Timestamp of the last successful configuration reload.",
	})
	for _, c := range []prometheus.Collector{m.configSuccess, m.configSuccessTime} {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("new monitor: register metrics: %w", err)
		}
	}
	return m, nil
}

// externalURL returns the URL the monitor is reached at: raw when given, else one built from
// the listen address (with this host's name for a wildcard address).
func externalURL(raw, listen string) (*url.URL, error) {
	if raw == "" {
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, fmt.Errorf("listen address %q is not host:port: %w", listen, err)
		}
		if host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified() {
			if h, err := os.Hostname(); err == nil {
				host = h
			}
		}
		raw = "http://" + net.JoinHostPort(host, port) + "/"
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("external URL %q is not an absolute http(s) URL", raw)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// Addr returns the address the HTTP server listens on, or nil before Run has bound it.
func (m *Monitor) Addr() net.Addr {
	m.addrMu.Lock()
	defer m.addrMu.Unlock()
	return m.addr
}

// Ready reports whether Run has applied the configuration and is serving.
func (m *Monitor) Ready() bool { return m.ready.Load() }

// Reload re-reads the configuration file and applies it to every component, as Prometheus does
// on SIGHUP or POST /-/reload. A bad file changes nothing and its error is returned. Reload
// fails when Run is not running.
func (m *Monitor) Reload(ctx context.Context) error {
	if !m.running.Load() {
		return errors.New("reload monitor configuration: the monitor is not running")
	}
	reply := make(chan error, 1)
	select {
	case m.reloadCh <- reply:
	case <-m.stopping:
		return errors.New("reload monitor configuration: the monitor is stopping")
	case <-ctx.Done():
		return fmt.Errorf("reload monitor configuration: %w", ctx.Err())
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("reload monitor configuration: %w", ctx.Err())
	}
}

// components are the Prometheus parts one Run owns.
type components struct {
	db         *tsdb.DB
	engine     *promql.Engine
	rules      *rules.Manager
	scrape     *scrape.Manager
	notifier   *notifier.Manager
	sdScrape   *discovery.Manager
	sdNotify   *discovery.Manager
	stopScrape context.CancelFunc
	stopNotify context.CancelFunc
}

// Run opens the TSDB, starts discovery, scraping, rule evaluation, notification and the HTTP
// server, and blocks until ctx is cancelled or a component fails. It then stops them in
// Prometheus' order (HTTP, rules, notifier, scrape, discovery) and closes the TSDB. Run may be
// called once.
func (m *Monitor) Run(ctx context.Context) (err error) {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("run monitor: already started")
	}
	ln := m.opts.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", m.opts.Listen); err != nil {
			return fmt.Errorf("run monitor: %w", err)
		}
	}
	defer func() { _ = ln.Close() }() // Shutdown closed it already on the normal path.
	m.addrMu.Lock()
	m.addr = ln.Addr()
	m.addrMu.Unlock()

	dir := m.opts.DataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "skyfleet-monitor-"); err != nil {
			return fmt.Errorf("run monitor: create a temporary data directory: %w", err)
		}
		defer func() {
			if rerr := os.RemoveAll(dir); rerr != nil {
				m.logger.Warn("remove temporary data directory", "dir", dir, "err", rerr)
			}
		}()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("run monitor: create data directory: %w", err)
	}

	c, err := m.build(dir)
	if err != nil {
		return fmt.Errorf("run monitor: %w", err)
	}
	defer func() {
		if cerr := c.db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("run monitor: close tsdb: %w", cerr)
		}
	}()

	var wg sync.WaitGroup
	fatal := make(chan error, 8)
	goRun := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				fatal <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	stopped := false
	stop := func(srv *http.Server) {
		if stopped {
			return
		}
		stopped = true
		m.ready.Store(false)
		close(m.stopping)
		if srv != nil {
			sctx, cancel := context.WithTimeout(context.Background(), m.opts.ShutdownGrace)
			if err := srv.Shutdown(sctx); err != nil {
				m.logger.Warn("http shutdown", "err", err)
				_ = srv.Close()
			}
			cancel()
		}
		// Rules stop before the notifier (their last alerts are still sent) and scraping
		// stops before the TSDB closes (no appends to a closed storage).
		c.rules.Stop()
		c.notifier.Stop()
		c.scrape.Stop()
		c.stopScrape()
		c.stopNotify()
		wg.Wait()
		c.scrape.UnregisterMetrics()
		c.sdScrape.UnregisterMetrics()
		c.sdNotify.UnregisterMetrics()
	}
	defer stop(nil)

	// Every manager runs before the first configuration is applied: the TSDB is already open,
	// the managers only act once configured, and their Stop methods expect a running Run (the
	// rules manager's Stop would wait forever for groups that never started).
	goRun("scrape discovery", func() error { return ignoreCanceled(c.sdScrape.Run()) })
	goRun("notify discovery", func() error { return ignoreCanceled(c.sdNotify.Run()) })
	goRun("scrape manager", func() error { return c.scrape.Run(c.sdScrape.SyncCh()) })
	goRun("notifier", func() error { c.notifier.Run(c.sdNotify.SyncCh()); return nil })
	goRun("rules manager", func() error { c.rules.Run(); return nil })

	if err := m.apply(c, m.cfg); err != nil {
		m.configSuccess.Set(0)
		return fmt.Errorf("run monitor: apply configuration %s: %w", m.opts.ConfigFile, err)
	}
	m.configSuccess.Set(1)
	m.configSuccessTime.SetToCurrentTime()

	srv := &http.Server{
		Handler:           m.handler(c),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(m.logger.Handler(), slog.LevelWarn),
	}
	goRun("http server", func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	defer stop(srv)

	m.running.Store(true)
	defer m.running.Store(false)
	m.ready.Store(true)
	m.logger.Info("monitor ready", "listen", ln.Addr().String(), "data_dir", dir,
		"retention", m.opts.Retention.String(), "config_file", m.opts.ConfigFile)

	for {
		select {
		case <-ctx.Done():
			m.logger.Info("monitor stopping")
			stop(srv)
			return nil
		case err := <-fatal:
			m.logger.Error("monitor component failed", "err", err)
			stop(srv)
			return fmt.Errorf("run monitor: %w", err)
		case reply := <-m.reloadCh:
			reply <- m.reload(c)
		}
	}
}

// build opens the TSDB and constructs every component on it, wired as cmd/prometheus does.
func (m *Monitor) build(dir string) (*components, error) {
	l := m.logger
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = m.opts.Retention.Milliseconds()
	db, err := tsdb.Open(dir, l.With("component", "tsdb"), m.reg, opts, nil)
	if err != nil {
		return nil, fmt.Errorf("open tsdb in %s: %w", dir, err)
	}
	fail := func(err error) (*components, error) {
		if cerr := db.Close(); cerr != nil {
			l.Warn("close tsdb", "err", cerr)
		}
		return nil, err
	}
	c := &components{db: db}
	m.evalIntervalMs.Store(time.Duration(m.cfg.GlobalConfig.EvaluationInterval).Milliseconds())
	c.engine = promql.NewEngine(promql.EngineOpts{
		Logger:                   l.With("component", "query engine"),
		Reg:                      m.reg,
		MaxSamples:               queryMaxSamples,
		Timeout:                  queryTimeout,
		LookbackDelta:            lookbackDelta,
		NoStepSubqueryIntervalFn: func(int64) int64 { return m.evalIntervalMs.Load() },
		EnableAtModifier:         true,
		EnableNegativeOffset:     true,
	})
	c.notifier = notifier.NewManager(&notifier.Options{
		QueueCapacity:   notifierQueueSize,
		DrainOnShutdown: true,
		Registerer:      m.reg,
	}, m.cfg.GlobalConfig.MetricNameValidationScheme, l.With("component", "notifier"))

	sdMetrics, err := discovery.CreateAndRegisterSDMetrics(m.reg)
	if err != nil {
		return fail(fmt.Errorf("register service discovery metrics: %w", err))
	}
	scrapeCtx, stopScrape := context.WithCancel(context.Background())
	notifyCtx, stopNotify := context.WithCancel(context.Background())
	c.stopScrape, c.stopNotify = stopScrape, stopNotify
	c.sdScrape = discovery.NewManager(scrapeCtx, l.With("component", "discovery manager scrape"), m.reg, sdMetrics, discovery.Name("scrape"))
	c.sdNotify = discovery.NewManager(notifyCtx, l.With("component", "discovery manager notify"), m.reg, sdMetrics, discovery.Name("notify"))
	if c.sdScrape == nil || c.sdNotify == nil {
		stopScrape()
		stopNotify()
		return fail(errors.New("create discovery managers: their metrics could not be registered"))
	}
	c.scrape, err = scrape.NewManager(&scrape.Options{DiscoveryReloadInterval: model.Duration(discoveryReload)},
		l.With("component", "scrape manager"), logging.NewJSONFileLogger, nil, db, m.reg)
	if err != nil {
		stopScrape()
		stopNotify()
		return fail(fmt.Errorf("create scrape manager: %w", err))
	}
	m.ruleQueryOffset.Store(int64(m.cfg.GlobalConfig.RuleQueryOffset))
	c.rules = rules.NewManager(&rules.ManagerOptions{
		NameValidationScheme:   m.cfg.GlobalConfig.MetricNameValidationScheme,
		AppendableV2:           db,
		Queryable:              db,
		QueryFunc:              rules.EngineQueryFunc(c.engine, db),
		NotifyFunc:             rules.SendAlerts(c.notifier, m.extURL.String()),
		Context:                context.Background(),
		ExternalURL:            m.extURL,
		Registerer:             m.reg,
		Logger:                 l.With("component", "rule manager"),
		OutageTolerance:        outageTolerance,
		ForGracePeriod:         forGracePeriod,
		ResendDelay:            m.opts.ResendDelay,
		DefaultRuleQueryOffset: func() time.Duration { return time.Duration(m.ruleQueryOffset.Load()) },
	})
	return c, nil
}

// apply hands cfg to every component in cmd/prometheus' reload order: the scrape and
// notifier managers before their discovery managers, so new targets meet the new config.
func (m *Monitor) apply(c *components, cfg *config.Config) error {
	var errs []error
	if err := c.scrape.ApplyConfig(cfg); err != nil {
		errs = append(errs, fmt.Errorf("scrape: %w", err))
	}
	scfgs, err := cfg.GetScrapeConfigs()
	if err != nil {
		errs = append(errs, fmt.Errorf("scrape configs: %w", err))
	} else {
		sd := make(map[string]discovery.Configs, len(scfgs))
		for _, sc := range scfgs {
			sd[sc.JobName] = sc.ServiceDiscoveryConfigs
		}
		if err := c.sdScrape.ApplyConfig(sd); err != nil {
			errs = append(errs, fmt.Errorf("scrape discovery: %w", err))
		}
	}
	if err := c.notifier.ApplyConfig(cfg); err != nil {
		errs = append(errs, fmt.Errorf("notifier: %w", err))
	}
	nd := make(map[string]discovery.Configs)
	for k, v := range cfg.AlertingConfig.AlertmanagerConfigs.ToMap() {
		nd[k] = v.ServiceDiscoveryConfigs
	}
	if err := c.sdNotify.ApplyConfig(nd); err != nil {
		errs = append(errs, fmt.Errorf("notify discovery: %w", err))
	}
	var files []string
	for _, pat := range cfg.RuleFiles {
		fs, err := filepath.Glob(pat)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule_files pattern %q: %w", pat, err))
			continue
		}
		files = append(files, fs...)
	}
	if err := c.rules.Update(time.Duration(cfg.GlobalConfig.EvaluationInterval), files,
		cfg.GlobalConfig.ExternalLabels, m.extURL.String(), nil); err != nil {
		errs = append(errs, fmt.Errorf("rules: %w", err))
	}
	m.evalIntervalMs.Store(time.Duration(cfg.GlobalConfig.EvaluationInterval).Milliseconds())
	m.ruleQueryOffset.Store(int64(cfg.GlobalConfig.RuleQueryOffset))
	return errors.Join(errs...)
}

// reload loads the configuration file again and applies it; a file that does not load
// leaves the running configuration as it was.
func (m *Monitor) reload(c *components) error {
	m.logger.Info("reloading configuration", "config_file", m.opts.ConfigFile)
	cfg, err := LoadConfig(m.opts.ConfigFile, m.logger)
	if err == nil {
		err = m.apply(c, cfg)
	}
	if err != nil {
		m.configSuccess.Set(0)
		m.logger.Error("configuration reload failed", "config_file", m.opts.ConfigFile, "err", err)
		return fmt.Errorf("reload monitor configuration: %w", err)
	}
	m.configSuccess.Set(1)
	m.configSuccessTime.SetToCurrentTime()
	m.logger.Info("configuration reloaded", "config_file", m.opts.ConfigFile)
	return nil
}

// ignoreCanceled drops the context.Canceled a discovery manager returns when it is stopped.
func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
