package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/skyfleet/skyfleet/internal/api"
	"github.com/skyfleet/skyfleet/internal/autoscale"
	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/cloud/auth"
	"github.com/skyfleet/skyfleet/internal/cloud/docker"
	"github.com/skyfleet/skyfleet/internal/cloud/ec2"
	"github.com/skyfleet/skyfleet/internal/cloud/local"
	"github.com/skyfleet/skyfleet/internal/cloud/nova"
	"github.com/skyfleet/skyfleet/internal/cloud/sim"
	"github.com/skyfleet/skyfleet/internal/engine"
	"github.com/skyfleet/skyfleet/internal/events"
	"github.com/skyfleet/skyfleet/internal/health"
	"github.com/skyfleet/skyfleet/internal/registry"
	"github.com/skyfleet/skyfleet/internal/registry/consul"
	"github.com/skyfleet/skyfleet/internal/registry/dnsserver"
	"github.com/skyfleet/skyfleet/internal/store"
	"github.com/skyfleet/skyfleet/internal/template"
	"github.com/skyfleet/skyfleet/internal/ui"
)

// This file builds and runs the orchestrator daemon: store, providers, template renderer,
// health checker, engine and HTTP API, started and stopped together. `serve` and `up` both
// use it.

// DefaultListen is the API's default address (occopus-rest-service's default host and port).
const DefaultListen = "127.0.0.1:5000"

// shutdownGrace bounds the graceful shutdown of the HTTP server.
const shutdownGrace = 10 * time.Second

// shutdownLimit bounds the whole shutdown: past it Run returns (and the process exits) even if
// a maintenance loop is stuck in a provider call. Instances keep running either way.
const shutdownLimit = 45 * time.Second

// daemonConfig holds the flags shared by serve and up.
type daemonConfig struct {
	listen            string
	host              string
	port              int
	dataDir           string
	tokenFile         string
	insecureListenAny bool
	tlsCert, tlsKey   string
	allowTemplateCmd  bool
	strictTemplates   bool
	compatHTTPStatus  bool
	resync            time.Duration
	authData          string
	advertiseURL      string
	alertTokenFile    string
	alertStaleAfter   time.Duration
	dnsAddr           string
	dnsTTL            time.Duration
	consulAddr        string
	consulTokenFile   string
	consulDatacenter  string
	sim               sim.Options
	localRange        string
}

// addDaemonFlags registers the daemon flags on cmd. dataDirHelp differs between serve (a
// persistent default) and up (a temporary directory by default).
func addDaemonFlags(cmd *cobra.Command, c *daemonConfig, dataDirHelp string) {
	f := cmd.Flags()
	f.StringVar(&c.listen, "listen", DefaultListen, "address of the HTTP API, HOST:PORT")
	f.StringVar(&c.host, "host", "", "host part of --listen (as occopus-rest-service --host)")
	f.IntVar(&c.port, "port", 0, "port part of --listen (as occopus-rest-service --port)")
	f.StringVar(&c.dataDir, "data-dir", "", dataDirHelp)
	f.StringVar(&c.tokenFile, "token-file", "", "file holding the bearer token every route but /healthz requires")
	f.BoolVar(&c.insecureListenAny, "insecure-listen-any", false, "allow a non-loopback --listen address without --token-file")
	f.StringVar(&c.tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM); needs --tls-key")
	f.StringVar(&c.tlsKey, "tls-key", "", "private key (PEM) of --tls-cert")
	f.BoolVar(&c.allowTemplateCmd, "allow-template-cmd", false, "enable cmd() in templates, which runs commands on this host")
	f.BoolVar(&c.strictTemplates, "strict-templates", false, "make an undefined template variable an error instead of a warning")
	f.BoolVar(&c.compatHTTPStatus, "compat-http-status", false, "answer handled errors on the Occopus routes with their real HTTP status instead of Occopus' 200")
	f.DurationVar(&c.resync, "resync", engine.DefaultResync, "period of each infrastructure's maintenance pass")
	f.StringVar(&c.authData, "auth-data", "", "auth_data.yaml with cloud credentials (default: $SKYFLEET_AUTH_DATA, $OCCOPUS_AUTH_DATA_PATH, ~/.occopus/auth_data.yaml, ./auth_data.yaml, /etc/occopus/auth_data.yaml)")
	f.StringVar(&c.advertiseURL, "advertise-url", "", "URL at which nodes reach this server (template value skyfleet_server; default: the listen address)")
	f.StringVar(&c.alertTokenFile, "alert-token-file", "", "file holding a bearer token accepted on the alert routes only (/v1/alerts/alertmanager, /api/v2/alerts)")
	f.DurationVar(&c.alertStaleAfter, "alert-stale-after", 5*time.Minute, "treat a firing alert as resolved when it has not been received for this long")
	f.StringVar(&c.dnsAddr, "dns", "", "answer DNS for the zone skyfleet. on this host:port, UDP and TCP (e.g. 127.0.0.1:8600)")
	f.DurationVar(&c.dnsTTL, "dns-ttl", dnsserver.DefaultTTL, "TTL of DNS answers")
	f.StringVar(&c.consulAddr, "consul", "", "register ready instances with the Consul agent at host:port or http(s)://host:port")
	f.StringVar(&c.consulTokenFile, "consul-token-file", "", "file holding the Consul ACL token (one line)")
	f.StringVar(&c.consulDatacenter, "consul-datacenter", "", "Consul datacenter (default: the agent's)")
	f.StringVar(&c.localRange, "local-address-range", local.DefaultAddressRange, "local provider: loopback range instance addresses come from; give each server on one machine its own")
	f.DurationVar(&c.sim.BootTime, "sim-boot-time", 0, "sim provider: how long an instance stays pending (a resource's boot_time overrides it)")
	f.Float64Var(&c.sim.FailureRate, "sim-failure-rate", 0, "sim provider: probability (0..1) that an instance fails instead of booting")
	f.Float64Var(&c.sim.APIErrorRate, "sim-api-error-rate", 0, "sim provider: probability (0..1) that a provider call fails with a retryable error")
	f.DurationVar(&c.sim.Latency, "sim-latency", 0, "sim provider: latency added to every provider call")
	f.StringVar(&c.sim.AddressRange, "sim-address-range", "", "sim provider: IPv4 range instance addresses come from (default "+sim.DefaultAddressRange+")")
}

// checkSim refuses sim settings outside their ranges, all at once.
func (c *daemonConfig) checkSim() error {
	var problems []string
	for _, r := range []struct {
		flag string
		v    float64
	}{{"--sim-failure-rate", c.sim.FailureRate}, {"--sim-api-error-rate", c.sim.APIErrorRate}} {
		if r.v < 0 || r.v > 1 {
			problems = append(problems, fmt.Sprintf("%s %v: want a probability from 0 to 1", r.flag, r.v))
		}
	}
	if c.sim.BootTime < 0 || c.sim.Latency < 0 {
		problems = append(problems, "--sim-boot-time and --sim-latency must not be negative")
	}
	if c.sim.AddressRange != "" {
		if _, err := netip.ParsePrefix(c.sim.AddressRange); err != nil {
			problems = append(problems, fmt.Sprintf("--sim-address-range %q: want an IPv4 prefix such as %s", c.sim.AddressRange, sim.DefaultAddressRange))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// defaultDataDir is $XDG_STATE_HOME/skyfleet, else ~/.local/state/skyfleet.
func defaultDataDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "skyfleet"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the data directory: %w (give --data-dir)", err)
	}
	return filepath.Join(home, ".local", "state", "skyfleet"), nil
}

// listenAddr combines --listen with --host/--port.
func (c *daemonConfig) listenAddr(cmd *cobra.Command) (string, error) {
	host, port, err := net.SplitHostPort(c.listen)
	if err != nil {
		return "", fmt.Errorf("--listen %q: want HOST:PORT: %w", c.listen, err)
	}
	if cmd.Flags().Changed("host") {
		host = c.host
	}
	if cmd.Flags().Changed("port") {
		if c.port < 0 || c.port > 65535 {
			return "", fmt.Errorf("--port %d: want 0 to 65535", c.port)
		}
		port = strconv.Itoa(c.port)
	}
	return net.JoinHostPort(host, port), nil
}

// isLoopbackHost reports whether host names only loopback addresses.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// readToken reads a token file: one line, not empty.
func readToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("read token file %s: the file is empty", path)
	}
	if strings.ContainsAny(tok, "\r\n") {
		return "", fmt.Errorf("read token file %s: want one line holding the token", path)
	}
	return tok, nil
}

// daemon is a built, not yet running orchestrator.
type daemon struct {
	log      *slog.Logger
	store    store.Store
	hub      *events.Hub
	engine   *engine.Engine
	scaler   *autoscale.Autoscaler
	dns      *dnsserver.Server
	consul   *consul.Syncer
	api      *api.Server
	http     *http.Server
	listener net.Listener
	// closers release the providers after the engine stopped (instances keep running).
	closers []func() error
	// URL is the base URL clients use (http or https, the bound address).
	URL     string
	DataDir string
	Token   string
}

// newDaemon builds every part and binds the listener (so a port 0 is resolved before Run).
// On error everything opened so far is closed again.
func newDaemon(cmd *cobra.Command, c *daemonConfig, dataDir string, log *slog.Logger) (d *daemon, err error) {
	addr, err := c.listenAddr(cmd)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(addr)
	var token string
	if c.tokenFile != "" {
		if token, err = readToken(c.tokenFile); err != nil {
			return nil, err
		}
	}
	if token == "" && !isLoopbackHost(host) && !c.insecureListenAny {
		return nil, fmt.Errorf("refusing to listen on %s without authentication: give --token-file, or --insecure-listen-any to accept that anyone who reaches the port controls your infrastructures", addr)
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together: give both or neither")
	}
	var tlsConfig *tls.Config
	if c.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("load TLS certificate: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	st, err := store.Open(dataDir, store.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	hub := events.NewHub()
	d = &daemon{log: log, store: st, DataDir: dataDir, Token: token, hub: hub}
	built := d
	defer func() {
		// d is nil on the error paths (return nil, err): release through built.
		if err != nil {
			for _, c := range built.closers {
				_ = c()
			}
			hub.Close()
			_ = st.Close()
		}
	}()

	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	// Bind first, so that the URL nodes use to reach this server is known to the templates.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	d.listener = ln
	defer func() {
		if err != nil {
			_ = ln.Close()
		}
	}()
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
		d.listener = tls.NewListener(ln, tlsConfig)
	}
	d.URL = scheme + "://" + ln.Addr().String()
	advertise := c.advertiseURL
	if advertise == "" {
		advertise = d.URL
	}

	providers, err := d.providers(c, dataDir)
	if err != nil {
		return nil, err
	}
	creds, err := loadCredentials(c.authData, log)
	if err != nil {
		return nil, err
	}
	reglog := log.With("component", "registry")
	ready, err := registry.New(registry.Options{Store: st, Hub: d.hub, Logger: reglog})
	if err != nil {
		return nil, err
	}
	eng, err := engine.New(engine.Options{
		Store:        st,
		Providers:    providers,
		Hub:          d.hub,
		Renderer:     template.New(template.Options{AllowCmd: c.allowTemplateCmd, Strict: c.strictTemplates}),
		Checker:      health.NewChecker(health.CheckerOptions{Logger: log}),
		Logger:       log,
		Registerer:   reg,
		Resync:       c.resync,
		Credentials:  creds,
		DrainDone:    ready.DrainDone,
		Connections:  ready.ActiveConnections,
		TemplateVars: map[string]any{"skyfleet_server": advertise},
	})
	if err != nil {
		return nil, err
	}
	d.engine = eng
	d.scaler, err = autoscale.New(autoscale.Options{
		Scaler:     scaleAdapter{eng},
		Nodes:      &autoscale.StoreNodes{Store: st},
		Store:      st,
		Logger:     log,
		Registerer: reg,
		StaleAfter: c.alertStaleAfter,
	})
	if err != nil {
		return nil, err
	}
	var alertToken string
	if c.alertTokenFile != "" {
		if alertToken, err = readToken(c.alertTokenFile); err != nil {
			return nil, fmt.Errorf("--alert-token-file: %w", err)
		}
	}
	if err := d.discovery(c, reg); err != nil {
		return nil, err
	}
	d.api = api.New(api.Options{
		Engine:           api.EngineOf(eng),
		Store:            st,
		Hub:              d.hub,
		Logger:           log,
		Registerer:       reg,
		Gatherer:         reg,
		Token:            token,
		AlertToken:       alertToken,
		CompatHTTPStatus: c.compatHTTPStatus,
		Mounts:           d.mounts(ready),
	})
	d.http = &http.Server{
		Handler:           d.api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		TLSConfig:         tlsConfig,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	d.http.RegisterOnShutdown(d.api.Close)
	return d, nil
}

// providers registers every cloud driver: local, sim, docker, ec2, nova, and the types
// recognised but not supported.
func (d *daemon) providers(c *daemonConfig, dataDir string) (*cloud.Registry, error) {
	providers := cloud.NewRegistry()
	if err := c.checkSim(); err != nil {
		return nil, err
	}
	simOpts := c.sim
	simOpts.Logger = d.log
	if err := providers.Register("sim", sim.New(simOpts)); err != nil {
		return nil, err
	}
	lp, err := local.New(local.Options{DataDir: filepath.Join(dataDir, "local"), AddressRange: c.localRange, Logger: d.log})
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, lp.Close)
	dk := docker.NewDriver(docker.Options{Logger: d.log})
	d.closers = append(d.closers, dk.Close)
	for _, p := range []struct {
		name string
		drv  cloud.Driver
	}{
		{"local", lp},
		{"docker", dk},
		{"ec2", ec2.NewDriver(ec2.Options{Logger: d.log})},
		{"nova", nova.NewDriver(nova.Options{Logger: d.log})},
	} {
		if err := providers.Register(p.name, p.drv); err != nil {
			return nil, err
		}
	}
	if err := cloud.RegisterUnsupported(providers); err != nil {
		return nil, err
	}
	return providers, nil
}

// loadCredentials finds and loads auth_data.yaml; without one, only the providers that need
// no credentials (local, sim, docker) can create instances.
func loadCredentials(explicit string, log *slog.Logger) (func(map[string]any) (*cloud.Credentials, error), error) {
	path, err := auth.Find(explicit)
	var f *auth.File
	switch {
	case errors.Is(err, auth.ErrNoAuthFile) && explicit == "":
	case err != nil:
		return nil, err
	default:
		if f, err = auth.LoadFile(path, auth.WithLogger(log)); err != nil {
			return nil, err
		}
		log.Info("credentials loaded", "file", path)
	}
	return auth.Resolver(f, auth.NoCredentialTypes), nil
}

// discovery builds the optional DNS server and Consul sync.
func (d *daemon) discovery(c *daemonConfig, reg prometheus.Registerer) error {
	if c.dnsAddr != "" {
		d.dns = dnsserver.New(dnsserver.Options{Addr: c.dnsAddr, Store: d.store, Hub: d.hub, Logger: d.log, TTL: c.dnsTTL, Registerer: reg})
		if err := d.dns.Listen(); err != nil {
			return err
		}
		d.closers = append(d.closers, d.dns.Close)
	}
	if c.consulAddr != "" {
		var tok string
		if c.consulTokenFile != "" {
			var err error
			if tok, err = readToken(c.consulTokenFile); err != nil {
				return fmt.Errorf("--consul-token-file: %w", err)
			}
		}
		s, err := consul.New(consul.Options{Store: d.store, Hub: d.hub, Address: c.consulAddr, Token: tok,
			Datacenter: c.consulDatacenter, Logger: d.log, Registerer: reg})
		if err != nil {
			return err
		}
		d.consul = s
	}
	return nil
}

// mounts are the routes of other packages served by the API: alert intake, the decision
// log, ready-instance views and discovery, load-balancer reports, and the binary itself.
func (d *daemon) mounts(ready *registry.Registry) []api.Mount {
	return []api.Mount{
		{Pattern: "POST /v1/alerts/alertmanager", Handler: d.scaler.WebhookHandler(api.WriteError), Auth: api.MountAlerts},
		{Pattern: "POST /api/v2/alerts", Handler: d.scaler.AlertsV2Handler(api.WriteError), Auth: api.MountAlerts},
		{Pattern: "GET /v1/alerts", Handler: d.scaler.ActiveHandler()},
		{Pattern: "GET /v1/infrastructures/{id}/decisions", Handler: autoscale.DecisionsHandler(d.store, api.WriteError)},
		{Pattern: registry.EndpointsPattern, Handler: ready.EndpointsHandler()},
		{Pattern: registry.LBReportPattern, Handler: ready.LBReportHandler()},
		{Pattern: registry.PrometheusSDPattern, Handler: ready.PrometheusSDHandler()},
		{Pattern: "GET /v1/binary/skyfleet", Handler: binaryHandler(d.log)},
		// The dashboard's static files need no token; the page asks for it and sends it on
		// its API calls.
		{Pattern: "GET /ui/", Handler: ui.Handler(), Auth: api.MountPublic},
		{Pattern: "GET /ui", Handler: ui.Handler(), Auth: api.MountPublic},
	}
}

// binaryHandler serves the running skyfleet binary, so that cloud nodes fetch the same
// version of their role as the orchestrator runs.
func binaryHandler(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		exe, err := os.Executable()
		if err != nil {
			api.WriteError(w, http.StatusInternalServerError, api.CodeInternal, "cannot find the skyfleet binary: "+err.Error(), nil)
			return
		}
		f, err := os.Open(exe)
		if err != nil {
			log.Warn("cannot open the skyfleet binary", "err", err)
			api.WriteError(w, http.StatusInternalServerError, api.CodeInternal, "cannot open the skyfleet binary", nil)
			return
		}
		defer func() { _ = f.Close() }() // read-only
		st, err := f.Stat()
		if err != nil {
			api.WriteError(w, http.StatusInternalServerError, api.CodeInternal, "cannot read the skyfleet binary", nil)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="skyfleet"`)
		http.ServeContent(w, r, "skyfleet", st.ModTime(), f)
	})
}

// Run serves until ctx ends or a part fails, then shuts down: the HTTP server within
// shutdownGrace (event streams are ended), the engine's loops, then the store. Instances keep
// running; the next start adopts them.
func (d *daemon) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := d.engine.Run(gctx); err != nil {
			return fmt.Errorf("engine: %w", err)
		}
		return nil
	})
	g.Go(func() error { return d.scaler.Run(gctx) })
	if d.dns != nil {
		g.Go(func() error { return d.dns.Run(gctx) })
	}
	if d.consul != nil {
		g.Go(func() error { return d.consul.Run(gctx) })
	}
	g.Go(func() error {
		err := d.http.Serve(d.listener)
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve http: %w", err)
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		if err := d.http.Shutdown(sctx); err != nil {
			d.log.Warn("http shutdown did not finish in time; closing connections", "err", err)
			_ = d.http.Close()
		}
		return nil
	})
	d.log.Info("skyfleet serving", "url", d.URL, "data_dir", d.DataDir, "auth", d.Token != "")
	waited := make(chan error, 1)
	go func() { waited <- g.Wait() }()
	var err error
	select {
	case err = <-waited:
	case <-ctx.Done():
		t := time.NewTimer(shutdownLimit)
		defer t.Stop()
		select {
		case err = <-waited:
		case <-t.C:
			// Leave the store open: a loop may still write to it, and the process is about
			// to exit, which releases the lock anyway.
			return fmt.Errorf("shutdown did not finish within %s; stopping anyway (instances keep running)", shutdownLimit)
		}
	}
	for _, c := range d.closers {
		if cerr := c(); cerr != nil && err == nil {
			err = cerr
		}
	}
	d.hub.Close()
	if cerr := d.store.Close(); cerr != nil && err == nil {
		err = cerr
	}
	d.log.Info("skyfleet stopped; instances keep running")
	return err
}

// Close releases a daemon that was built but never run.
func (d *daemon) Close() {
	_ = d.listener.Close()
	for _, c := range d.closers {
		_ = c()
	}
	d.hub.Close()
	_ = d.store.Close()
}

// scaleAdapter presents the engine to the autoscaler.
type scaleAdapter struct{ e *engine.Engine }

func (a scaleAdapter) Scale(ctx context.Context, req store.ScalingRequest) (autoscale.ScaleOutcome, error) {
	r, err := a.e.Scale(ctx, req)
	if err != nil {
		return autoscale.ScaleOutcome{}, err
	}
	return autoscale.ScaleOutcome{Applied: r.Applied, Reason: r.Reason, From: r.From, Target: r.Target, Pending: r.Pending}, nil
}
