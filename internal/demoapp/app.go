package demoapp

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// WebappPath is the path prefix of Data Avenue's web application in the seed tutorial
// (its load command requests /blacktop3/rest/file and its health check /blacktop3).
const WebappPath = "/blacktop3"

// DigestTrailer is the trailer that carries the hex SHA-256 of the bytes sent.
const DigestTrailer = "X-Content-Sha256"

// App is the data-transfer service, a stand-in for Data Avenue. Its routes:
//
//	GET /rest/file, GET /blacktop3/rest/file   stream the object at X-URI (key in X-Key)
//	GET /healthz                               200 when the database answers, else 503
//	GET /blacktop3                             200 once the store is initialised, else 503
//	GET /                                      200: the process is up
//
// Each streamed byte goes through SHA-256 (plus WorkFactor extra rounds per buffer), so
// that CPU use follows load, as the seed's CPU-based scaling rules expect.
type App struct {
	// Store is the database; required.
	Store Store
	// Client fetches the objects; nil uses a transport with no overall timeout (objects
	// are large) and no transparent decompression.
	Client *http.Client
	// DefaultURI, when set, is the object fetched for a request without an X-URI header,
	// so that the seed tutorial's load command, whose X-URI is left empty, works as is.
	DefaultURI string
	// WorkFactor is the number of extra SHA-256 rounds over each streamed buffer; 0 hashes
	// every byte once.
	WorkFactor int
	// NodeID goes into the node_id column of transfers.
	NodeID string
	// Logger is required.
	Logger *slog.Logger
	// Registerer receives the skyfleet_app_* metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// InitialBackoff and MaxBackoff bound the waits between Store.Init attempts at start;
	// defaults 250ms and 5s.
	InitialBackoff, MaxBackoff time.Duration

	ready   atomic.Bool
	active  atomic.Int64
	metrics *appMetrics
}

type appMetrics struct {
	bytes     prometheus.Counter
	transfers *prometheus.CounterVec
	active    prometheus.GaugeFunc
	cpu       prometheus.CounterFunc
	cores     prometheus.Gauge
}

// Init checks the configuration and registers the metrics. Call it once, before Handler
// and Run.
func (a *App) Init() error {
	if a.Store == nil {
		return errors.New("demo app: no store")
	}
	if a.Logger == nil {
		return errors.New("demo app: no logger")
	}
	if a.WorkFactor < 0 {
		return fmt.Errorf("demo app: work factor %d is negative", a.WorkFactor)
	}
	if a.Client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DisableCompression = true
		tr.ResponseHeaderTimeout = 30 * time.Second
		tr.MaxIdleConnsPerHost = 64
		a.Client = &http.Client{Transport: tr}
	}
	if a.InitialBackoff <= 0 {
		a.InitialBackoff = 250 * time.Millisecond
	}
	if a.MaxBackoff < a.InitialBackoff {
		a.MaxBackoff = max(5*time.Second, a.InitialBackoff)
	}
	m := &appMetrics{
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skyfleet_app_bytes_total", Help: "Bytes of object data streamed to clients.",
		}),
		transfers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skyfleet_app_transfers_total", Help: "File requests answered, by outcome (ok, client_gone, upstream_error, unauthorized, bad_request, unavailable).",
		}, []string{"status"}),
		active: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "skyfleet_app_active_transfers", Help: "Transfers streaming now.",
		}, func() float64 { return float64(a.active.Load()) }),
		cpu: prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "skyfleet_app_cpu_seconds_total",
			Help: "CPU time (user and system) this process has used; rate(...)*100 is its utilisation in percent of one core.",
		}, processCPUSeconds),
		cores: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "skyfleet_app_cpu_cores", Help: "Logical CPUs of the machine, to turn the CPU rate into a share of the machine.",
		}),
	}
	m.cores.Set(float64(runtime.NumCPU()))
	for _, s := range []string{StatusOK, StatusClientGone, StatusUpstreamError, StatusUnauthorized, StatusBadRequest, StatusUnavailable} {
		m.transfers.WithLabelValues(s)
	}
	if a.Registerer != nil {
		for _, c := range []prometheus.Collector{m.bytes, m.transfers, m.active, m.cpu, m.cores} {
			if err := a.Registerer.Register(c); err != nil {
				return fmt.Errorf("demo app: register metrics: %w", err)
			}
		}
	}
	a.metrics = m
	return nil
}

// processCPUSeconds returns the user plus system CPU time of this process.
func processCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// Ready reports whether the store has been initialised.
func (a *App) Ready() bool { return a.ready.Load() }

// Run initialises the store, retrying with backoff (doubling from InitialBackoff up to
// MaxBackoff) until it succeeds or ctx ends; until then the file routes and /healthz
// answer 503. It returns nil once the store is ready, or ctx's error.
func (a *App) Run(ctx context.Context) error {
	wait := a.InitialBackoff
	for attempt := 1; ; attempt++ {
		ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := a.Store.Init(ictx)
		cancel()
		if err == nil {
			a.ready.Store(true)
			a.Logger.Info("database ready", "attempts", attempt)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		a.Logger.Warn("database not ready; retrying", "attempt", attempt, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, a.MaxBackoff)
	}
}

// Handler returns the app's routes.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /rest/file", a.serveFile)
	mux.HandleFunc("GET "+WebappPath+"/rest/file", a.serveFile)
	mux.HandleFunc("GET /healthz", a.serveHealth)
	info := func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"service": "skyfleet demo app", "node_id": a.NodeID, "ready": a.Ready()})
	}
	// The seed's health URL: an instance must not count as healthy (and join the load
	// balancers) before it can serve files, so it answers 503 until the store is ready.
	webapp := func(w http.ResponseWriter, r *http.Request) {
		if !a.Ready() {
			writeError(w, http.StatusServiceUnavailable, "database not initialised yet")
			return
		}
		info(w, r)
	}
	mux.HandleFunc("GET "+WebappPath, webapp)
	mux.HandleFunc("GET "+WebappPath+"/{$}", webapp)
	mux.HandleFunc("GET /{$}", info)
	return mux
}

func (a *App) serveHealth(w http.ResponseWriter, r *http.Request) {
	if !a.Ready() {
		writeError(w, http.StatusServiceUnavailable, "database not initialised yet")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := a.Store.Ping(ctx); err != nil {
		writeError(w, http.StatusServiceUnavailable, "database unreachable")
		a.Logger.Warn("health check: database unreachable", "err", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// safeURI drops the user info and query of u, which may carry credentials, for the
// transfers table and the logs.
func safeURI(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.ForceQuery = false
	c.Fragment = ""
	return c.String()
}

func (a *App) count(status string) { a.metrics.transfers.WithLabelValues(status).Inc() }

func (a *App) serveFile(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("X-Key")
	raw := r.Header.Get("X-URI")
	if raw == "" {
		raw = a.DefaultURI
	}
	var missing []string
	if key == "" {
		missing = append(missing, "X-Key")
	}
	if raw == "" {
		missing = append(missing, "X-URI")
	}
	if len(missing) > 0 {
		a.count(StatusBadRequest)
		writeError(w, http.StatusBadRequest, "missing header "+strings.Join(missing, " and "))
		return
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		a.count(StatusBadRequest)
		writeError(w, http.StatusBadRequest, "header X-URI: want an absolute http or https URL")
		return
	}
	if !a.Ready() {
		a.count(StatusUnavailable)
		writeError(w, http.StatusServiceUnavailable, "database not initialised yet")
		return
	}
	_, ok, err := a.Store.LookupKey(r.Context(), key)
	if err != nil {
		a.count(StatusUnavailable)
		a.Logger.Warn("api key lookup failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "cannot check the API key: database unavailable")
		return
	}
	if !ok {
		a.count(StatusUnauthorized)
		writeError(w, http.StatusUnauthorized, "unknown API key in header X-Key")
		return
	}
	a.transfer(w, r, key, u)
}

// transfer fetches u and streams it to w, then records the outcome.
func (a *App) transfer(w http.ResponseWriter, r *http.Request, key string, u *url.URL) {
	started := time.Now()
	a.active.Add(1)
	rec := Transfer{Key: key, URI: safeURI(u), Started: started.UTC(), NodeID: a.NodeID}
	log := a.Logger.With("uri", rec.URI)
	defer func() {
		a.active.Add(-1)
		rec.Duration = time.Since(started)
		a.count(rec.Status)
		// The request's context may be gone (client went away): record anyway, briefly.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		defer cancel()
		if err := a.Store.RecordTransfer(ctx, rec); err != nil {
			log.Warn("cannot record transfer", "err", err)
		}
	}()

	method := http.MethodGet
	if r.Method == http.MethodHead {
		method = http.MethodHead
	}
	req, err := http.NewRequestWithContext(r.Context(), method, u.String(), nil)
	if err != nil {
		rec.Status = StatusUpstreamError
		writeError(w, http.StatusBadGateway, "cannot build the request for X-URI")
		return
	}
	for _, h := range []string{"Range", "If-Range"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := a.Client.Do(req)
	if err != nil {
		if r.Context().Err() != nil {
			rec.Status = StatusClientGone
			return
		}
		rec.Status = StatusUpstreamError
		log.Warn("cannot fetch object", "err", redactURLError(err))
		writeError(w, http.StatusBadGateway, "cannot fetch the object at X-URI from "+u.Host)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	switch {
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		rec.Status = StatusUpstreamError
		if cr := resp.Header.Get("Content-Range"); cr != "" {
			w.Header().Set("Content-Range", cr)
		}
		writeError(w, http.StatusRequestedRangeNotSatisfiable, "the requested range is outside the object")
		return
	case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent:
		rec.Status = StatusUpstreamError
		writeError(w, http.StatusBadGateway, fmt.Sprintf("the object at X-URI answered %s", resp.Status))
		return
	}

	h := w.Header()
	for _, name := range []string{"Content-Type", "Content-Range", "Accept-Ranges", "ETag", "Last-Modified"} {
		if v := resp.Header.Get(name); v != "" {
			h.Set(name, v)
		}
	}
	// A trailer needs a chunked (HTTP/1.1) or HTTP/2 response. Over HTTP/1.1 the length is
	// worth more to most clients (curl's progress, resumable downloads), so the digest goes
	// out only to clients that say they accept trailers (TE: trailers), and then without a
	// Content-Length.
	wantTrailer := r.ProtoMajor >= 2 || acceptsTrailers(r.Header)
	if resp.ContentLength >= 0 && (r.ProtoMajor >= 2 || !wantTrailer) {
		h.Set("Content-Length", fmt.Sprint(resp.ContentLength))
	}
	if wantTrailer {
		h.Set("Trailer", DigestTrailer)
	}
	w.WriteHeader(resp.StatusCode)
	if method == http.MethodHead {
		rec.Status = StatusOK
		return
	}

	hw := newHashWriter(w, a.WorkFactor, a.metrics.bytes)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	n, err := io.CopyBuffer(hw, onlyReader{resp.Body}, *bp)
	rec.Bytes = n
	switch {
	case err == nil && (resp.ContentLength < 0 || n == resp.ContentLength):
		rec.Status = StatusOK
		if wantTrailer {
			h.Set(DigestTrailer, hw.sum())
		}
	case errors.Is(err, errClientWrite) || r.Context().Err() != nil:
		rec.Status = StatusClientGone
	default:
		rec.Status = StatusUpstreamError
		log.Warn("object stream broke off", "bytes", n, "err", redactURLError(err))
		// Abort the response so that the client sees a truncated transfer, not a complete one.
		panic(http.ErrAbortHandler)
	}
}

// acceptsTrailers reports whether the TE header lists "trailers".
func acceptsTrailers(h http.Header) bool {
	for _, v := range h.Values("TE") {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), "trailers") {
				return true
			}
		}
	}
	return false
}

// redactURLError strips the URL (which may carry credentials) from a *url.Error.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// onlyReader hides WriteTo, so that io.CopyBuffer goes through the fixed buffer.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// errClientWrite marks a failed write to the client, to tell it from a failed read.
var errClientWrite = errors.New("write to client")

// hashWriter hashes everything written through it (plus extra rounds) before passing it on.
type hashWriter struct {
	w       io.Writer
	h       hash.Hash
	extra   int
	scratch [sha256.Size]byte
	bytes   prometheus.Counter
}

func newHashWriter(w io.Writer, extra int, bytes prometheus.Counter) *hashWriter {
	return &hashWriter{w: w, h: sha256.New(), extra: extra, bytes: bytes}
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	hw.h.Write(p)
	for i := range hw.extra {
		// A separate digest of the buffer, chained into the scratch value so that the
		// compiler cannot drop it: real work proportional to the bytes.
		x := sha256.New()
		var round [8]byte
		binary.LittleEndian.PutUint64(round[:], uint64(i))
		x.Write(round[:])
		x.Write(hw.scratch[:])
		x.Write(p)
		x.Sum(hw.scratch[:0])
	}
	n, err := hw.w.Write(p)
	hw.bytes.Add(float64(n))
	if err != nil {
		return n, fmt.Errorf("%w: %w", errClientWrite, err)
	}
	return n, nil
}

func (hw *hashWriter) sum() string { return hex.EncodeToString(hw.h.Sum(nil)) }

// Listen opens a TCP listener on addr.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// Serve answers on ln until ctx ends, then shuts down, giving open transfers up to grace.
func (a *App) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	return serveHTTP(ctx, ln, a.Handler(), grace)
}
