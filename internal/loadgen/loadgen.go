package loadgen

import (
	"context"
	"crypto/tls"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// MaxConcurrency is the largest number of concurrent requests a run may keep open.
const MaxConcurrency = 10000

// NodeCount is the number of ready instances of one node of an infrastructure.
type NodeCount struct {
	Name  string
	Ready int
}

// NodeCounter reports the ready instances per node, in a stable order (the descriptor's).
type NodeCounter func(ctx context.Context) ([]NodeCount, error)

// Config describes one load run. A run is bounded: by Duration, by Requests, or both
// (whichever comes first); at least one must be set.
type Config struct {
	// URL is the http(s) URL every request goes to.
	URL string
	// Method defaults to GET.
	Method string
	// Header is sent with every request; a Host entry sets the request's Host.
	Header http.Header
	// Concurrency is the number of requests kept in flight; default 1.
	Concurrency int
	// Duration ends the run; requests still open then are cancelled and counted as aborted,
	// not as errors.
	Duration time.Duration
	// Requests ends the run once this many requests have been started and finished.
	Requests int64
	// Timeout bounds each request, body included; 0 means no limit.
	Timeout time.Duration
	// Insecure skips TLS certificate verification (curl -k).
	Insecure bool
	// Client, when set, is used instead of one built from Concurrency and Insecure.
	Client *http.Client

	// Progress receives one line per second; nil for none. Live rewrites the line in
	// place (for a terminal) instead of printing one per second.
	Progress io.Writer
	Live     bool
	// Timeline receives a CSV row per second; nil for none. See TimelineHeader.
	Timeline io.Writer
	// Nodes, when set, adds one column per node to the timeline with its ready count.
	Nodes NodeCounter
	// Logger receives warnings (failed node polls); nil discards.
	Logger *slog.Logger

	// Now and Ticker replace the clock in tests; nil means the real one. Ticker returns a
	// channel that ticks every second and a stop function.
	Now    func() time.Time
	Ticker func() (<-chan time.Time, func())
}

// Summary is the outcome of a run.
type Summary struct {
	// Requests counts finished requests: OK + Errors (aborted ones are not included).
	Requests int64
	OK       int64
	Errors   int64
	// Aborted counts requests cancelled by the end of the run (its duration or an
	// interruption) before they finished.
	Aborted int64
	// ErrorKinds counts the errors by kind: "http 503", "timeout", "connect", "reset",
	// "truncated", "tls" or "other".
	ErrorKinds map[string]int64
	Bytes      int64
	Elapsed    time.Duration
	// Latency holds the latencies (to the end of the body) of the finished requests.
	Latency Histogram
	// Interrupted is true when the caller's context ended the run.
	Interrupted bool
}

// window is the accumulator of one second of the run.
type window struct {
	mu       sync.Mutex
	requests int64
	errors   int64
	aborted  int64
	hist     Histogram
	kinds    map[string]int64
}

// runner is one run in progress.
type runner struct {
	cfg      Config
	client   *http.Client
	url      *url.URL
	started  atomic.Int64
	inFlight atomic.Int64
	bytes    atomic.Int64 // bytes received in the current second
	win      window
}

func (c *Config) validate() (*url.URL, error) {
	var errs []error
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("url %q: want an absolute http or https URL", c.URL))
	}
	if c.Concurrency < 0 || c.Concurrency > MaxConcurrency {
		errs = append(errs, fmt.Errorf("concurrency %d: want 1..%d", c.Concurrency, MaxConcurrency))
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("duration %s: must not be negative", c.Duration))
	}
	if c.Requests < 0 {
		errs = append(errs, fmt.Errorf("requests %d: must not be negative", c.Requests))
	}
	if c.Duration == 0 && c.Requests == 0 {
		errs = append(errs, errors.New("a run needs a duration or a number of requests, or both"))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s: must not be negative", c.Timeout))
	}
	return u, errors.Join(errs...)
}

// NewClient returns the HTTP client a run uses by default: connections kept for every
// concurrent request, no transparent decompression (bytes are counted as sent), and TLS
// verification off when insecure.
func NewClient(concurrency int, insecure bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = max(concurrency, 1) * 2
	tr.MaxIdleConnsPerHost = max(concurrency, 1)
	tr.DisableCompression = true
	if insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked for it (--insecure, curl -k)
	}
	return &http.Client{Transport: tr}
}

// Run performs the load run and returns its summary. It returns an error only when the
// configuration is invalid or the first node poll fails; failed requests are counted, not
// returned. When ctx ends early the summary is returned with Interrupted set.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	u, err := cfg.validate()
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if cfg.Method == "" {
		cfg.Method = http.MethodGet
	}
	cfg.Concurrency = max(cfg.Concurrency, 1)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Ticker == nil {
		cfg.Ticker = func() (<-chan time.Time, func()) {
			t := time.NewTicker(time.Second)
			return t.C, t.Stop
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &runner{cfg: cfg, client: cfg.Client, url: u}
	if r.client == nil {
		r.client = NewClient(cfg.Concurrency, cfg.Insecure)
		defer r.client.CloseIdleConnections()
	}
	r.win.kinds = map[string]int64{}

	var nodes *nodePoller
	if cfg.Nodes != nil {
		if nodes, err = startNodePoller(ctx, cfg.Nodes, cfg.Logger); err != nil {
			return nil, err
		}
		defer nodes.stop()
	}
	var tl *timeline
	if cfg.Timeline != nil {
		tl = &timeline{w: csv.NewWriter(cfg.Timeline)}
		var names []string
		if nodes != nil {
			names = nodes.names
		}
		if err := tl.header(names); err != nil {
			return nil, err
		}
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Duration > 0 {
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	start := cfg.Now()
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Go(func() { r.worker(runCtx) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	sum := &Summary{ErrorKinds: map[string]int64{}}
	tick, stopTick := cfg.Ticker()
	defer stopTick()
	last := start
	flush := func(now time.Time, final bool) {
		row := r.take(sum)
		row.at, row.elapsed, row.span = now, now.Sub(start), now.Sub(last)
		last = now
		if nodes != nil {
			row.nodes = nodes.latest()
			if !final {
				nodes.poll()
			}
		}
		if tl != nil {
			if err := tl.write(row); err != nil {
				cfg.Logger.Warn("cannot write the timeline", "err", err)
			}
		}
		// A last window of a few milliseconds (the run ended just after a tick) would show
		// misleading rates: it still goes into the timeline, not onto the screen.
		if cfg.Progress != nil && (!final || row.span >= 250*time.Millisecond) {
			r.progress(row, final)
		} else if cfg.Progress != nil && cfg.Live {
			_, _ = fmt.Fprintln(cfg.Progress)
		}
	}
	for running := true; running; {
		select {
		case now := <-tick:
			flush(now, false)
		case <-done:
			flush(cfg.Now(), true)
			running = false
		}
	}
	sum.Elapsed = cfg.Now().Sub(start)
	sum.Interrupted = ctx.Err() != nil
	if tl != nil {
		tl.w.Flush()
		if err := tl.w.Error(); err != nil {
			cfg.Logger.Warn("cannot write the timeline", "err", err)
		}
	}
	return sum, nil
}

// worker sends requests one after another until the run ends.
func (r *runner) worker(ctx context.Context) {
	bp := make([]byte, 32<<10)
	for ctx.Err() == nil {
		if r.cfg.Requests > 0 && r.started.Add(1) > r.cfg.Requests {
			return
		}
		r.one(ctx, bp)
	}
}

// countingWriter adds the bytes written to a counter and discards them.
type countingWriter struct{ n *atomic.Int64 }

func (c countingWriter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return len(p), nil
}

// one sends one request, reads its body to the end and records the outcome.
func (r *runner) one(runCtx context.Context, buf []byte) {
	r.inFlight.Add(1)
	defer r.inFlight.Add(-1)
	ctx := runCtx
	if r.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(runCtx, r.cfg.Timeout)
		defer cancel()
	}
	begin := r.cfg.Now()
	kind := ""
	req, err := http.NewRequestWithContext(ctx, r.cfg.Method, r.url.String(), nil)
	if err != nil {
		kind = "other"
	} else {
		for k, vs := range r.cfg.Header {
			if strings.EqualFold(k, "Host") && len(vs) > 0 {
				req.Host = vs[0]
				continue
			}
			req.Header[k] = vs
		}
		resp, err := r.client.Do(req)
		if err != nil {
			kind = classify(err)
		} else {
			_, err = io.CopyBuffer(countingWriter{&r.bytes}, onlyReader{resp.Body}, buf)
			_ = resp.Body.Close()
			switch {
			case err != nil:
				kind = classify(err)
				if kind == "other" {
					kind = "truncated"
				}
			case resp.StatusCode >= 400:
				kind = "http " + strconv.Itoa(resp.StatusCode)
			}
		}
	}
	lat := r.cfg.Now().Sub(begin)
	aborted := kind != "" && runCtx.Err() != nil
	r.win.mu.Lock()
	defer r.win.mu.Unlock()
	switch {
	case aborted:
		r.win.aborted++
	case kind != "":
		r.win.requests++
		r.win.errors++
		r.win.kinds[kind]++
		r.win.hist.Record(lat)
	default:
		r.win.requests++
		r.win.hist.Record(lat)
	}
}

// onlyReader hides WriteTo so that io.CopyBuffer uses the worker's buffer.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// classify names the kind of a failed request.
func classify(err error) string {
	var opErr *net.OpError
	var certErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return "timeout"
	case errors.As(err, &certErr) || errors.As(err, &recErr):
		return "tls"
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return "connect"
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return "truncated"
	}
	return "other"
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// second is the figures of one timeline row.
type second struct {
	at       time.Time
	elapsed  time.Duration
	span     time.Duration // since the previous row
	requests int64
	errors   int64
	aborted  int64
	p50, p99 time.Duration
	bytes    int64
	inFlight int64
	nodes    []NodeCount
}

// take closes the current second: it returns its figures and adds them to sum.
func (r *runner) take(sum *Summary) second {
	r.win.mu.Lock()
	s := second{requests: r.win.requests, errors: r.win.errors, aborted: r.win.aborted}
	if r.win.hist.Count() > 0 {
		s.p50, s.p99 = r.win.hist.Quantile(0.5), r.win.hist.Quantile(0.99)
	}
	sum.Latency.Merge(&r.win.hist)
	for k, v := range r.win.kinds {
		sum.ErrorKinds[k] += v
	}
	r.win.requests, r.win.errors, r.win.aborted = 0, 0, 0
	r.win.hist.Reset()
	clear(r.win.kinds)
	r.win.mu.Unlock()
	s.bytes = r.bytes.Swap(0)
	s.inFlight = r.inFlight.Load()
	sum.Requests += s.requests
	sum.Errors += s.errors
	sum.OK += s.requests - s.errors
	sum.Aborted += s.aborted
	sum.Bytes += s.bytes
	return s
}

func (r *runner) progress(s second, final bool) {
	lat := "p50 -  p99 -"
	if s.requests > 0 {
		lat = "p50 " + fmtDur(s.p50) + "  p99 " + fmtDur(s.p99)
	}
	secs := max(s.span.Seconds(), 0.001)
	line := fmt.Sprintf("[%6.1fs] %7.1f req/s  errors %d  %s  %s/s  in flight %d",
		s.elapsed.Seconds(), float64(s.requests)/secs, s.errors, lat, fmtBytes(float64(s.bytes)/secs), s.inFlight)
	switch {
	case r.cfg.Live && final:
		_, _ = fmt.Fprintf(r.cfg.Progress, "\r\x1b[K%s\n", line)
	case r.cfg.Live:
		_, _ = fmt.Fprintf(r.cfg.Progress, "\r\x1b[K%s", line)
	default:
		_, _ = fmt.Fprintln(r.cfg.Progress, line)
	}
}

// fmtDur prints a latency with three significant figures in ms or s.
func fmtDur(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms < 10:
		return strconv.FormatFloat(ms, 'f', 2, 64) + "ms"
	case ms < 1000:
		return strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
	default:
		return strconv.FormatFloat(ms/1000, 'f', 2, 64) + "s"
	}
}

// fmtBytes prints a byte count in binary units.
func fmtBytes(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatFloat(b, 'f', 0, 64) + " B"
	}
	return strconv.FormatFloat(b, 'f', 1, 64) + " " + units[i]
}

// WriteText prints the summary for people.
func (s *Summary) WriteText(w io.Writer) error {
	secs := max(s.Elapsed.Seconds(), 1e-9)
	var b strings.Builder
	fmt.Fprintf(&b, "requests   %d in %.1fs (%.1f/s): %d ok, %d errors", s.Requests, s.Elapsed.Seconds(), float64(s.Requests)/secs, s.OK, s.Errors)
	if s.Aborted > 0 {
		fmt.Fprintf(&b, ", %d aborted at the end", s.Aborted)
	}
	if s.Interrupted {
		b.WriteString(" (interrupted)")
	}
	fmt.Fprintf(&b, "\nbytes      %s (%s/s)\n", fmtBytes(float64(s.Bytes)), fmtBytes(float64(s.Bytes)/secs))
	if s.Latency.Count() > 0 {
		fmt.Fprintf(&b, "latency    min %s  p50 %s  p90 %s  p99 %s  max %s\n",
			fmtDur(s.Latency.Min()), fmtDur(s.Latency.Quantile(0.5)), fmtDur(s.Latency.Quantile(0.9)),
			fmtDur(s.Latency.Quantile(0.99)), fmtDur(s.Latency.Max()))
	}
	if len(s.ErrorKinds) > 0 {
		kinds := make([]string, 0, len(s.ErrorKinds))
		for k := range s.ErrorKinds {
			kinds = append(kinds, k)
		}
		sort.Slice(kinds, func(i, j int) bool {
			if s.ErrorKinds[kinds[i]] != s.ErrorKinds[kinds[j]] {
				return s.ErrorKinds[kinds[i]] > s.ErrorKinds[kinds[j]]
			}
			return kinds[i] < kinds[j]
		})
		parts := make([]string, len(kinds))
		for i, k := range kinds {
			parts[i] = fmt.Sprintf("%s: %d", k, s.ErrorKinds[k])
		}
		fmt.Fprintf(&b, "errors     %s\n", strings.Join(parts, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// TimelineHeader returns the CSV header of a timeline whose node columns are nodes.
func TimelineHeader(nodes []string) []string {
	h := []string{"time", "elapsed_s", "requests", "errors", "p50_ms", "p99_ms", "bytes", "in_flight"}
	for _, n := range nodes {
		h = append(h, n+"_ready")
	}
	return h
}

// timeline writes the per-second CSV.
type timeline struct {
	w     *csv.Writer
	nodes []string
}

func (t *timeline) header(nodes []string) error {
	t.nodes = slices.Clone(nodes)
	if err := t.w.Write(TimelineHeader(nodes)); err != nil {
		return fmt.Errorf("write timeline header: %w", err)
	}
	t.w.Flush()
	return t.w.Error()
}

func (t *timeline) write(s second) error {
	ms := func(d time.Duration) string {
		if s.requests == 0 {
			return ""
		}
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64)
	}
	row := []string{
		s.at.UTC().Format(time.RFC3339Nano),
		strconv.FormatFloat(s.elapsed.Seconds(), 'f', 3, 64),
		strconv.FormatInt(s.requests, 10),
		strconv.FormatInt(s.errors, 10),
		ms(s.p50), ms(s.p99),
		strconv.FormatInt(s.bytes, 10),
		strconv.FormatInt(s.inFlight, 10),
	}
	for _, name := range t.nodes {
		cell := ""
		for _, n := range s.nodes {
			if n.Name == name {
				cell = strconv.Itoa(n.Ready)
			}
		}
		row = append(row, cell)
	}
	if err := t.w.Write(row); err != nil {
		return err
	}
	t.w.Flush()
	return t.w.Error()
}

// nodePoller keeps the latest node counts, refreshed on request in its own goroutine so
// that a slow server never delays the per-second rows.
type nodePoller struct {
	names  []string
	fn     NodeCounter
	log    *slog.Logger
	mu     sync.Mutex
	last   []NodeCount
	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// startNodePoller polls once (its answer fixes the timeline's node columns), then starts
// the poller goroutine, which stops with stop.
func startNodePoller(ctx context.Context, fn NodeCounter, log *slog.Logger) (*nodePoller, error) {
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	first, err := fn(pctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("load: query node counts: %w", err)
	}
	p := &nodePoller{fn: fn, log: log, last: first, kick: make(chan struct{}, 1), done: make(chan struct{})}
	for _, n := range first {
		p.names = append(p.names, n.Name)
	}
	ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	go p.run(ctx)
	return p, nil
}

func (p *nodePoller) run(ctx context.Context) {
	defer close(p.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		}
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		counts, err := p.fn(qctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				p.log.Warn("cannot query node counts", "err", err)
			}
			continue
		}
		p.mu.Lock()
		p.last = counts
		p.mu.Unlock()
	}
}

// poll asks for a refresh; requests coalesce while one is running.
func (p *nodePoller) poll() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *nodePoller) latest() []NodeCount {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.last)
}

func (p *nodePoller) stop() {
	p.cancel()
	<-p.done
}
