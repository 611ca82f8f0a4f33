package demoapp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func testLogger(t testing.TB) *slog.Logger {
	if _, bench := t.(*testing.B); bench {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// demoSetup is a storage server and an app over a store, on loopback httptest servers.
type demoSetup struct {
	storage *httptest.Server
	app     *App
	srv     *httptest.Server
	reg     *prometheus.Registry
}

func newDemo(t testing.TB, store Store, ready bool) *demoSetup {
	t.Helper()
	st := httptest.NewServer((&Storage{}).Handler())
	t.Cleanup(st.Close)
	reg := prometheus.NewRegistry()
	a := &App{Store: store, Logger: testLogger(t), Registerer: reg, NodeID: "app-1", WorkFactor: 1}
	if err := a.Init(); err != nil {
		t.Fatal(err)
	}
	if ready {
		if err := a.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return &demoSetup{storage: st, app: a, srv: srv, reg: reg}
}

// get requests path on the app with the given headers and returns status, headers, the
// body's SHA-256 and length, and its trailer.
func (d *demoSetup) get(t testing.TB, path string, hdr map[string]string) (*http.Response, string, int64, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", d.srv.URL+path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := d.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	var head [512]byte
	n0, _ := io.ReadFull(resp.Body, head[:])
	h.Write(head[:n0])
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, hex.EncodeToString(h.Sum(nil)), n + int64(n0), head[:n0]
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestAppStreamsObjectWithDigest(t *testing.T) {
	store := NewMemStore(DemoKey)
	d := newDemo(t, store, true)
	const size = 64 << 20
	uri := d.storage.URL + "/objects/big?size=64M"
	want := sha(objectBytes("big", size, 0, size))

	for _, path := range []string{"/rest/file", "/blacktop3/rest/file"} {
		t.Run(path+" with length", func(t *testing.T) {
			resp, got, n, _ := d.get(t, path, map[string]string{"X-Key": DemoKey, "X-URI": uri})
			if resp.StatusCode != 200 || n != size || got != want {
				t.Fatalf("status %d, %d bytes, sha %s; want 200, %d bytes, sha %s", resp.StatusCode, n, got, size, want)
			}
			if resp.ContentLength != size {
				t.Errorf("Content-Length %d, want %d propagated from storage", resp.ContentLength, size)
			}
			if resp.Header.Get("Content-Type") != "application/octet-stream" {
				t.Errorf("Content-Type %q, want storage's application/octet-stream", resp.Header.Get("Content-Type"))
			}
		})
	}
	t.Run("trailer digest with TE: trailers", func(t *testing.T) {
		resp, got, n, _ := d.get(t, "/rest/file", map[string]string{"X-Key": DemoKey, "X-URI": uri, "TE": "trailers"})
		if resp.StatusCode != 200 || n != size || got != want {
			t.Fatalf("status %d, %d bytes; want 200 with the object's bytes", resp.StatusCode, n)
		}
		if tr := resp.Trailer.Get(DigestTrailer); tr != want {
			t.Fatalf("trailer %s = %q, want %q", DigestTrailer, tr, want)
		}
	})
	recs := store.Transfers()
	if len(recs) != 3 {
		t.Fatalf("%d transfers recorded, want 3", len(recs))
	}
	for _, r := range recs {
		if r.Status != StatusOK || r.Bytes != size || r.Key != DemoKey || r.NodeID != "app-1" || r.URI != d.storage.URL+"/objects/big" {
			t.Errorf("transfer recorded as %+v; want ok, %d bytes, demo key, node app-1, URI without query", r, size)
		}
	}
	if got := testutil.ToFloat64(d.app.metrics.bytes); got != 3*size {
		t.Errorf("skyfleet_app_bytes_total = %v, want %v", got, 3*size)
	}
	if got := testutil.ToFloat64(d.app.metrics.transfers.WithLabelValues(StatusOK)); got != 3 {
		t.Errorf("skyfleet_app_transfers_total{status=ok} = %v, want 3", got)
	}
}

func TestAppForwardsRange(t *testing.T) {
	d := newDemo(t, NewMemStore(DemoKey), true)
	uri := d.storage.URL + "/objects/r?size=1M"
	for _, tc := range []struct {
		name, rng  string
		wantStatus int
		wantCR     string
		off, n     int64
	}{
		{"middle", "bytes=100-1099", 206, "bytes 100-1099/1048576", 100, 1000},
		{"suffix", "bytes=-16", 206, "bytes 1048560-1048575/1048576", 1048560, 16},
		{"unsatisfiable", "bytes=2000000-", 416, "bytes */1048576", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, got, n, _ := d.get(t, "/rest/file", map[string]string{"X-Key": DemoKey, "X-URI": uri, "Range": tc.rng})
			if resp.StatusCode != tc.wantStatus || resp.Header.Get("Content-Range") != tc.wantCR {
				t.Fatalf("status %d Content-Range %q; want %d %q", resp.StatusCode, resp.Header.Get("Content-Range"), tc.wantStatus, tc.wantCR)
			}
			if tc.wantStatus == 206 && (n != tc.n || got != sha(objectBytes("r", 1<<20, tc.off, tc.n))) {
				t.Fatalf("%d bytes; want the object's bytes %d..%d", n, tc.off, tc.off+tc.n)
			}
		})
	}
}

func TestAppRefusals(t *testing.T) {
	store := NewMemStore(DemoKey)
	d := newDemo(t, store, true)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	for _, tc := range []struct {
		name       string
		hdr        map[string]string
		wantStatus int
		wantMsg    string
		counted    string
	}{
		{"no headers", nil, 400, "missing header X-Key and X-URI", StatusBadRequest},
		{"no key", map[string]string{"X-URI": "http://127.0.0.1/x"}, 400, "missing header X-Key", StatusBadRequest},
		{"no uri", map[string]string{"X-Key": DemoKey}, 400, "missing header X-URI", StatusBadRequest},
		{"not http", map[string]string{"X-Key": DemoKey, "X-URI": "ftp://127.0.0.1/x"}, 400, "X-URI", StatusBadRequest},
		{"relative", map[string]string{"X-Key": DemoKey, "X-URI": "/objects/x"}, 400, "X-URI", StatusBadRequest},
		{"unknown key", map[string]string{"X-Key": "nope", "X-URI": d.storage.URL + "/objects/x"}, 401, "unknown API key", StatusUnauthorized},
		{"upstream 404", map[string]string{"X-Key": DemoKey, "X-URI": d.storage.URL + "/nothing"}, 502, "404", StatusUpstreamError},
		{"upstream down", map[string]string{"X-Key": DemoKey, "X-URI": down.URL + "/objects/x"}, 502, "cannot fetch", StatusUpstreamError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.ToFloat64(d.app.metrics.transfers.WithLabelValues(tc.counted))
			resp, _, _, body := d.get(t, "/rest/file", tc.hdr)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d (body %s)", resp.StatusCode, tc.wantStatus, body)
			}
			var e errorBody
			if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error, tc.wantMsg) {
				t.Fatalf("body %s: want a JSON error containing %q", body, tc.wantMsg)
			}
			if strings.Contains(string(body), "nope") {
				t.Fatalf("body %s repeats the API key", body)
			}
			if after := testutil.ToFloat64(d.app.metrics.transfers.WithLabelValues(tc.counted)); after != before+1 {
				t.Fatalf("skyfleet_app_transfers_total{status=%q} went %v → %v, want +1", tc.counted, before, after)
			}
		})
	}
	for _, r := range store.Transfers() {
		if r.Status != StatusUpstreamError {
			t.Errorf("recorded %+v; only transfers with a valid key are recorded", r)
		}
	}
	if n := len(store.Transfers()); n != 2 {
		t.Errorf("%d transfers recorded, want the 2 upstream failures", n)
	}
}

func TestAppWaitsForDatabase(t *testing.T) {
	store := NewMemStore(DemoKey)
	var attempts atomic.Int32
	release := make(chan struct{})
	store.SetUnavailable(func() error {
		attempts.Add(1)
		select {
		case <-release:
			return nil
		default:
			return errors.New("connection refused")
		}
	})
	d := newDemo(t, store, false)
	d.app.InitialBackoff, d.app.MaxBackoff = time.Millisecond, 5*time.Millisecond

	resp, _, _, _ := d.get(t, "/healthz", nil)
	if resp.StatusCode != 503 {
		t.Fatalf("/healthz before the database is ready: %d, want 503", resp.StatusCode)
	}
	resp, _, _, _ = d.get(t, "/rest/file", map[string]string{"X-Key": DemoKey, "X-URI": d.storage.URL + "/objects/x?size=1K"})
	if resp.StatusCode != 503 {
		t.Fatalf("/rest/file before the database is ready: %d, want 503", resp.StatusCode)
	}
	resp, _, _, _ = d.get(t, "/blacktop3", nil)
	if resp.StatusCode != 503 {
		t.Fatalf("/blacktop3 (the seed's health URL) before the database is ready: %d, want 503", resp.StatusCode)
	}
	resp, _, _, _ = d.get(t, "/", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("/ before the database is ready: %d, want 200 (the process is up)", resp.StatusCode)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.app.Run(ctx) }()
	// Let it fail a few times, then make the database available.
	deadline := time.Now().Add(10 * time.Second)
	for attempts.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not retry Init")
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	resp, _, _, _ = d.get(t, "/healthz", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz after the database is ready: %d, want 200", resp.StatusCode)
	}
	if resp, _, _, _ = d.get(t, "/blacktop3", nil); resp.StatusCode != 200 {
		t.Fatalf("/blacktop3 after the database is ready: %d, want 200", resp.StatusCode)
	}
	resp, _, n, _ := d.get(t, "/rest/file", map[string]string{"X-Key": DemoKey, "X-URI": d.storage.URL + "/objects/x?size=1K"})
	if resp.StatusCode != 200 || n != 1024 {
		t.Fatalf("/rest/file after the database is ready: %d with %d bytes, want 200 with 1024", resp.StatusCode, n)
	}

	// The database going away again turns /healthz to 503.
	store.SetUnavailable(func() error { return errors.New("gone") })
	resp, _, _, _ = d.get(t, "/healthz", nil)
	if resp.StatusCode != 503 {
		t.Fatalf("/healthz with the database gone: %d, want 503", resp.StatusCode)
	}
}

func TestAppRunStopsWithContext(t *testing.T) {
	store := NewMemStore()
	store.SetUnavailable(func() error { return errors.New("down") })
	a := &App{Store: store, Logger: testLogger(t), InitialBackoff: time.Millisecond}
	if err := a.Init(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestAppRecordsClientGone(t *testing.T) {
	store := NewMemStore(DemoKey)
	d := newDemo(t, store, true)
	req, _ := http.NewRequest("GET", d.srv.URL+"/rest/file", nil)
	req.Header.Set("X-Key", DemoKey)
	req.Header.Set("X-URI", d.storage.URL+"/objects/huge?size=4G")
	resp, err := d.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // hang up after 1 MiB of 4 GiB
	deadline := time.Now().Add(20 * time.Second)
	for len(store.Transfers()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the abandoned transfer was never recorded")
		}
		time.Sleep(5 * time.Millisecond)
	}
	r := store.Transfers()[0]
	if r.Status != StatusClientGone || r.Bytes >= 4<<30 || r.Bytes < 1<<20 {
		t.Fatalf("recorded %+v, want client_gone with between 1 MiB and 4 GiB", r)
	}
	if got := testutil.ToFloat64(d.app.metrics.active); got != 0 {
		t.Fatalf("skyfleet_app_active_transfers = %v after the transfer ended, want 0", got)
	}
}

func TestAppMetricsExposed(t *testing.T) {
	d := newDemo(t, NewMemStore(DemoKey), true)
	mfs, err := d.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	for _, name := range []string{"skyfleet_app_bytes_total", "skyfleet_app_transfers_total", "skyfleet_app_active_transfers", "skyfleet_app_cpu_seconds_total", "skyfleet_app_cpu_cores"} {
		if !got[name] {
			t.Errorf("metric %s not registered", name)
		}
	}
	if cpu := processCPUSeconds(); cpu <= 0 {
		t.Errorf("process CPU seconds = %v, want > 0", cpu)
	}
}

// BenchmarkStream measures the app's streaming throughput (storage → app → client over
// loopback, SHA-256 over every byte), per work factor.
func BenchmarkStream(b *testing.B) {
	for _, wf := range []int{0, 1} {
		b.Run("work_factor="+string(rune('0'+wf)), func(b *testing.B) {
			d := newDemo(b, NewMemStore(DemoKey), true)
			d.app.WorkFactor = wf
			const size = 64 << 20
			b.SetBytes(size)
			req, _ := http.NewRequest("GET", d.srv.URL+"/rest/file", nil)
			req.Header.Set("X-Key", DemoKey)
			req.Header.Set("X-URI", d.storage.URL+"/objects/bench?size=64M")
			for b.Loop() {
				resp, err := d.srv.Client().Do(req)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || n != size {
					b.Fatalf("read %d bytes, %v", n, err)
				}
			}
		})
	}
}

func TestAppAbortsWhenTheObjectBreaksOff(t *testing.T) {
	store := NewMemStore(DemoKey)
	d := newDemo(t, store, true)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1048576")
		_, _ = w.Write(make([]byte, 100<<10))
		panic(http.ErrAbortHandler)
	}))
	defer broken.Close()
	req, _ := http.NewRequest("GET", d.srv.URL+"/rest/file", nil)
	req.Header.Set("X-Key", DemoKey)
	req.Header.Set("X-URI", broken.URL+"/obj")
	resp, err := d.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("the client read %d bytes and a clean end; want a broken response like the object's", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(store.Transfers()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	recs := store.Transfers()
	if len(recs) != 1 || recs[0].Status != StatusUpstreamError || recs[0].Bytes != 100<<10 {
		t.Fatalf("recorded %+v, want one upstream_error transfer of 100 KiB", recs)
	}
}

func TestAppDefaultURI(t *testing.T) {
	d := newDemo(t, NewMemStore(DemoKey), true)
	d.app.DefaultURI = d.storage.URL + "/objects/default?size=1M"
	// The seed's command: curl -H "X-Key: …" -H "X-URI:" sends no X-URI at all.
	resp, got, n, _ := d.get(t, "/blacktop3/rest/file", map[string]string{"X-Key": DemoKey})
	if resp.StatusCode != 200 || n != 1<<20 || got != sha(objectBytes("default", 1<<20, 0, 1<<20)) {
		t.Fatalf("status %d, %d bytes; want the default object", resp.StatusCode, n)
	}
	// An explicit X-URI still wins.
	resp, _, n, _ = d.get(t, "/rest/file", map[string]string{"X-Key": DemoKey, "X-URI": d.storage.URL + "/objects/other?size=1K"})
	if resp.StatusCode != 200 || n != 1024 {
		t.Fatalf("explicit X-URI: status %d, %d bytes; want 1024", resp.StatusCode, n)
	}
}
