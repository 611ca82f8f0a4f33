package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/events"
	"github.com/skyfleet/skyfleet/internal/lb"
	"github.com/skyfleet/skyfleet/internal/registry"
	"github.com/skyfleet/skyfleet/internal/store"
)

func TestLBRejectsBadFlags(t *testing.T) {
	t.Setenv("SKYFLEET_INFRA_ID", "")
	dir := t.TempDir()
	emptyToken := filepath.Join(dir, "token")
	if err := os.WriteFile(emptyToken, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"everything missing", []string{"lb"}, []string{
			"--infra: required", "--backend: required", "--backend-port: 0 is outside 1..65535"}},
		{"bad engine and tls", []string{"lb", "--infra", "i", "--backend", "app", "--backend-port", "8080",
			"--engine", "nginx", "--tls-cert", "c.pem", "--haproxy-slots", "0", "--drain-timeout", "0s"}, []string{
			`--engine: "nginx" is not an engine; use builtin or haproxy`, "--tls-cert and --tls-key: give both or neither",
			"--haproxy-slots: 0 is outside 1..10000", "--drain-timeout: 0s must be positive"}},
		{"bad addresses", []string{"lb", "--infra", "i", "--backend", "app", "--backend-port", "8080",
			"--listen", "8080", "--metrics-listen", "x"}, []string{`--listen: "8080" is not host:port`, `--metrics-listen: "x" is not host:port or none`}},
		{"redirect without TLS", []string{"lb", "--infra", "i", "--backend", "app", "--backend-port", "8080",
			"--redirect-http", "127.0.0.1:8081"}, []string{"--redirect-http: needs --tls-cert/--tls-key or --tls-self-signed"}},
		{"metrics on the client port", []string{"lb", "--infra", "i", "--backend", "app", "--backend-port", "8080",
			"--listen", "127.0.0.1:9999", "--metrics-listen", "127.0.0.1:9999"}, []string{"--metrics-listen: 127.0.0.1:9999 is also the client --listen address"}},
		{"empty token file", []string{"lb", "--infra", "i", "--backend", "app", "--backend-port", "8080",
			"--token-file", emptyToken}, []string{"--token-file: read token file " + emptyToken + ": the file is empty"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(context.Background(), tc.args, nil, &stdout, &stderr)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr: %s", code, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}

func TestLBDefaultAddresses(t *testing.T) {
	tests := []struct {
		name, ip, listen, metrics string
		wantListen, wantMetrics   string
	}{
		{"no instance address", "", "", "", "127.0.0.1:8080", "127.0.0.1:9101"},
		{"instance address from the local provider", "127.0.0.7", "", "", "127.0.0.7:80", "127.0.0.7:9101"},
		{"explicit listen", "127.0.0.7", "127.0.0.9:8443", "", "127.0.0.9:8443", "127.0.0.9:9101"},
		{"metrics off", "", "", "none", "127.0.0.1:8080", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SKYFLEET_IP", tc.ip)
			t.Setenv("SKYFLEET_NODE_ID", "")
			f := &lbFlags{infra: "i", backend: "app", backendPort: 8080, engine: "builtin", slots: 64,
				listen: tc.listen, metricsListen: tc.metrics, drainTimeout: time.Second}
			f.remote.server = "http://127.0.0.1:5000"
			setup, err := f.resolve(slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if setup.metricsListen != tc.wantMetrics {
				t.Errorf("metrics listen = %q, want %q", setup.metricsListen, tc.wantMetrics)
			}
			if got := setup.role.Reporter.Name; got != tc.wantListen {
				t.Errorf("listen (reporter name) = %q, want %q", got, tc.wantListen)
			}
		})
	}
}

// TestLBServesThroughTheRegistry runs `skyfleet lb` with each engine against an
// orchestrator's registry routes and checks that traffic reaches the node's ready instance and
// metrics are served.
func TestLBServesThroughTheRegistry(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		scheme  string
		metric  string
		haproxy bool
	}{
		{"builtin", nil, "http", `skyfleet_lb_requests_total{backend="n1",code="200"}`, false},
		{"builtin with self-signed TLS", []string{"--tls-self-signed"}, "https", `skyfleet_lb_requests_total{backend="n1",code="200"}`, false},
		{"haproxy with self-signed TLS", []string{"--engine", "haproxy", "--tls-self-signed"}, "https", "haproxy_server_current_sessions", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.haproxy {
				if _, err := lb.FindHAProxy(""); err != nil {
					if os.Getenv("SKYFLEET_REQUIRE_INTEGRATION") != "" {
						t.Fatalf("SKYFLEET_REQUIRE_INTEGRATION is set: %v", err)
					}
					t.Skip(err)
				}
			}
			testLBServes(t, tc.args, tc.scheme, tc.metric)
		})
	}
}

func testLBServes(t *testing.T, extra []string, scheme, metric string) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hub := events.NewHub()
	defer hub.Close()
	reg, err := registry.New(registry.Options{Store: st, Hub: hub})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(registry.EndpointsPattern, reg.EndpointsHandler())
	mux.Handle(registry.LBReportPattern, reg.LBReportHandler())
	server := httptest.NewServer(mux)
	defer server.Close()

	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "from app")
	}))
	defer app.Close()
	appPort := app.Listener.Addr().(*net.TCPAddr).Port
	err = st.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.PutInfra(&store.InfraRecord{ID: "inf", Descriptor: "infra_name: t\nnodes:\n  - name: app\n    type: app\n"}); err != nil {
			return err
		}
		return tx.PutInstance(&store.InstanceRecord{InfraID: "inf", Node: "app", NodeID: "n1", State: store.StateReady, Addresses: []string{"127.0.0.1"}})
	})
	if err != nil {
		t.Fatal(err)
	}

	listen, metrics := freeLBAddr(t), freeLBAddr(t)
	var redirect string
	if scheme == "https" {
		redirect = freeLBAddr(t)
		extra = append(extra, "--redirect-http", redirect)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		args := append([]string{"lb", "--server", server.URL, "--infra", "inf", "--backend", "app",
			"--backend-port", strconv.Itoa(appPort), "--listen", listen, "--metrics-listen", metrics}, extra...)
		done <- Main(ctx, args, nil, &stdout, &stderr)
	}()
	// The certificate is made inside the lb process; this test only checks that TLS is served.
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	client := &http.Client{Timeout: 5 * time.Second, Transport: tr}
	fetch := func(url string) string {
		resp, err := client.Get(url)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	deadline := time.Now().Add(15 * time.Second)
	for fetch(scheme+"://"+listen+"/") != "from app" {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("no answer from the app through skyfleet lb; stderr:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m := fetch("http://" + metrics + "/metrics"); !strings.Contains(m, metric) {
		t.Errorf("metrics lack %s:\n%s", metric, m)
	}
	if redirect != "" {
		noFollow := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
		resp, err := noFollow.Get("http://" + redirect + "/x?y=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := "https://" + listen + "/x?y=1"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
			t.Errorf("plain HTTP answered %d to %q, want 308 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	// Close client connections first: haproxy's soft stop waits for them.
	tr.CloseIdleConnections()
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
}

func freeLBAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestHTTPSRedirect(t *testing.T) {
	tests := []struct{ port, host, uri, want string }{
		{"443", "lb.example:80", "/a?b=c", "https://lb.example/a?b=c"},
		{"8443", "127.0.0.1:8080", "/", "https://127.0.0.1:8443/"},
		{"8443", "[::1]:8080", "/p", "https://[::1]:8443/p"},
		{"443", "lb.example", "/", "https://lb.example/"},
	}
	for _, tc := range tests {
		t.Run(tc.host+tc.uri, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, tc.uri, nil)
			req.Host = tc.host
			httpsRedirect(tc.port).ServeHTTP(rec, req)
			if rec.Code != http.StatusPermanentRedirect || rec.Header().Get("Location") != tc.want {
				t.Fatalf("got %d %q, want 308 %q", rec.Code, rec.Header().Get("Location"), tc.want)
			}
		})
	}
}
