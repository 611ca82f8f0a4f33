package cli

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/skyfleet/skyfleet/internal/demoapp"
)

func TestAppFlagDefaults(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ip          string
		f           appFlags
		wantListen  string
		wantMetrics string
		wantErr     []string
	}{
		{"loopback default", "", appFlags{db: "memory", grace: time.Second}, "127.0.0.1:8080", "127.0.0.1:9100", nil},
		{"instance address", "127.0.0.7", appFlags{db: "memory", grace: time.Second}, "127.0.0.7:8080", "127.0.0.7:9100", nil},
		{"metrics off", "", appFlags{db: "memory", metricsListen: "none", grace: time.Second}, "127.0.0.1:8080", "", nil},
		{"metrics elsewhere", "", appFlags{db: "memory", listen: "127.0.0.1:80", metricsListen: "127.0.0.1:9101", grace: time.Second}, "127.0.0.1:80", "127.0.0.1:9101", nil},
		{"every problem at once", "", appFlags{listen: "nohost", workFactor: -1, grace: 0, defaultURI: "storage/objects/x"},
			"", "", []string{`--listen: "nohost" is not host:port`, "--db: required", "--work-factor: -1 is outside 0..1000", "--shutdown-grace",
				`--default-uri: "storage/objects/x" is not an absolute http or https URL`}},
		{"metrics on the client address", "", appFlags{db: "memory", listen: "127.0.0.1:80", metricsListen: "127.0.0.1:80", grace: time.Second},
			"", "", []string{"--metrics-listen: 127.0.0.1:80 is also the --listen address"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SKYFLEET_IP", tc.ip)
			listen, metrics, err := tc.f.resolve()
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil || listen != tc.wantListen || metrics != tc.wantMetrics {
				t.Fatalf("resolve = %q, %q, %v; want %q, %q", listen, metrics, err, tc.wantListen, tc.wantMetrics)
			}
		})
	}
}

func TestDemoRolesDefaultListen(t *testing.T) {
	t.Setenv("SKYFLEET_IP", "")
	if got := demoListen(8081); got != "127.0.0.1:8081" {
		t.Errorf("storage default without SKYFLEET_IP = %s", got)
	}
	t.Setenv("SKYFLEET_IP", "127.0.3.4")
	if got := demoListen(8081); got != "127.0.3.4:8081" {
		t.Errorf("storage default with SKYFLEET_IP = %s", got)
	}
}

// freeDemoAddr returns a free port on a fresh random 127.x.y.z address.
func freeDemoAddr(t *testing.T) (ip string, port int) {
	t.Helper()
	for range 20 {
		ip = fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(250), rand.IntN(256), 1+rand.IntN(250))
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			continue
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		return ip, port
	}
	t.Fatal("no free loopback address")
	return "", 0
}

// startRole runs one skyfleet command line in the background until the test ends, then
// stops it as SIGTERM would and checks that it exited 0.
func startRole(t *testing.T, args ...string) *syncBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan int, 1)
	go func() { done <- Main(ctx, append(args, "--log-level", "info"), strings.NewReader(""), &out, &out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("%s exited %d:\n%s", args[0], code, out.String())
			}
		case <-time.After(60 * time.Second):
			t.Errorf("%s did not stop within 60s", args[0])
		}
	})
	return &out
}

// waitHTTP polls url until it answers want, failing the test at the deadline.
func waitHTTP(t *testing.T, url string, want int, logs ...*syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		if time.Now().After(deadline) {
			var all strings.Builder
			for _, l := range logs {
				all.WriteString(l.String())
			}
			t.Fatalf("%s did not answer %d in time (last: %v)\n%s", url, want, err, all.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDemoRolesTogether runs the postgres, storage and app roles as the example does, on
// their own loopback addresses, puts load through the app with the tutorial's headers and
// finds every transfer recorded in PostgreSQL.
func TestDemoRolesTogether(t *testing.T) {
	if _, err := demoapp.FindPostgresBin(""); err != nil {
		if os.Getenv("SKYFLEET_REQUIRE_INTEGRATION") == "" {
			t.Skipf("no PostgreSQL: %v", err)
		}
		t.Fatalf("SKYFLEET_REQUIRE_INTEGRATION is set: %v", err)
	}
	dbIP, dbPort := freeDemoAddr(t)
	stIP, stPort := freeDemoAddr(t)
	appIP, appPort := freeDemoAddr(t)
	_, metricsPort := freeDemoAddr(t)
	dbURL := fmt.Sprintf("postgres://skyfleet@%s:%d/skyfleet?sslmode=disable", dbIP, dbPort)

	// The app starts first, as it may under a provider: it must wait for the database.
	t.Setenv("SKYFLEET_IP", appIP)
	appOut := startRole(t, "app", "--db", dbURL, "--demo-key", demoapp.DemoKey,
		"--listen", fmt.Sprintf("%s:%d", appIP, appPort), "--metrics-listen", fmt.Sprintf("%s:%d", appIP, metricsPort), "--node-id", "app-test")
	appBase := fmt.Sprintf("http://%s:%d", appIP, appPort)
	waitHTTP(t, appBase+"/", 200, appOut)
	if resp, err := http.Get(appBase + "/blacktop3"); err != nil || resp.StatusCode != 503 {
		t.Fatalf("/blacktop3 before the database exists: %v %v, want 503", resp, err)
	}
	if resp, err := http.Get(appBase + "/healthz"); err != nil || resp.StatusCode != 503 {
		t.Fatalf("/healthz before the database exists: %v %v, want 503", resp, err)
	}

	dbOut := startRole(t, "postgres", "--dir", filepath.Join(t.TempDir(), "pgdata"), "--listen", dbIP, "--port", fmt.Sprint(dbPort))
	stOut := startRole(t, "storage", "--listen", fmt.Sprintf("%s:%d", stIP, stPort))
	waitHTTP(t, fmt.Sprintf("http://%s:%d/healthz", stIP, stPort), 200, stOut)
	waitHTTP(t, appBase+"/healthz", 200, appOut, dbOut)
	waitHTTP(t, appBase+"/blacktop3", 200, appOut)

	out, errOut, code := runCLI(t, "load", "-n", "6", "-c", "3", "--fail-on-error",
		"-H", "X-Key: "+demoapp.DemoKey,
		"-H", fmt.Sprintf("X-URI: http://%s:%d/objects/demo?size=8M", stIP, stPort),
		appBase+"/blacktop3/rest/file")
	if code != 0 || !strings.Contains(out, "6 ok, 0 errors") || !strings.Contains(out, "48.0 MiB") {
		t.Fatalf("load exited %d:\n%s\n%s", code, out, errOut)
	}
	out, _, code = runCLI(t, "load", "-n", "2", "-q", "--fail-on-error", "-H", "X-Key: wrong",
		"-H", fmt.Sprintf("X-URI: http://%s:%d/objects/demo", stIP, stPort), appBase+"/rest/file")
	if code != 1 || !strings.Contains(out, "http 401: 2") {
		t.Fatalf("load with a wrong key exited %d:\n%s", code, out)
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n, total int64
	if err := conn.QueryRow(ctx, "SELECT count(*), coalesce(sum(bytes), 0) FROM transfers WHERE status = 'ok' AND node_id = 'app-test'").Scan(&n, &total); err != nil {
		t.Fatal(err)
	}
	if n != 6 || total != 6*8<<20 {
		t.Fatalf("transfers table holds %d ok transfers of %d bytes, want 6 of %d", n, total, 6*8<<20)
	}

	resp, err := http.Get(fmt.Sprintf("http://%s:%d/metrics", appIP, metricsPort))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, w := range []string{`skyfleet_app_transfers_total{status="ok"} 6`, `skyfleet_app_transfers_total{status="unauthorized"} 2`, "skyfleet_app_cpu_seconds_total ", "process_cpu_seconds_total "} {
		if !strings.Contains(string(body), w) {
			t.Errorf("metrics lack %q", w)
		}
	}
}
