package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/skyfleet/skyfleet/internal/monitor"
)

// DefaultMonitorPort is Prometheus' port, which the seed's users open and browse to.
const DefaultMonitorPort = 9090

// monitorFlags holds the flags of `skyfleet monitor`; the dotted names are Prometheus' own so
// that a prometheus command line carries over.
type monitorFlags struct {
	configFile  string
	listen      string
	dataDir     string
	retention   string
	externalURL string
	resendDelay time.Duration
}

func newMonitorCmd(e *env) *cobra.Command {
	f := &monitorFlags{}
	cmd := &cobra.Command{
		Use:   "monitor --config.file prometheus.yml",
		Short: "Run the embedded Prometheus: scrape, store, evaluate rules and send alerts",
		Long: `Run the monitor node role: Prometheus' own scrape, TSDB, PromQL, rules and notifier
packages in this process, driven by a standard Prometheus configuration file.

Supported in the configuration: global, scrape_configs with static_configs and http_sd_configs
(for instance skyfleet's GET /v1/sd/prometheus), relabelling, rule_files (Prometheus 2.x format;
convert 1.x files with "skyfleet rules convert"), and alerting.alertmanagers, which may point at
skyfleet serve (POST /api/v2/alerts) or at a real Alertmanager. Other service-discovery types,
remote_write and remote_read are not supported.

HTTP: the Prometheus query API (/api/v1/query, /api/v1/query_range, /api/v1/alerts,
/api/v1/rules, /api/v1/targets, ...), /metrics, /-/healthy, /-/ready, /-/reload, and the
human-readable /alerts and /targets pages. SIGHUP or POST /-/reload re-reads the configuration.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMonitor(cmd.Context(), e, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.configFile, "config.file", "", "Prometheus configuration file (required)")
	fl.StringVar(&f.configFile, "config", "", "same as --config.file")
	fl.StringVar(&f.listen, "listen", "", "HTTP address (default $SKYFLEET_IP:9090 when $SKYFLEET_IP is set, else 127.0.0.1:9090)")
	fl.StringVar(&f.listen, "web.listen-address", "", "same as --listen")
	fl.StringVar(&f.dataDir, "storage.tsdb.path", "", "TSDB directory (default: a temporary directory removed on exit)")
	fl.StringVar(&f.dataDir, "data-dir", "", "same as --storage.tsdb.path")
	fl.StringVar(&f.retention, "storage.tsdb.retention.time", "6h", "how long samples are kept (Prometheus duration: 30m, 6h, 2d)")
	fl.StringVar(&f.externalURL, "web.external-url", "", "URL this monitor is reached at, used in alerts' generatorURL (default http://<listen>/)")
	fl.DurationVar(&f.resendDelay, "rules.alert.resend-delay", monitor.DefaultResendDelay, "how often a still-firing alert is sent again")
	return cmd
}

// options checks the flags (all problems at once) and builds the monitor's options.
func (f *monitorFlags) options(log *slog.Logger) (monitor.Options, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if f.configFile == "" {
		bad("--config.file: required: a Prometheus configuration file (prometheus.yml)")
	}
	listen := f.listen
	if listen == "" {
		listen = net.JoinHostPort("127.0.0.1", fmt.Sprint(DefaultMonitorPort))
		if ip := os.Getenv("SKYFLEET_IP"); ip != "" {
			listen = net.JoinHostPort(ip, fmt.Sprint(DefaultMonitorPort))
		}
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		bad("--listen: %q is not host:port: %v", listen, err)
	}
	retention, err := model.ParseDuration(f.retention)
	switch {
	case err != nil:
		bad("--storage.tsdb.retention.time: %q is not a duration such as 30m, 6h or 2d", f.retention)
	case retention <= 0:
		bad("--storage.tsdb.retention.time: %q must be positive", f.retention)
	}
	if f.resendDelay <= 0 {
		bad("--rules.alert.resend-delay: %s must be positive", f.resendDelay)
	}
	if len(errs) > 0 {
		return monitor.Options{}, errors.Join(errs...)
	}
	return monitor.Options{
		ConfigFile:  f.configFile,
		DataDir:     f.dataDir,
		Retention:   time.Duration(retention),
		Listen:      listen,
		ExternalURL: f.externalURL,
		ResendDelay: f.resendDelay,
		Logger:      log,
	}, nil
}

func runMonitor(ctx context.Context, e *env, f *monitorFlags) error {
	log := e.logger()
	opts, err := f.options(log)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts.Registerer, opts.Gatherer = reg, reg
	m, err := monitor.New(opts)
	if err != nil {
		return err
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return m.Run(gctx) })
	g.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-hup:
				if err := m.Reload(gctx); err != nil {
					log.Error("reload on SIGHUP", "err", err)
				}
			}
		}
	})
	return g.Wait()
}
