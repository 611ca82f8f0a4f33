package cli

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/goleak"

	"github.com/skyfleet/skyfleet/internal/api"
	"github.com/skyfleet/skyfleet/internal/client"
	"github.com/skyfleet/skyfleet/internal/store"
)

// daemonCmd returns a command carrying the daemon flags parsed from args, as serve has them.
func daemonCmd(t *testing.T, args ...string) (*cobra.Command, *daemonConfig) {
	t.Helper()
	var c daemonConfig
	cmd := &cobra.Command{Use: "serve"}
	addDaemonFlags(cmd, &c, "")
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return cmd, &c
}

func TestListenAddr(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, "127.0.0.1:5000"},
		{[]string{"--listen", "127.0.0.2:6000"}, "127.0.0.2:6000"},
		{[]string{"--host", "127.0.0.3", "--port", "5050"}, "127.0.0.3:5050"},
		{[]string{"--listen", "[::1]:7000", "--port", "7001"}, "[::1]:7001"},
		{[]string{"--host", "0.0.0.0"}, "0.0.0.0:5000"},
	}
	for _, c := range cases {
		cmd, cfg := daemonCmd(t, c.args...)
		got, err := cfg.listenAddr(cmd)
		if err != nil || got != c.want {
			t.Errorf("%v: %q, %v; want %q", c.args, got, err, c.want)
		}
	}
	for _, bad := range [][]string{{"--listen", "5000"}, {"--port", "70000"}} {
		cmd, cfg := daemonCmd(t, bad...)
		if _, err := cfg.listenAddr(cmd); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestDaemonRefusals(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"any address without a token", []string{"--listen", "0.0.0.0:0"}, "refusing to listen on 0.0.0.0:0 without authentication"},
		{"a host name without a token", []string{"--listen", "example.org:0"}, "refusing to listen"},
		{"empty token file", []string{"--listen", "127.0.0.1:0", "--token-file", empty}, "the file is empty"},
		{"missing token file", []string{"--listen", "127.0.0.1:0", "--token-file", filepath.Join(dir, "nope")}, "read token file"},
		{"tls cert without key", []string{"--listen", "127.0.0.1:0", "--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd, cfg := daemonCmd(t, c.args...)
			d, err := newDaemon(cmd, cfg, filepath.Join(dir, "data"), discardLogger())
			if err == nil {
				d.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q lacks %q", err, c.want)
			}
		})
	}
}

// startDaemon runs a daemon on a free loopback port in a fresh data directory and stops it at
// the end of the test.
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	cmd, cfg := daemonCmd(t, append([]string{"--listen", "127.0.0.1:0", "--resync", "200ms"}, args...)...)
	d, err := newDaemon(cmd, cfg, t.TempDir(), discardLogger())
	if err != nil {
		t.Fatalf("new daemon: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("daemon did not stop within 30s")
		}
	})
	return d
}

func TestServeStopsAndReleasesTheStore(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cmd, cfg := daemonCmd(t, "--listen", "127.0.0.1:0")
	dir := t.TempDir()
	d, err := newDaemon(cmd, cfg, dir, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	resp, err := http.Get(d.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// An open event stream must not hold up the shutdown.
	c, err := client.New(client.Options{Addr: d.URL})
	if err != nil {
		t.Fatal(err)
	}
	nodes, _ := os.ReadFile(filepath.Join("testdata", "serve", "nodes.yaml"))
	infra, _ := os.ReadFile(filepath.Join("testdata", "serve", "infra.yaml"))
	if _, err := c.ImportNodeDefs(ctx, "nodes.yaml", nodes); err != nil {
		t.Fatal(err)
	}
	res, err := c.CreateInfra(ctx, "infra.yaml", infra)
	if err != nil {
		t.Fatal(err)
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	watching := make(chan error, 1)
	go func() {
		watching <- c.Watch(watchCtx, res.ID, 0, func(api.Event) error { return nil }, client.WatchOptions{MaxBackoff: 10 * time.Millisecond})
	}()
	time.Sleep(100 * time.Millisecond) // let the stream open; not a correctness condition
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not stop")
	}
	// The data directory is free again.
	st, err := store.Open(dir, store.Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("store still held after shutdown: %v", err)
	}
	st.Close()
	http.DefaultClient.CloseIdleConnections()
	// The watcher was cut off by the shutdown and keeps trying to reconnect until told to stop.
	stopWatch()
	if err := <-watching; !errors.Is(err, context.Canceled) {
		t.Errorf("watcher ended with %v, want context.Canceled", err)
	}
}

func TestServeRequiresTheToken(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--token-file", tokenFile)
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/healthz", "", 200},
		{"/v1/infrastructures", "", 401},
		{"/infrastructures/", "wrong", 401},
		{"/v1/infrastructures", "t0ken", 200},
		{"/infrastructures/", "t0ken", 200},
	} {
		req, _ := http.NewRequest("GET", d.URL+c.path, nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s with token %q: %d, want %d", c.path, c.token, resp.StatusCode, c.want)
		}
	}
	// The CLI takes the token from --token-file or SKYFLEET_TOKEN.
	out, errOut, code := runCLI(t, "status", "--server", d.URL)
	if code == 0 || !strings.Contains(errOut, "missing or invalid bearer token") {
		t.Errorf("status without token: code %d, %q %q", code, out, errOut)
	}
	if _, errOut, code := runCLI(t, "status", "--server", d.URL, "--token-file", tokenFile); code != 0 {
		t.Errorf("status with --token-file: %d %s", code, errOut)
	}
	t.Setenv("SKYFLEET_TOKEN", "t0ken")
	if _, errOut, code := runCLI(t, "status", "--server", d.URL); code != 0 {
		t.Errorf("status with SKYFLEET_TOKEN: %d %s", code, errOut)
	}
}

// runCLI runs one skyfleet command line in-process.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	// A bound, so that a server that never gets ready fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code = Main(ctx, append(args, "--log-level", "error"), strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

func TestImportIntoDataDir(t *testing.T) {
	dir := t.TempDir()
	nodes := filepath.Join("testdata", "serve", "nodes.yaml")
	out, errOut, code := runCLI(t, "import", "--data-dir", dir, nodes)
	if code != 0 || out != "Successfully imported nodes: app, lb\n" {
		t.Fatalf("import: %d %q %q", code, out, errOut)
	}
	// A held data directory is refused, naming the holder.
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, errOut, code = runCLI(t, "import", "--data-dir", dir, nodes)
	if code == 0 || !strings.Contains(errOut, "in use by another process (pid") || !strings.Contains(errOut, "--server") {
		t.Errorf("import into a held directory: %d %q", code, errOut)
	}
	// A bad file gives every problem with its position.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("'node_def:x':\n  - resource: {type: sim, colour: red}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = runCLI(t, "import", "--data-dir", t.TempDir(), bad)
	if code != 1 || !strings.Contains(errOut, bad+":2:") {
		t.Errorf("bad import: %d %q", code, errOut)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
