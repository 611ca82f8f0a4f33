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
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/skyfleet/skyfleet/internal/api"
	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/cloud/local"
	"github.com/skyfleet/skyfleet/internal/cloud/sim"
	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/engine"
	"github.com/skyfleet/skyfleet/internal/events"
	"github.com/skyfleet/skyfleet/internal/health"
	"github.com/skyfleet/skyfleet/internal/store"
	"github.com/skyfleet/skyfleet/internal/template"
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
	d = &daemon{log: log, store: st, DataDir: dataDir, Token: token, hub: events.NewHub()}
	defer func() {
		if err != nil {
			d.hub.Close()
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
	providers := cloud.NewRegistry()
	if err := providers.Register("sim", sim.New(sim.Options{Logger: log})); err != nil {
		return nil, err
	}
	lp, err := local.New(local.Options{DataDir: filepath.Join(dataDir, "local"), Logger: log})
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, lp.Close)
	defer func() {
		if err != nil {
			_ = lp.Close()
		}
	}()
	if err := providers.Register("local", lp); err != nil {
		return nil, err
	}
	eng, err := engine.New(engine.Options{
		Store:      st,
		Providers:  providers,
		Hub:        d.hub,
		Renderer:   template.New(template.Options{AllowCmd: c.allowTemplateCmd, Strict: c.strictTemplates}),
		Checker:    health.NewChecker(health.CheckerOptions{Logger: log}),
		Logger:     log,
		Registerer: reg,
		Resync:     c.resync,
	})
	if err != nil {
		return nil, err
	}
	d.engine = eng
	d.api = api.New(api.Options{
		Engine:           engineAdapter{eng},
		Store:            st,
		Hub:              d.hub,
		Logger:           log,
		Registerer:       reg,
		Gatherer:         reg,
		Token:            token,
		CompatHTTPStatus: c.compatHTTPStatus,
	})
	d.http = &http.Server{
		Handler:           d.api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		TLSConfig:         tlsConfig,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	d.http.RegisterOnShutdown(d.api.Close)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	d.listener = ln
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
		d.listener = tls.NewListener(ln, tlsConfig)
	}
	d.URL = scheme + "://" + ln.Addr().String()
	return d, nil
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

// engineAdapter presents the engine to the API, translating its error values and result
// types into the API's own.
type engineAdapter struct{ e *engine.Engine }

var _ api.Engine = engineAdapter{}

func translate(err error) error {
	var nf *engine.NotFoundError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &nf):
		return &api.NotFoundError{Kind: nf.Kind, Name: nf.Name, InfraID: nf.InfraID}
	case errors.Is(err, engine.ErrAlreadyAttached):
		return api.ErrAlreadyAttached
	case errors.Is(err, engine.ErrNotAttached):
		return api.ErrNotAttached
	case errors.Is(err, engine.ErrDestroying):
		return api.ErrDestroying
	}
	return err
}

func (a engineAdapter) ImportNodeDefs(ctx context.Context, defs descriptor.NodeDefs, source string) ([]string, error) {
	names, err := a.e.ImportNodeDefs(ctx, defs, source)
	return names, translate(err)
}

func (a engineAdapter) Submit(ctx context.Context, id, file string, data []byte) (string, []api.Warning, error) {
	newID, warns, err := a.e.Submit(ctx, id, file, data)
	if err != nil {
		return "", nil, translate(err)
	}
	out := make([]api.Warning, 0, len(warns))
	for _, w := range warns {
		msg := w.Msg
		if w.Path != "" {
			msg = w.Path + ": " + w.Msg
		}
		out = append(out, api.Warning{Position: w.Pos.String(), Message: msg})
	}
	return newID, out, nil
}

func (a engineAdapter) Scale(ctx context.Context, req store.ScalingRequest) (api.ScaleResult, error) {
	r, err := a.e.Scale(ctx, req)
	if err != nil {
		return api.ScaleResult{}, translate(err)
	}
	return api.ScaleResult{Applied: r.Applied, Reason: r.Reason, From: r.From, Target: r.Target, Pending: r.Pending}, nil
}

func (a engineAdapter) Destroy(ctx context.Context, id string) error {
	return translate(a.e.Destroy(ctx, id))
}

func (a engineAdapter) WaitGone(ctx context.Context, id string) error {
	return translate(a.e.WaitGone(ctx, id))
}

func (a engineAdapter) Attach(ctx context.Context, id string) error {
	return translate(a.e.Attach(ctx, id))
}

func (a engineAdapter) Detach(ctx context.Context, id string) error {
	return translate(a.e.Detach(ctx, id))
}

func (a engineAdapter) Maintained(id string) bool { return a.e.Maintained(id) }
