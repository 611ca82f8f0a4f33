package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/skyfleet/skyfleet/internal/lb"
)

// DefaultLBMetricsPort is the port of the load balancer's metrics listener when
// --metrics-listen is not given: next to node_exporter's 9100, as each lb node runs both.
const DefaultLBMetricsPort = 9101

// lbFlags holds the flags of `skyfleet lb`.
type lbFlags struct {
	remote        remoteConfig
	infra         string
	backend       string
	backendPort   int
	listen        string
	tlsCert       string
	tlsKey        string
	tlsSelfSigned bool
	engine        string
	haproxy       string
	slots         int
	metricsListen string
	drainTimeout  time.Duration
	name          string
	redirectHTTP  string
}

func newLBCmd(e *env) *cobra.Command {
	f := &lbFlags{}
	cmd := &cobra.Command{
		Use:   "lb --infra ID --backend NODE --backend-port PORT",
		Short: "Run a load balancer that follows a node's ready instances",
		Long: `Run the load-balancer node role: spread client traffic over the ready instances of one node
of an infrastructure, following the orchestrator's endpoints watch stream so that scaling takes
effect at once. Removed instances are drained (no new requests, open ones finish) and the open
connections per instance are reported to the orchestrator every second, so that a scale-in
victim is destroyed only once it is idle.

Engines: "builtin" (a streaming reverse proxy in this process: HTTP/1.1, HTTP/2, websockets,
least connections) or "haproxy" (a supervised haproxy child, changed through its runtime API).

Metrics: the builtin engine serves skyfleet_lb_* metrics, the haproxy engine haproxy's own
exporter, at /metrics on --metrics-listen (default: the listen host, port 9101; "none" disables).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLB(cmd.Context(), e, f)
		},
	}
	addRemoteFlags(cmd, &f.remote)
	fl := cmd.Flags()
	fl.StringVar(&f.infra, "infra", os.Getenv("SKYFLEET_INFRA_ID"), "infrastructure id (default $SKYFLEET_INFRA_ID)")
	fl.StringVar(&f.backend, "backend", "", "name of the node whose instances receive the traffic")
	fl.IntVar(&f.backendPort, "backend-port", 0, "port the backend instances serve on")
	fl.StringVar(&f.listen, "listen", "", "client address (default $SKYFLEET_IP:80 when $SKYFLEET_IP is set, else 127.0.0.1:8080)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate (chain) to serve HTTPS with; needs --tls-key")
	fl.StringVar(&f.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fl.BoolVar(&f.tlsSelfSigned, "tls-self-signed", false, "serve HTTPS with a self-signed certificate made at start-up for the listen address")
	fl.StringVar(&f.engine, "engine", "builtin", "load-balancing engine: builtin or haproxy")
	fl.StringVar(&f.haproxy, "haproxy", "", "haproxy executable for --engine haproxy (default: haproxy in $PATH, else /usr/sbin/haproxy)")
	fl.IntVar(&f.slots, "haproxy-slots", 64, "server slots in haproxy's backend: the most instances it can hold at once")
	fl.StringVar(&f.metricsListen, "metrics-listen", "", `metrics address (default: the listen host, port 9101; "none" disables)`)
	fl.DurationVar(&f.drainTimeout, "drain-timeout", 30*time.Second, "how long a removed instance's open requests are waited for, and the shutdown grace")
	fl.StringVar(&f.redirectHTTP, "redirect-http", "", "also listen for plain HTTP here and redirect every request to the HTTPS --listen address (as the seed's lb does); needs TLS")
	fl.StringVar(&f.name, "name", "", "name of this load balancer in connection reports (default $SKYFLEET_NODE_ID, else the listen address)")
	return cmd
}

// lbSetup is a validated `skyfleet lb` configuration, ready to run.
type lbSetup struct {
	role          *lb.Role
	metricsListen string
	metrics       http.Handler // nil when the engine serves its own metrics or they are off
	redirectHTTP  string
	redirect      http.Handler // nil without --redirect-http
}

// resolve checks the flags (all problems at once) and builds the role.
func (f *lbFlags) resolve(log *slog.Logger) (*lbSetup, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if f.infra == "" {
		bad("--infra: required (or set $SKYFLEET_INFRA_ID)")
	}
	if f.backend == "" {
		bad("--backend: required: the name of the node to balance over")
	}
	if f.backendPort < 1 || f.backendPort > 65535 {
		bad("--backend-port: %d is outside 1..65535", f.backendPort)
	}
	if f.engine != "builtin" && f.engine != "haproxy" {
		bad("--engine: %q is not an engine; use builtin or haproxy", f.engine)
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		bad("--tls-cert and --tls-key: give both or neither")
	}
	if f.tlsCert != "" && f.tlsSelfSigned {
		bad("--tls-self-signed: cannot be combined with --tls-cert")
	}
	if f.slots < 1 || f.slots > 10000 {
		bad("--haproxy-slots: %d is outside 1..10000", f.slots)
	}
	if f.redirectHTTP != "" {
		if f.tlsCert == "" && !f.tlsSelfSigned {
			bad("--redirect-http: needs --tls-cert/--tls-key or --tls-self-signed (it redirects to HTTPS)")
		}
		if _, _, err := net.SplitHostPort(f.redirectHTTP); err != nil {
			bad("--redirect-http: %q is not host:port: %v", f.redirectHTTP, err)
		}
	}
	if f.drainTimeout <= 0 {
		bad("--drain-timeout: %s must be positive", f.drainTimeout)
	}
	listen := f.listen
	if listen == "" {
		listen = "127.0.0.1:8080"
		if ip := os.Getenv("SKYFLEET_IP"); ip != "" {
			listen = net.JoinHostPort(ip, "80")
		}
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		bad("--listen: %q is not host:port: %v", listen, err)
	}
	metricsListen := f.metricsListen
	switch metricsListen {
	case "":
		metricsListen = net.JoinHostPort(host, strconv.Itoa(DefaultLBMetricsPort))
	case "none":
		metricsListen = ""
	default:
		if _, _, err := net.SplitHostPort(metricsListen); err != nil {
			bad("--metrics-listen: %q is not host:port or none: %v", metricsListen, err)
		}
	}
	if metricsListen != "" && metricsListen == listen {
		bad("--metrics-listen: %s is also the client --listen address", metricsListen)
	}
	c, err := f.remote.client()
	if err != nil {
		bad("--server: %v", err)
	}
	token := strings.TrimSpace(os.Getenv("SKYFLEET_TOKEN"))
	if f.remote.tokenFile != "" {
		if token, err = readToken(f.remote.tokenFile); err != nil {
			bad("--token-file: %v", err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	var tlsCfg *tls.Config
	var pemBundle []byte
	switch {
	case f.tlsCert != "":
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		certPEM, err := os.ReadFile(f.tlsCert)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert: %w", err)
		}
		keyPEM, err := os.ReadFile(f.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-key: %w", err)
		}
		pemBundle = append(append(certPEM, '\n'), keyPEM...)
	case f.tlsSelfSigned:
		hosts := []string{host}
		if host == "" || host == "0.0.0.0" || host == "::" {
			hosts = []string{"localhost", "127.0.0.1"}
		}
		cert, bundle, err := lb.SelfSigned(hosts...)
		if err != nil {
			return nil, fmt.Errorf("--tls-self-signed: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		pemBundle = bundle
	}

	name := f.name
	if name == "" {
		name = os.Getenv("SKYFLEET_NODE_ID")
	}
	if name == "" {
		name = listen
	}
	setup := &lbSetup{metricsListen: metricsListen}
	if f.redirectHTTP != "" {
		_, port, _ := net.SplitHostPort(listen)
		setup.redirectHTTP, setup.redirect = f.redirectHTTP, httpsRedirect(port)
	}
	var eng lb.Engine
	switch f.engine {
	case "builtin":
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		b, err := lb.NewBuiltin(lb.BuiltinOptions{
			Listen: listen, TLS: tlsCfg, Logger: log, Registerer: reg, DrainTimeout: f.drainTimeout,
		})
		if err != nil {
			return nil, err
		}
		eng = b
		if metricsListen != "" {
			setup.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		}
	case "haproxy":
		h, err := lb.NewHAProxy(lb.HAProxyOptions{
			Binary: f.haproxy, Listen: listen, MetricsListen: metricsListen, TLSPEM: pemBundle,
			Slots: f.slots, DrainTimeout: f.drainTimeout, Logger: log,
		})
		if err != nil {
			return nil, err
		}
		eng = h
		setup.metricsListen = "" // haproxy serves its own exporter there
	}
	server := c.Addr()
	setup.role = &lb.Role{
		Source: &lb.WatchSource{
			Server: server, InfraID: f.infra, Node: f.backend, Port: f.backendPort, Token: token, Logger: log,
		},
		Engine:   eng,
		Reporter: &lb.Reporter{Server: server, InfraID: f.infra, Node: f.backend, Name: name, Token: token},
		Logger:   log,
	}
	log.Info("load balancer configured", "engine", f.engine, "listen", listen, "metrics_listen", metricsListen,
		"infra_id", f.infra, "node", f.backend, "backend_port", f.backendPort, "tls", tlsCfg != nil, "server", server)
	return setup, nil
}

func runLB(ctx context.Context, e *env, f *lbFlags) error {
	log := e.logger().With("component", "lb")
	setup, err := f.resolve(log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	// fail stops what already runs and returns err.
	fail := func(err error) error {
		cancel()
		_ = g.Wait()
		return err
	}
	if setup.metrics != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", setup.metrics)
		if err := serveUntilDone(ctx, g, gctx, "metrics", setup.metricsListen, mux); err != nil {
			return fail(err)
		}
	}
	if setup.redirect != nil {
		if err := serveUntilDone(ctx, g, gctx, "redirect", setup.redirectHTTP, setup.redirect); err != nil {
			return fail(err)
		}
	}
	g.Go(func() error { return setup.role.Run(gctx) })
	return g.Wait()
}

// serveUntilDone serves h on addr in g until gctx is done.
func serveUntilDone(ctx context.Context, g *errgroup.Group, gctx context.Context, what, addr string, h http.Handler) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("lb: %s listen on %s: %w", what, addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("lb: %s: %w", what, err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	return nil
}

// httpsRedirect answers every request with a permanent redirect to the same host and path
// over HTTPS on port (omitted when 443).
func httpsRedirect(port string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		if port != "443" {
			host += ":" + port
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}
