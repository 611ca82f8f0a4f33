package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyfleet/skyfleet/internal/events"
	"github.com/skyfleet/skyfleet/internal/store"
)

// Defaults of Options.
const (
	DefaultMaxBodyBytes      = 8 << 20
	DefaultDeleteTimeout     = 30 * time.Minute
	DefaultHeartbeatInterval = 15 * time.Second
)

// Options configures New.
type Options struct {
	// Engine applies changes (imports, submissions, scaling, destruction). Required.
	Engine Engine
	// Store is read for every report. Required.
	Store store.Store
	// Hub delivers live events to server-sent event streams; nil disables ?watch=1.
	Hub *events.Hub
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
	// Registerer receives the API's request metrics; nil: no metrics.
	Registerer prometheus.Registerer
	// Gatherer is served at /metrics; nil answers /metrics with 503.
	Gatherer prometheus.Gatherer
	// Token, when not empty, is the bearer token every route but /healthz requires. It is
	// never logged.
	Token string
	// Clock gives the time for instance ages; nil: time.Now.
	Clock func() time.Time
	// CompatHTTPStatus makes handled errors on the Occopus-compatible routes use a real HTTP
	// status (404, 400, 409, …) instead of Occopus' 200; the body keeps Occopus' shape.
	CompatHTTPStatus bool
	// MaxBodyBytes limits request bodies (413 beyond); 0: DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// DeleteTimeout bounds how long the compat DELETE (synchronous, as Occopus') and
	// DELETE /v1/…?wait=1 wait for every instance to be gone; 0: DefaultDeleteTimeout.
	DeleteTimeout time.Duration
	// HeartbeatInterval is the comment line period of event streams; 0: 15 s.
	HeartbeatInterval time.Duration
	// Mounts are handlers of other packages (alert intake, discovery, load-balancer reports,
	// the dashboard) served on the same listener behind the same logging, metrics, body limit
	// and authentication.
	Mounts []Mount
	// AlertToken, when not empty, is a second bearer token accepted on the MountAlerts routes
	// only, so that a monitoring host can be given a token that can do nothing but send alerts.
	AlertToken string
}

// MountAuth says which token a mounted route requires.
type MountAuth int

// Authentication of mounted routes.
const (
	// MountToken: the API token, like every native route.
	MountToken MountAuth = iota
	// MountAlerts: the alert token or the API token.
	MountAlerts
	// MountPublic: no token (static dashboard files; the page asks for the token itself).
	MountPublic
)

// Mount is one handler served by the API server. Pattern is a net/http ServeMux pattern with
// a method ("GET /v1/sd/prometheus"); a pattern whose path ends in "/" covers the subtree.
type Mount struct {
	Pattern string
	Handler http.Handler
	Auth    MountAuth
}

// Server is the HTTP API. Create it with New and serve Handler.
type Server struct {
	opts    Options
	logger  *slog.Logger
	clock   func() time.Time
	mux     *http.ServeMux
	handler http.Handler
	routes  []route
	metrics *metrics
	models  *modelCache

	// alertPaths and publicPaths are the mounted paths that take the alert token or none.
	alertPaths, publicPaths []string

	// life ends when Close is called: event streams and waits end with it.
	life  context.Context
	close context.CancelFunc
}

// route is one registered pattern.
type route struct {
	method string
	path   string
	kind   routeKind
	h      func(http.ResponseWriter, *http.Request) error
}

type routeKind int

const (
	routeV1      routeKind = iota // errors as the /v1 envelope
	routeCompat                   // errors in Occopus' body shape, CORS headers
	routePublic                   // no authentication (only /healthz)
	routeMounted                  // a Mount: its handler writes its own answers
)

// New builds the server and registers every route.
func New(opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.DeleteTimeout <= 0 {
		opts.DeleteTimeout = DefaultDeleteTimeout
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = DefaultHeartbeatInterval
	}
	s := &Server{
		opts:   opts,
		logger: opts.Logger,
		clock:  opts.Clock,
		mux:    http.NewServeMux(),
		models: newModelCache(),
	}
	s.life, s.close = context.WithCancel(context.Background())
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.logger = s.logger.With("component", "api")
	if s.clock == nil {
		s.clock = time.Now
	}
	s.metrics = newMetrics(opts.Registerer, s.logger)
	s.routes = append(s.routes, s.compatRoutes()...)
	s.routes = append(s.routes, s.v1Routes()...)
	for _, rt := range s.routes {
		s.mux.Handle(rt.method+" "+rt.path, s.wrapRoute(rt))
	}
	for _, m := range opts.Mounts {
		s.mux.Handle(m.Pattern, m.Handler)
		method, path, _ := strings.Cut(m.Pattern, " ")
		s.routes = append(s.routes, route{method: method, path: path, kind: routeMounted})
		switch m.Auth {
		case MountAlerts:
			s.alertPaths = append(s.alertPaths, path)
		case MountPublic:
			s.publicPaths = append(s.publicPaths, path)
		}
	}
	s.handler = s.recoverer(s.observe(s.cors(s.authenticate(s.limitBody(s.mux)))))
	return s
}

// Handler returns the root handler: every route with authentication, CORS on the compat
// routes, request logging, metrics, a body size limit and panic recovery.
func (s *Server) Handler() http.Handler { return s.handler }

// Close ends every open event stream (http.Server.Shutdown does not wait for them to end by
// themselves); register it with http.Server.RegisterOnShutdown. Later streams are refused.
func (s *Server) Close() {
	s.close()
}

// Routes returns "METHOD PATH" for every registered route, in registration order (the
// OpenAPI document is checked against it).
func (s *Server) Routes() []string {
	out := make([]string, len(s.routes))
	for i, rt := range s.routes {
		out[i] = rt.method + " " + rt.path
	}
	return out
}

// wrapRoute turns a handler returning an error into an http.Handler writing that error in
// the route's style.
func (s *Server) wrapRoute(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := rt.h(w, r)
		if err == nil {
			return
		}
		if rt.kind == routeCompat {
			s.writeCompatError(w, r, err)
			return
		}
		s.writeV1Error(w, r, err)
	})
}

// isCompatPath tells whether a path belongs to the Occopus-compatible API.
func isCompatPath(p string) bool {
	return p == "/infrastructures" || strings.HasPrefix(p, "/infrastructures/") || strings.HasPrefix(p, "/info/")
}

// WriteError writes the /v1 error envelope with the given status; mounted handlers use it so
// that every route answers errors the same way.
func WriteError(w http.ResponseWriter, status int, code, message string, details []string) {
	writeJSON(w, status, ErrorEnvelope{Error: ErrorBody{Code: code, Message: message, Details: details}})
}

// writeUnauthorized answers a request without a valid token in the style of its route.
func (s *Server) writeUnauthorized(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="skyfleet"`)
	const msg = "missing or invalid bearer token (send Authorization: Bearer <token>)"
	if isCompatPath(r.URL.Path) {
		// Always a real 401, also in Occopus' default 200 mode: a client that checks the HTTP
		// status must never mistake a refused request for a success.
		writeJSON(w, http.StatusUnauthorized, compatBody{StatusCode: http.StatusUnauthorized, Reason: "Unauthorized", Message: msg})
		return
	}
	writeJSON(w, http.StatusUnauthorized, ErrorEnvelope{Error: ErrorBody{Code: CodeUnauthorized, Message: msg}})
}

// authenticate requires the bearer token on every route but /healthz, public mounts and CORS
// preflights. Alert routes also take the alert token; with only an alert token configured,
// only the alert routes are protected.
func (s *Server) authenticate(next http.Handler) http.Handler {
	if s.opts.Token == "" && s.opts.AlertToken == "" {
		return next
	}
	want := sha256.Sum256([]byte(s.opts.Token))
	alertWant := sha256.Sum256([]byte(s.opts.AlertToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		alertRoute := matchesAny(r.URL.Path, s.alertPaths)
		if r.URL.Path == "/healthz" || matchesAny(r.URL.Path, s.publicPaths) || (s.opts.Token == "" && !alertRoute) {
			next.ServeHTTP(w, r)
			return
		}
		auth := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		// Comparing fixed-size digests keeps the comparison constant-time whatever the length.
		got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		valid := ok && s.opts.Token != "" && subtle.ConstantTimeCompare(got[:], want[:]) == 1
		if !valid && ok && s.opts.AlertToken != "" && alertRoute {
			valid = subtle.ConstantTimeCompare(got[:], alertWant[:]) == 1
		}
		if !valid {
			s.writeUnauthorized(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// matchesAny reports whether path is one of paths, or under one of them that ends in "/".
func matchesAny(path string, paths []string) bool {
	for _, p := range paths {
		if path == p || (strings.HasSuffix(p, "/") && strings.HasPrefix(path, p)) {
			return true
		}
	}
	return false
}

// limitBody caps request bodies; reading past the cap fails with *http.MaxBytesError, which
// classify maps to 413.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.opts.MaxBodyBytes {
			err := &http.MaxBytesError{Limit: s.opts.MaxBodyBytes}
			if isCompatPath(r.URL.Path) {
				s.writeCompatError(w, r, err)
			} else {
				s.writeV1Error(w, r, fmt.Errorf("request body of %d bytes is over the limit of %d bytes: %w", r.ContentLength, s.opts.MaxBodyBytes, err))
			}
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// cors adds Flask-CORS' default headers to the compat routes and answers their preflight
// requests (before authentication: browsers send no credentials on a preflight).
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isCompatPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT")
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				h.Set("Access-Control-Allow-Headers", req)
			}
			h.Set("Allow", "DELETE, GET, HEAD, OPTIONS, POST")
			w.WriteHeader(http.StatusOK)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// recoverer turns a panic in a handler into a 500 answer in the route's style and a log line.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				// net/http's own signal to abort the response: hand it back to the server.
				panic(v)
			}
			s.metrics.panics.Inc()
			s.logger.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
			if isCompatPath(r.URL.Path) {
				writeJSON(w, http.StatusInternalServerError, compatBody{StatusCode: 500, Reason: "Internal Server Error", Message: "internal error; see the server log"})
				return
			}
			writeJSON(w, http.StatusInternalServerError, ErrorEnvelope{Error: ErrorBody{Code: CodeInternal, Message: "internal error; see the server log"}})
		}()
		next.ServeHTTP(w, r)
	})
}

// statusRecorder remembers the status code for logs and metrics. Unwrap lets
// http.ResponseController reach the connection's Flush for event streams.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// observe logs one line per request (method, path, status, duration; never headers, so never
// the token) and records the request metrics, labelled by route pattern.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			d := time.Since(start)
			pattern := r.Pattern
			if pattern == "" {
				pattern = "unmatched"
			}
			s.metrics.observe(pattern, status, d)
			lvl := slog.LevelInfo
			if r.URL.Path == "/healthz" || r.URL.Path == "/metrics" {
				lvl = slog.LevelDebug
			}
			s.logger.Log(r.Context(), lvl, "http request", "method", r.Method, "path", r.URL.Path,
				"status", status, "duration", d, "bytes", rec.bytes)
		}()
		next.ServeHTTP(rec, r)
	})
}

// writeJSON writes v as indented JSON with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
