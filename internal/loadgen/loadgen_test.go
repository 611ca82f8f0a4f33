package loadgen

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	for i := 1; i <= 10000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 5000 * time.Microsecond},
		{0.9, 9000 * time.Microsecond},
		{0.99, 9900 * time.Microsecond},
		{0.001, 10 * time.Microsecond},
		{1, 10000 * time.Microsecond},
		{0, 1 * time.Microsecond},
	} {
		t.Run(fmt.Sprint(tc.q), func(t *testing.T) {
			got := h.Quantile(tc.q)
			if rel := math.Abs(float64(got-tc.want)) / float64(tc.want); rel > 0.035 {
				t.Fatalf("Quantile(%v) = %v, want %v within 3.5%%", tc.q, got, tc.want)
			}
		})
	}
	if h.Count() != 10000 || h.Min() != time.Microsecond || h.Max() != 10*time.Millisecond {
		t.Fatalf("count %d min %v max %v", h.Count(), h.Min(), h.Max())
	}
}

func TestHistogramBucketsCoverRangeWithBoundedError(t *testing.T) {
	prev := -1
	for v := uint64(0); v < 1<<40; v = v + v/50 + 1 {
		b := bucketOf(v)
		if b < prev {
			t.Fatalf("bucketOf(%d) = %d is below the previous bucket %d", v, b, prev)
		}
		prev = b
		mid := bucketMid(b)
		if v > 0 && math.Abs(float64(mid)-float64(v))/float64(v) > 1.0/32 {
			t.Fatalf("value %dµs lands in bucket %d whose middle is %dµs: more than 1/32 off", v, b, mid)
		}
	}
	var h Histogram
	h.Record(1000 * 24 * time.Hour) // beyond the last bucket: clamped, not a panic
	h.Record(-time.Second)
	if h.Count() != 2 || h.Min() != 0 {
		t.Fatalf("count %d min %v", h.Count(), h.Min())
	}
}

func TestHistogramMergeAndEmpty(t *testing.T) {
	var a, b, empty Histogram
	if empty.Quantile(0.5) != 0 {
		t.Fatal("empty histogram has a median")
	}
	a.Record(time.Millisecond)
	b.Record(3 * time.Millisecond)
	b.Record(5 * time.Millisecond)
	a.Merge(&b)
	a.Merge(&empty)
	if a.Count() != 3 || a.Min() != time.Millisecond || a.Max() != 5*time.Millisecond {
		t.Fatalf("merged count %d min %v max %v", a.Count(), a.Min(), a.Max())
	}
	if got := a.Quantile(0.5); got < 2900*time.Microsecond || got > 3100*time.Microsecond {
		t.Fatalf("merged median %v, want about 3ms", got)
	}
}

// fastTicker ticks every few milliseconds, so that a short run has several rows.
func fastTicker() (<-chan time.Time, func()) {
	t := time.NewTicker(5 * time.Millisecond)
	return t.C, t.Stop
}

func TestRunCountsRequestsAndErrors(t *testing.T) {
	var n atomic.Int64
	var sawHost, sawKey atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawHost.Store(r.Host)
		sawKey.Store(r.Header.Get("X-Key"))
		if n.Add(1)%5 == 0 {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(bytes.Repeat([]byte("x"), 10000))
	}))
	defer srv.Close()
	var progress bytes.Buffer
	sum, err := Run(context.Background(), Config{
		URL: srv.URL, Concurrency: 4, Requests: 50,
		Header:   http.Header{"X-Key": {"k1"}, "Host": {"lb.example"}},
		Progress: &progress, Ticker: fastTicker,
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Requests != 50 || sum.OK != 40 || sum.Errors != 10 || sum.Aborted != 0 {
		t.Fatalf("summary %d requests, %d ok, %d errors, %d aborted; want 50, 40, 10, 0", sum.Requests, sum.OK, sum.Errors, sum.Aborted)
	}
	if sum.ErrorKinds["http 503"] != 10 || len(sum.ErrorKinds) != 1 {
		t.Fatalf("error kinds %v, want http 503: 10", sum.ErrorKinds)
	}
	if want := int64(40*10000 + 10*len("overloaded\n")); sum.Bytes != want {
		t.Fatalf("bytes %d, want %d", sum.Bytes, want)
	}
	if n.Load() != 50 {
		t.Fatalf("server saw %d requests, want exactly 50", n.Load())
	}
	if sawHost.Load() != "lb.example" || sawKey.Load() != "k1" {
		t.Fatalf("server saw Host %v and X-Key %v; want the -H values", sawHost.Load(), sawKey.Load())
	}
	if sum.Latency.Count() != 50 {
		t.Fatalf("latency histogram holds %d values, want 50", sum.Latency.Count())
	}
	lines := strings.Split(strings.TrimSpace(progress.String()), "\n")
	if len(lines) == 0 || !strings.Contains(lines[len(lines)-1], "req/s") || !strings.Contains(lines[len(lines)-1], "in flight") {
		t.Fatalf("progress output %q lacks the per-second line", progress.String())
	}
}

func TestRunErrorKinds(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer slow.Close()
	truncating := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		_, _ = w.Write([]byte("short"))
		panic(http.ErrAbortHandler)
	}))
	defer truncating.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()

	for _, tc := range []struct {
		name, url string
		timeout   time.Duration
		kind      string
	}{
		{"timeout", slow.URL, 50 * time.Millisecond, "timeout"},
		{"truncated body", truncating.URL, 0, "truncated"},
		{"connection refused", closed.URL, 0, "connect"},
		{"status", notFound.URL, 0, "http 404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sum, err := Run(context.Background(), Config{URL: tc.url, Requests: 3, Timeout: tc.timeout, Concurrency: 2})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Errors != 3 || sum.ErrorKinds[tc.kind] != 3 {
				t.Fatalf("errors %d by kind %v; want 3 of kind %q", sum.Errors, sum.ErrorKinds, tc.kind)
			}
		})
	}
}

func TestRunDurationAbortsOpenRequestsWithoutErrors(t *testing.T) {
	// An endless body: requests are still open when the run's time is up.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 4096)
		for r.Context().Err() == nil {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	sum, err := Run(context.Background(), Config{URL: srv.URL, Concurrency: 3, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Errors != 0 || sum.Aborted != 3 || sum.Requests != 0 {
		t.Fatalf("errors %d aborted %d requests %d; want 0 errors and the 3 open requests aborted", sum.Errors, sum.Aborted, sum.Requests)
	}
	if sum.Bytes == 0 {
		t.Fatal("no bytes counted for bodies read before the end")
	}
}

func TestRunInterrupted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sum, err := Run(ctx, Config{URL: srv.URL, Duration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Interrupted {
		t.Fatal("a run whose context ended is not marked interrupted")
	}
}

func TestRunTimeline(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Millisecond)
		_, _ = w.Write([]byte("hello"))
	}))
	defer srv.Close()
	var polls atomic.Int64
	nodes := func(ctx context.Context) ([]NodeCount, error) {
		polls.Add(1)
		return []NodeCount{{"app", 3}, {"lb", 1}}, nil
	}
	var tl bytes.Buffer
	sum, err := Run(context.Background(), Config{URL: srv.URL, Concurrency: 2, Requests: 40, Timeline: &tl, Nodes: nodes, Ticker: fastTicker})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&tl).ReadAll()
	if err != nil {
		t.Fatalf("timeline is not CSV: %v", err)
	}
	want := []string{"time", "elapsed_s", "requests", "errors", "p50_ms", "p99_ms", "bytes", "in_flight", "app_ready", "lb_ready"}
	if strings.Join(rows[0], ",") != strings.Join(want, ",") {
		t.Fatalf("header %v, want %v", rows[0], want)
	}
	if len(rows) < 2 {
		t.Fatal("no data rows")
	}
	var total, bytesSum int64
	prev := -1.0
	for _, row := range rows[1:] {
		if len(row) != len(want) {
			t.Fatalf("row %v has %d fields, want %d", row, len(row), len(want))
		}
		if _, err := time.Parse(time.RFC3339Nano, row[0]); err != nil {
			t.Fatalf("time %q: %v", row[0], err)
		}
		el, err := strconv.ParseFloat(row[1], 64)
		if err != nil || el < prev {
			t.Fatalf("elapsed_s %q is not a growing number", row[1])
		}
		prev = el
		n, _ := strconv.ParseInt(row[2], 10, 64)
		b, _ := strconv.ParseInt(row[6], 10, 64)
		total += n
		bytesSum += b
		if n > 0 && (row[4] == "" || row[5] == "") {
			t.Fatalf("row %v with requests lacks percentiles", row)
		}
		if n == 0 && (row[4] != "" || row[5] != "") {
			t.Fatalf("row %v without requests has percentiles", row)
		}
		if row[8] != "3" || row[9] != "1" {
			t.Fatalf("node columns %v, want app 3, lb 1", row[8:])
		}
	}
	if total != 40 || bytesSum != 40*5 || sum.Requests != 40 {
		t.Fatalf("timeline sums to %d requests and %d bytes; want 40 and 200", total, bytesSum)
	}
	if polls.Load() < 1 {
		t.Fatal("node counts never queried")
	}
}

func TestRunNodeQueryFailsEarly(t *testing.T) {
	_, err := Run(context.Background(), Config{URL: "http://127.0.0.1:1/", Requests: 1,
		Nodes: func(context.Context) ([]NodeCount, error) { return nil, errors.New("connection refused") }})
	if err == nil || !strings.Contains(err.Error(), "query node counts") {
		t.Fatalf("Run = %v; want the node query's error before any load", err)
	}
}

func TestConfigErrors(t *testing.T) {
	_, err := Run(context.Background(), Config{URL: "ftp://x", Concurrency: -1, Duration: -time.Second, Timeout: -1})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`url "ftp://x"`, "concurrency -1", "duration -1s", "timeout -1ns"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := Run(context.Background(), Config{URL: "http://127.0.0.1:1/"}); err == nil || !strings.Contains(err.Error(), "duration or a number of requests") {
		t.Errorf("unbounded run: %v; want a refusal", err)
	}
}

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("output differs from %s (run with -update after checking):\n%s\nwant:\n%s", path, got, want)
	}
}

func TestSummaryText(t *testing.T) {
	for _, tc := range []struct {
		name string
		sum  *Summary
	}{
		{"summary_errors.golden", &Summary{Requests: 120, OK: 117, Errors: 3, Aborted: 2, Bytes: 3 << 30, Elapsed: 60 * time.Second,
			ErrorKinds: map[string]int64{"http 503": 2, "timeout": 1}}},
		{"summary_clean.golden", &Summary{Requests: 100, OK: 100, Bytes: 100 << 10, Elapsed: 10 * time.Second, ErrorKinds: map[string]int64{}}},
		{"summary_interrupted_empty.golden", &Summary{Elapsed: 500 * time.Millisecond, Interrupted: true, ErrorKinds: map[string]int64{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.sum.Requests > 0 {
				for i := 1; i <= 100; i++ {
					tc.sum.Latency.Record(time.Duration(i) * time.Millisecond)
				}
			}
			var b strings.Builder
			if err := tc.sum.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, b.String())
		})
	}
}

func TestProgressLines(t *testing.T) {
	var out strings.Builder
	r := &runner{cfg: Config{Progress: &out}}
	rows := []second{
		{elapsed: time.Second, span: time.Second, requests: 14, errors: 1, p50: 651 * time.Millisecond, p99: 1210 * time.Millisecond, bytes: 956712960, inFlight: 10},
		{elapsed: 2 * time.Second, span: time.Second, inFlight: 10},
		{elapsed: 2500 * time.Millisecond, span: 500 * time.Millisecond, requests: 5, p50: 3 * time.Millisecond, p99: 8 * time.Millisecond, bytes: 1 << 20},
	}
	for i, row := range rows {
		r.progress(row, i == len(rows)-1)
	}
	r.cfg.Live = true
	for i, row := range rows {
		r.progress(row, i == len(rows)-1)
	}
	golden(t, "progress.golden", out.String())
}
