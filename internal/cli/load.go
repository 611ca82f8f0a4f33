package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/skyfleet/skyfleet/internal/loadgen"
)

// loadFlags holds the flags of `skyfleet load`.
type loadFlags struct {
	remote      remoteConfig
	concurrency int
	duration    time.Duration
	requests    int64
	headers     []string
	insecure    bool
	timeout     time.Duration
	failOnError bool
	timeline    string
	infra       string
	quiet       bool
}

func newLoadCmd(e *env) *cobra.Command {
	f := &loadFlags{}
	cmd := &cobra.Command{
		Use:   "load URL",
		Short: "Put HTTP load on a URL and report throughput, latency and errors",
		Long: `Send requests to URL from --concurrency clients until --duration has passed or --requests
have been made (whichever comes first; default --duration 10s). Every response body is read
to the end and discarded, so large downloads cost no memory.

Every second a progress line goes to stderr (requests/s, errors, p50/p99 latency, bytes/s,
requests in flight); at the end a summary goes to stdout: totals, latency percentiles,
throughput and errors by kind (http <status>, timeout, connect, reset, truncated, tls).
Requests still open when the duration ends are cancelled and counted as aborted, not as
errors.

--timeline FILE writes a CSV row per second: time, elapsed_s, requests, errors, p50_ms,
p99_ms, bytes, in_flight and, with --infra ID, one <node>_ready column per node of that
infrastructure with its ready instances, read from the server (--server) every second.`,
		Example: `  # the seed tutorial's load, through a load balancer, ten clients for five minutes
  skyfleet load -c 10 -d 5m -k \
    -H 'X-Key: 1a7e159a-ffd8-49c8-8b40-549870c70e73' \
    -H 'X-URI: http://127.0.0.5:8081/objects/demo?size=1G' \
    http://127.0.0.9/blacktop3/rest/file

  # with a timeline of the app cluster's size
  skyfleet load -c 10 -d 5m --timeline load.csv --infra $ID --server http://127.0.0.1:5000 URL`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLoad(cmd.Context(), e, f, args[0])
		},
	}
	addRemoteFlags(cmd, &f.remote)
	fl := cmd.Flags()
	fl.IntVarP(&f.concurrency, "concurrency", "c", 10, fmt.Sprintf("requests kept in flight (1..%d)", loadgen.MaxConcurrency))
	fl.DurationVarP(&f.duration, "duration", "d", 0, "how long to run (default 10s when --requests is not given)")
	fl.Int64VarP(&f.requests, "requests", "n", 0, "how many requests to make (0: no limit, the duration ends the run)")
	fl.StringArrayVarP(&f.headers, "header", "H", nil, `request header "Name: value" (repeatable)`)
	fl.BoolVarP(&f.insecure, "insecure", "k", false, "do not verify TLS certificates (as curl -k)")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Minute, "limit of each request, body included (0: none)")
	fl.BoolVar(&f.failOnError, "fail-on-error", false, "exit with status 1 if any request failed")
	fl.StringVar(&f.timeline, "timeline", "", "write a per-second CSV timeline to this file")
	fl.StringVarP(&f.infra, "infra", "i", "", "infrastructure whose ready instances per node go into the timeline")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress lines, only the summary")
	return cmd
}

// parseHeaders reads "Name: value" strings.
func parseHeaders(in []string) (http.Header, error) {
	h := http.Header{}
	var errs []error
	for _, s := range in {
		name, value, ok := strings.Cut(s, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			errs = append(errs, fmt.Errorf(`-H %q: want "Name: value"`, s))
			continue
		}
		h.Add(name, strings.TrimSpace(value))
	}
	return h, errors.Join(errs...)
}

func runLoad(ctx context.Context, e *env, f *loadFlags, target string) error {
	hdr, err := parseHeaders(f.headers)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if f.duration == 0 && f.requests == 0 {
		f.duration = 10 * time.Second
	}
	if f.concurrency < 1 || f.concurrency > loadgen.MaxConcurrency {
		errs = append(errs, fmt.Errorf("--concurrency: %d is outside 1..%d", f.concurrency, loadgen.MaxConcurrency))
	}
	if f.remote.server != "" && f.infra == "" {
		errs = append(errs, errors.New("--server: only used for the timeline's node counts, which need --infra"))
	}
	if f.infra != "" && f.timeline == "" {
		errs = append(errs, errors.New("--infra: node counts go into the timeline; give --timeline FILE too"))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if !strings.Contains(target, "://") {
		target = "http://" + target // as curl does
	}
	cfg := loadgen.Config{
		URL: target, Header: hdr, Concurrency: f.concurrency, Duration: f.duration, Requests: f.requests,
		Timeout: f.timeout, Insecure: f.insecure, Logger: e.logger().With("component", "load"),
	}
	if !f.quiet {
		cfg.Progress = e.stderr
		if fi, ok := e.stderr.(*os.File); ok {
			if st, err := fi.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				cfg.Live = true
			}
		}
	}
	if f.infra != "" {
		c, err := f.remote.client()
		if err != nil {
			return fmt.Errorf("--server: %w", err)
		}
		id := f.infra
		cfg.Nodes = func(ctx context.Context) ([]loadgen.NodeCount, error) {
			d, err := c.Infra(ctx, id)
			if err != nil {
				return nil, err
			}
			out := make([]loadgen.NodeCount, len(d.Nodes))
			for i, n := range d.Nodes {
				out[i] = loadgen.NodeCount{Name: n.Name, Ready: n.Ready}
			}
			return out, nil
		}
	}
	if f.timeline != "" {
		tf, err := os.Create(f.timeline)
		if err != nil {
			return fmt.Errorf("--timeline: %w", err)
		}
		defer func() { _ = tf.Close() }()
		cfg.Timeline = tf
	}
	sum, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := sum.WriteText(e.stdout); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	if f.failOnError && sum.Errors > 0 {
		_, _ = fmt.Fprintf(e.stderr, "skyfleet load: %d of %d requests failed\n", sum.Errors, sum.Requests)
		return &ExitError{Code: 1}
	}
	return nil
}
