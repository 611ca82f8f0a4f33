package lb

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testLogger writes to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// namedBackend is an httptest server that answers its name, and holds requests to /hold
// until released.
type namedBackend struct {
	name    string
	srv     *httptest.Server
	mu      sync.Mutex
	release chan struct{}
	holding chan struct{}
}

func newNamedBackend(t testing.TB, name string) *namedBackend {
	t.Helper()
	return newNamedBackendOn(t, name, nil)
}

// newNamedBackendOn serves on ln, or on a new loopback port when ln is nil.
func newNamedBackendOn(t testing.TB, name string, ln net.Listener) *namedBackend {
	t.Helper()
	nb := &namedBackend{name: name, release: make(chan struct{}), holding: make(chan struct{}, 64)}
	nb.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			nb.holding <- struct{}{}
			nb.mu.Lock()
			rel := nb.release
			nb.mu.Unlock()
			select {
			case <-rel:
			case <-r.Context().Done():
				return
			}
		}
		_, _ = io.WriteString(w, nb.name)
	}))
	if ln != nil {
		nb.srv.Listener.Close()
		nb.srv.Listener = ln
	}
	nb.srv.Start()
	t.Cleanup(nb.srv.Close)
	return nb
}

func (nb *namedBackend) backend() Backend {
	return Backend{ID: nb.name, Addr: nb.srv.Listener.Addr().String()}
}

// waitHolding waits until a request is held on the backend.
func (nb *namedBackend) waitHolding(t testing.TB) {
	t.Helper()
	select {
	case <-nb.holding:
	case <-time.After(10 * time.Second):
		t.Fatalf("no request reached %s/hold", nb.name)
	}
}

func (nb *namedBackend) releaseAll() {
	nb.mu.Lock()
	defer nb.mu.Unlock()
	close(nb.release)
	nb.release = make(chan struct{})
}

// startBuiltin runs a builtin engine on a loopback port and returns it with its base URL.
// The engine stops at the end of the test.
func startBuiltin(t testing.TB, opts BuiltinOptions, backends ...Backend) (*Builtin, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.Listener = ln
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 5 * time.Second
	}
	b, err := NewBuiltin(opts)
	if err != nil {
		t.Fatal(err)
	}
	b.Update(backends)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	scheme := "http"
	if opts.TLS != nil {
		scheme = "https"
	}
	return b, scheme + "://" + ln.Addr().String()
}

// get fetches url and returns status and body.
func get(t testing.TB, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

func newClient(t testing.TB) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// tlsConfigTrusting returns a client TLS configuration that trusts the certificate in pemBundle.
func tlsConfigTrusting(t testing.TB, pemBundle []byte) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBundle) {
		t.Fatal("no certificate in the PEM bundle")
	}
	return &tls.Config{RootCAs: pool}
}
