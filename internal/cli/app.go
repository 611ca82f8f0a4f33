package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/skyfleet/skyfleet/internal/demoapp"
)

// DefaultAppMetricsPort is the port of the demo app's metrics listener when
// --metrics-listen is not given: node_exporter's, which the seed's Prometheus scrapes.
const DefaultAppMetricsPort = 9100

// demoListen returns the default listen address of a demo role: $SKYFLEET_IP:port when the
// local provider set it, else 127.0.0.1:port.
func demoListen(port int) string {
	host := "127.0.0.1"
	if ip := os.Getenv("SKYFLEET_IP"); ip != "" {
		host = ip
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// appFlags holds the flags of `skyfleet app`.
type appFlags struct {
	listen        string
	metricsListen string
	db            string
	demoKey       string
	workFactor    int
	defaultURI    string
	nodeID        string
	grace         time.Duration
}

func newAppCmd(e *env) *cobra.Command {
	f := &appFlags{}
	cmd := &cobra.Command{
		Use:   "app --db URL",
		Short: "Run the demo data-transfer application (a stand-in for the seed's Data Avenue)",
		Long: `Run the demo application node role: a data-transfer service standing in for Data Avenue,
the application of the scalable-architecture tutorial.

  GET /rest/file, GET /blacktop3/rest/file
      headers X-Key (an API key, checked against the database) and X-URI (an http or https
      URL). Streams the object at X-URI to the client through a fixed buffer, forwarding
      Range, and records the transfer in the database. Every byte goes through SHA-256
      (plus --work-factor extra rounds) so that CPU use follows load; a client that sends
      "TE: trailers" gets the digest in the X-Content-SHA256 trailer.
      Without X-URI (the seed's load command leaves it empty) --default-uri is fetched.
  GET /healthz      200 when the database answers, 503 while it does not
  GET /blacktop3    the seed's health URL: 200 once the database schema is ready, 503 before
  GET /             200 once the process is up

The database is PostgreSQL (--db postgres://…; the schema is created at start) or
"memory" (keys from --demo-key only, transfers kept in memory). While the database cannot
be reached the app keeps retrying with backoff and answers 503.

Metrics at /metrics on --metrics-listen (default: the listen host, port 9100, where the
seed's Prometheus scrapes node_exporter; on a machine that runs node_exporter, pick
another port): skyfleet_app_cpu_seconds_total, skyfleet_app_bytes_total,
skyfleet_app_transfers_total{status}, skyfleet_app_active_transfers, process_* and go_*.
CPU utilisation in percent of one core: rate(skyfleet_app_cpu_seconds_total[30s]) * 100.`,
		Example: `  skyfleet app --db postgres://skyfleet@127.0.0.5:5432/skyfleet?sslmode=disable --demo-key ` + demoapp.DemoKey + `
  skyfleet app --db memory --demo-key ` + demoapp.DemoKey + ` --listen 127.0.0.1:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runApp(cmd.Context(), e, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "", "client address (default $SKYFLEET_IP:8080 when $SKYFLEET_IP is set, else 127.0.0.1:8080)")
	fl.StringVar(&f.metricsListen, "metrics-listen", "", `metrics address (default: the listen host, port 9100; "none" disables)`)
	fl.StringVar(&f.db, "db", os.Getenv("SKYFLEET_DB"), `PostgreSQL connection string, or "memory" (default $SKYFLEET_DB)`)
	fl.StringVar(&f.demoKey, "demo-key", "", "API key to insert at start (the examples use the seed's "+demoapp.DemoKey+")")
	fl.StringVar(&f.defaultURI, "default-uri", "", "object URL for requests without X-URI (the seed's load command leaves it empty)")
	fl.IntVar(&f.workFactor, "work-factor", 0, "extra SHA-256 rounds over every streamed buffer (0: each byte hashed once)")
	fl.StringVar(&f.nodeID, "node-id", os.Getenv("SKYFLEET_NODE_ID"), "node id recorded with each transfer (default $SKYFLEET_NODE_ID)")
	fl.DurationVar(&f.grace, "shutdown-grace", 10*time.Second, "how long open transfers may go on after SIGTERM")
	return cmd
}

// resolve checks the flags (all problems at once) and returns the listen addresses.
func (f *appFlags) resolve() (listen, metrics string, err error) {
	var errs []error
	listen = f.listen
	if listen == "" {
		listen = demoListen(8080)
	}
	host, _, lerr := net.SplitHostPort(listen)
	if lerr != nil {
		errs = append(errs, fmt.Errorf("--listen: %q is not host:port: %w", listen, lerr))
	}
	switch metrics = f.metricsListen; metrics {
	case "":
		metrics = net.JoinHostPort(host, strconv.Itoa(DefaultAppMetricsPort))
	case "none":
		metrics = ""
	default:
		if _, _, err := net.SplitHostPort(metrics); err != nil {
			errs = append(errs, fmt.Errorf("--metrics-listen: %q is not host:port or none: %w", metrics, err))
		}
	}
	if metrics != "" && metrics == listen {
		errs = append(errs, fmt.Errorf("--metrics-listen: %s is also the --listen address", metrics))
	}
	if strings.TrimSpace(f.db) == "" {
		errs = append(errs, errors.New(`--db: required: a PostgreSQL connection string (postgres://user@host:5432/db?sslmode=disable) or "memory" (or set $SKYFLEET_DB)`))
	}
	if f.defaultURI != "" {
		if u, err := url.Parse(f.defaultURI); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--default-uri: %q is not an absolute http or https URL", f.defaultURI))
		}
	}
	if f.workFactor < 0 || f.workFactor > 1000 {
		errs = append(errs, fmt.Errorf("--work-factor: %d is outside 0..1000", f.workFactor))
	}
	if f.grace <= 0 {
		errs = append(errs, fmt.Errorf("--shutdown-grace: %s must be positive", f.grace))
	}
	return listen, metrics, errors.Join(errs...)
}

func runApp(ctx context.Context, e *env, f *appFlags) error {
	log := e.logger().With("component", "app")
	listen, metricsListen, err := f.resolve()
	if err != nil {
		return err
	}
	var store demoapp.Store
	dbDesc := "memory"
	if f.db == "memory" {
		store = demoapp.NewMemStore(f.demoKey)
	} else {
		pg, err := demoapp.NewPGStore(demoapp.PGOptions{URL: f.db, DemoKey: f.demoKey})
		if err != nil {
			return fmt.Errorf("--db: %w", err)
		}
		defer pg.Close()
		store = pg
		dbDesc = "postgresql"
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	app := &demoapp.App{Store: store, DefaultURI: f.defaultURI, WorkFactor: f.workFactor, NodeID: f.nodeID, Logger: log, Registerer: reg}
	if err := app.Init(); err != nil {
		return err
	}
	ln, err := demoapp.Listen(ctx, listen)
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	var mln net.Listener
	if metricsListen != "" {
		if mln, err = demoapp.Listen(ctx, metricsListen); err != nil {
			_ = ln.Close()
			return fmt.Errorf("app: metrics: %w", err)
		}
	}
	log.Info("demo app listening", "listen", ln.Addr().String(), "metrics_listen", metricsListen, "db", dbDesc,
		"work_factor", f.workFactor, "node_id", f.nodeID, "demo_key", f.demoKey != "")
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return app.Serve(gctx, ln, f.grace) })
	if mln != nil {
		g.Go(func() error { return serveDemoMetrics(gctx, mln, reg) })
	}
	g.Go(func() error {
		if err := app.Run(gctx); err != nil && gctx.Err() == nil {
			return err
		}
		return nil
	})
	return g.Wait()
}

// serveDemoMetrics serves reg at /metrics on ln until ctx ends.
func serveDemoMetrics(ctx context.Context, ln net.Listener, reg *prometheus.Registry) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("metrics on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics on %s: %w", ln.Addr(), err)
	}
	return nil
}
