package lb

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BuiltinOptions configures NewBuiltin.
type BuiltinOptions struct {
	// Listen is the address to serve clients on; ignored when Listener is set.
	Listen string
	// Listener, when set, is used instead of listening on Listen (Run closes it).
	Listener net.Listener
	// TLS serves HTTPS (HTTP/2 and HTTP/1.1 by ALPN) when set; otherwise plain HTTP/1.1
	// and HTTP/2 with prior knowledge (h2c).
	TLS *tls.Config
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Registerer receives the skyfleet_lb_* metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	// DrainTimeout bounds how long a removed backend's in-flight requests are waited for (on
	// removal and at shutdown) before the backend is forgotten. Default 30s.
	DrainTimeout time.Duration
	// EjectFor is how long a backend that refused a connection is passed over; it doubles
	// with each further failure up to EjectMax. Defaults 1s and 30s.
	EjectFor, EjectMax time.Duration
	// DialTimeout bounds connecting to a backend. Default 2s.
	DialTimeout time.Duration
	// Attempts is how many backends an idempotent request is tried on when connecting
	// fails. Default 3.
	Attempts int
	// Clock defaults to time.Now.
	Clock func() time.Time
}

// Builtin is the built-in load-balancing engine: a streaming reverse proxy with least-
// connections balancing (ties round-robin), passive ejection of backends that refuse
// connections, retries of body-less requests on another backend when connecting fails,
// and draining of removed backends.
type Builtin struct {
	opts    BuiltinOptions
	log     *slog.Logger
	now     func() time.Time
	proxy   *httputil.ReverseProxy
	metrics *builtinMetrics

	mu       sync.Mutex
	backends map[string]*backend   // current members by id
	list     []*backend            // current members in id order
	draining map[*backend]struct{} // removed, waiting for in-flight requests
	rr       uint64
}

var _ Engine = (*Builtin)(nil)

// backend is one upstream with its own connection pool.
type backend struct {
	id, addr string
	tr       *http.Transport
	active   atomic.Int64
	// failing is set while fails > 0, so that successes skip the lock.
	failing atomic.Bool
	// Guarded by Builtin.mu.
	downUntil  time.Time
	fails      int
	drainSince time.Time
}

// NewBuiltin returns a built-in engine; it serves once Run is called.
func NewBuiltin(opts BuiltinOptions) (*Builtin, error) {
	if opts.Listener == nil && opts.Listen == "" {
		return nil, errors.New("new builtin lb: a listen address is required")
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	if opts.EjectFor <= 0 {
		opts.EjectFor = time.Second
	}
	if opts.EjectMax < opts.EjectFor {
		opts.EjectMax = max(30*time.Second, opts.EjectFor)
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 2 * time.Second
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 3
	}
	b := &Builtin{
		opts:     opts,
		log:      opts.Logger,
		now:      opts.Clock,
		backends: map[string]*backend{},
		draining: map[*backend]struct{}{},
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.log = b.log.With("component", "lb", "engine", "builtin")
	if b.now == nil {
		b.now = time.Now
	}
	m, err := newBuiltinMetrics(opts.Registerer, b)
	if err != nil {
		return nil, fmt.Errorf("new builtin lb: %w", err)
	}
	b.metrics = m
	b.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = "backend" // replaced by the transport with the picked backend
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport:      (*pickTransport)(b),
		FlushInterval:  -1, // stream: every write reaches the client at once, nothing is buffered
		BufferPool:     &bufferPool{},
		ErrorLog:       slog.NewLogLogger(b.log.Handler(), slog.LevelDebug),
		ModifyResponse: b.modifyResponse,
		ErrorHandler:   b.errorHandler,
	}
	return b, nil
}

// stateKey carries the per-request pick into the transport and the response hooks.
type stateKey struct{}

type pickState struct{ b *backend }

// ServeHTTP proxies one client request.
func (b *Builtin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ps := &pickState{}
	b.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stateKey{}, ps)))
}

func stateOf(r *http.Request) *pickState {
	ps, _ := r.Context().Value(stateKey{}).(*pickState)
	if ps == nil {
		ps = &pickState{}
	}
	return ps
}

func (b *Builtin) modifyResponse(resp *http.Response) error {
	if ps := stateOf(resp.Request); ps.b != nil {
		b.metrics.requests.WithLabelValues(ps.b.id, strconv.Itoa(resp.StatusCode)).Inc()
	}
	return nil
}

// errNoBackend: every backend is draining or the set is empty.
var errNoBackend = errors.New("no backend available")

func (b *Builtin) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	ps := stateOf(r)
	id := "none"
	if ps.b != nil {
		id = ps.b.id
	}
	kind, status := classify(r, err)
	b.metrics.errors.WithLabelValues(id, kind).Inc()
	if kind == "client_canceled" {
		return
	}
	b.metrics.requests.WithLabelValues(id, strconv.Itoa(status)).Inc()
	b.log.Debug("proxy error", "backend", id, "kind", kind, "error", err)
	w.WriteHeader(status)
}

func classify(r *http.Request, err error) (kind string, status int) {
	var ne net.Error
	switch {
	case errors.Is(err, errNoBackend):
		return "no_backend", http.StatusServiceUnavailable
	case r.Context().Err() != nil:
		return "client_canceled", 499
	case isDialError(err):
		return "dial", http.StatusBadGateway
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout", http.StatusGatewayTimeout
	default:
		return "upstream", http.StatusBadGateway
	}
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// pickTransport chooses a backend for each outgoing request.
type pickTransport Builtin

// RoundTrip sends req to the least-busy backend, trying others when connecting fails and
// the request has no body (nothing was sent, so nothing can be repeated by mistake).
func (t *pickTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	b := (*Builtin)(t)
	ps := stateOf(req)
	retryable := req.Body == nil || req.Body == http.NoBody
	var tried []*backend
	be := b.pick(nil)
	for attempt := 1; ; attempt++ {
		if be == nil {
			return nil, errNoBackend
		}
		ps.b = be
		out := *req
		u := *req.URL
		u.Host = be.addr
		out.URL = &u
		resp, err := be.tr.RoundTrip(&out)
		if err != nil {
			b.release(be)
			if isDialError(err) {
				b.eject(be, err)
				if retryable && attempt < b.opts.Attempts && req.Context().Err() == nil {
					tried = append(tried, be)
					if next := b.pick(tried); next != nil {
						b.metrics.errors.WithLabelValues(be.id, "dial_retried").Inc()
						be = next
						continue
					}
				}
			}
			return nil, err
		}
		b.recovered(be)
		resp.Body = countBody(resp.Body, func() { b.release(be) })
		return resp, nil
	}
}

// pick returns the current member with the fewest active requests, preferring backends
// that are not ejected; ties go round-robin. The chosen backend's count is incremented.
func (b *Builtin) pick(exclude []*backend) *backend {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.list)
	if n == 0 {
		return nil
	}
	now := b.now()
	start := int(b.rr % uint64(n))
	b.rr++
	for _, wantUp := range []bool{true, false} {
		var best *backend
		var bestActive int64
		for i := range n {
			be := b.list[(start+i)%n]
			if contains(exclude, be) || (wantUp && now.Before(be.downUntil)) {
				continue
			}
			if a := be.active.Load(); best == nil || a < bestActive {
				best, bestActive = be, a
			}
		}
		if best != nil {
			best.active.Add(1)
			return best
		}
	}
	return nil
}

func contains(list []*backend, be *backend) bool {
	for _, x := range list {
		if x == be {
			return true
		}
	}
	return false
}

// release ends one request on be and forgets be once it is drained.
func (b *Builtin) release(be *backend) {
	if be.active.Add(-1) > 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.draining[be]; ok && be.active.Load() == 0 {
		b.forgetLocked(be, "drained")
	}
}

func (b *Builtin) forgetLocked(be *backend, why string) {
	delete(b.draining, be)
	be.tr.CloseIdleConnections()
	if cur, ok := b.backends[be.id]; !ok || cur != be {
		b.metrics.forget(be.id)
	}
	b.log.Info("backend removed", "node_id", be.id, "address", be.addr, "reason", why)
}

func (b *Builtin) eject(be *backend, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if now.Before(be.downUntil) {
		return // already ejected by a concurrent request
	}
	d := b.opts.EjectFor << min(be.fails, 16)
	d = min(d, b.opts.EjectMax)
	be.fails++
	be.failing.Store(true)
	be.downUntil = now.Add(d)
	b.log.Warn("backend refused a connection; passing over it", "node_id", be.id, "address", be.addr, "for", d, "error", err)
}

func (b *Builtin) recovered(be *backend) {
	if !be.failing.Load() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	be.fails = 0
	be.failing.Store(false)
	be.downUntil = time.Time{}
}

// Update replaces the backend set; see Engine.
func (b *Builtin) Update(backends []Backend) {
	b.mu.Lock()
	defer b.mu.Unlock()
	want := make(map[string]Backend, len(backends))
	for _, nb := range backends {
		want[nb.ID] = nb
	}
	now := b.now()
	for id, be := range b.backends {
		if nb, ok := want[id]; ok && nb.Addr == be.addr {
			continue
		}
		delete(b.backends, id)
		if be.active.Load() == 0 {
			b.forgetLocked(be, "removed while idle")
			continue
		}
		be.drainSince = now
		b.draining[be] = struct{}{}
		b.log.Info("backend draining", "node_id", id, "address", be.addr, "active", be.active.Load())
	}
	for id, nb := range want {
		if _, ok := b.backends[id]; ok {
			continue
		}
		b.backends[id] = &backend{id: id, addr: nb.Addr, tr: b.newTransport()}
		b.log.Info("backend added", "node_id", id, "address", nb.Addr)
	}
	b.list = b.list[:0]
	for _, nb := range sortBackends(backends) {
		if be, ok := b.backends[nb.ID]; ok && (len(b.list) == 0 || b.list[len(b.list)-1] != be) {
			b.list = append(b.list, be)
		}
	}
}

func (b *Builtin) newTransport() *http.Transport {
	d := &net.Dialer{Timeout: b.opts.DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:           d.DialContext,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Pass the client's Accept-Encoding through instead of decompressing.
		DisableCompression: true,
		WriteBufferSize:    64 << 10,
		ReadBufferSize:     64 << 10,
	}
}

// Active returns the open requests per backend id, draining backends included.
func (b *Builtin) Active() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]int, len(b.backends)+len(b.draining))
	for id, be := range b.backends {
		out[id] += int(be.active.Load())
	}
	for be := range b.draining {
		out[be.id] += int(be.active.Load())
	}
	return out
}

// expireDrains forgets draining backends older than the drain timeout.
func (b *Builtin) expireDrains() {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	for be := range b.draining {
		if now.Sub(be.drainSince) >= b.opts.DrainTimeout {
			b.forgetLocked(be, "drain timeout")
		}
	}
}

// Run serves clients until ctx is done; see Engine.
func (b *Builtin) Run(ctx context.Context) error {
	ln := b.opts.Listener
	if ln == nil {
		var err error
		var lc net.ListenConfig
		if ln, err = lc.Listen(ctx, "tcp", b.opts.Listen); err != nil {
			return fmt.Errorf("builtin lb: listen on %s: %w", b.opts.Listen, err)
		}
	}
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	protos.SetUnencryptedHTTP2(b.opts.TLS == nil)
	srv := &http.Server{
		Handler:           b,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		Protocols:         protos,
		ErrorLog:          slog.NewLogLogger(b.log.Handler(), slog.LevelDebug),
	}
	if b.opts.TLS != nil {
		srv.TLSConfig = b.opts.TLS.Clone()
	}
	b.log.Info("serving", "listen", ln.Addr().String(), "tls", b.opts.TLS != nil)
	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var runErr error
loop:
	for {
		select {
		case err := <-errc:
			runErr = fmt.Errorf("builtin lb: serve: %w", err)
			errc = nil
			break loop
		case <-ctx.Done():
			break loop
		case <-tick.C:
			b.expireDrains()
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), b.opts.DrainTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if errc != nil {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Debug("server ended", "error", err)
		}
	}
	b.mu.Lock()
	for _, be := range b.backends {
		be.tr.CloseIdleConnections()
	}
	for be := range b.draining {
		be.tr.CloseIdleConnections()
	}
	b.mu.Unlock()
	return runErr
}

// countBody calls done once when the body is closed; it keeps the body writable for
// protocol upgrades (websockets), which ReverseProxy requires.
func countBody(body io.ReadCloser, done func()) io.ReadCloser {
	c := &countedBody{ReadCloser: body, done: done}
	if rw, ok := body.(io.ReadWriteCloser); ok {
		return &countedRWBody{countedBody: c, w: rw}
	}
	return c
}

type countedBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (c *countedBody) Close() error {
	err := c.ReadCloser.Close()
	c.once.Do(c.done)
	return err
}

type countedRWBody struct {
	*countedBody
	w io.Writer
}

func (c *countedRWBody) Write(p []byte) (int, error) { return c.w.Write(p) }

// bufferPool recycles the proxy's copy buffers.
type bufferPool struct{ p sync.Pool }

func (bp *bufferPool) Get() []byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 64<<10)
}

func (bp *bufferPool) Put(b []byte) { bp.p.Put(&b) }
