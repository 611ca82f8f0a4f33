package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestMonitorRejectsBadFlagsAndConfigs(t *testing.T) {
	dir := t.TempDir()
	badYAML := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(badYAML, []byte("global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: app\n    consul_sd_configs:\n      - server: 127.0.0.1:8500\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unknownKey := filepath.Join(dir, "unknown.yml")
	if err := os.WriteFile(unknownKey, []byte("global:\n  scrape_interval: 15s\n  scrape_intervall: 5s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"everything missing or wrong", []string{"monitor", "--listen", "9090", "--storage.tsdb.retention.time", "forever", "--rules.alert.resend-delay", "0s"}, []string{
			"--config.file: required", `--listen: "9090" is not host:port`,
			`--storage.tsdb.retention.time: "forever" is not a duration`, "--rules.alert.resend-delay: 0s must be positive"}},
		{"zero retention", []string{"monitor", "--config", badYAML, "--storage.tsdb.retention.time", "0s"}, []string{
			`--storage.tsdb.retention.time: "0s" must be positive`}},
		{"unsupported discovery", []string{"monitor", "--config.file", badYAML}, []string{
			badYAML + ":5:5: scrape_configs[0].consul_sd_configs", "supported: static_configs, http_sd_configs"}},
		{"unknown key", []string{"monitor", "--config", unknownKey}, []string{unknownKey, "line 3", "scrape_intervall"}},
		{"missing file", []string{"monitor", "--config", filepath.Join(dir, "nope.yml")}, []string{"nope.yml: no such file"}},
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

func TestMonitorDefaultListen(t *testing.T) {
	tests := []struct {
		name, ip, flag, want string
	}{
		{name: "loopback without SKYFLEET_IP", want: "127.0.0.1:9090"},
		{name: "the node's address", ip: "127.0.0.7", want: "127.0.0.7:9090"},
		{name: "the flag wins", ip: "127.0.0.7", flag: "127.0.0.1:19090", want: "127.0.0.1:19090"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SKYFLEET_IP", tc.ip)
			f := &monitorFlags{configFile: "p.yml", listen: tc.flag, retention: "6h", resendDelay: time.Minute}
			opts, err := f.options(nil)
			if err != nil {
				t.Fatal(err)
			}
			if opts.Listen != tc.want || opts.Retention != 6*time.Hour {
				t.Errorf("listen %s retention %s, want %s and 6h", opts.Listen, opts.Retention, tc.want)
			}
		})
	}
}

// monitorLog is a bytes.Buffer safe for the command's logger and the test to share.
type monitorLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *monitorLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *monitorLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMonitorRunsAndStops starts `skyfleet monitor` on a configuration that scrapes itself,
// waits until its own target is up, adds a job and sends SIGHUP, waits for the new job, and
// stops the monitor by cancelling the context as SIGTERM does.
func TestMonitorRunsAndStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	config := "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: monitor\n    static_configs:\n      - targets: [\"" + addr + "\"]\n"
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr monitorLog
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"monitor", "--config.file", cfg, "--listen", addr, "--storage.tsdb.path", filepath.Join(dir, "data")}, nil, io.Discard, &stderr)
	}()

	deadline := time.Now().Add(45 * time.Second)
	for {
		body, err := monitorGet("http://" + addr + "/api/v1/query?query=up")
		if err == nil && strings.Contains(body, `"job":"monitor"`) && strings.Contains(body, `"1"]`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the monitor never scraped itself: %v %s\nstderr: %s", err, body, stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}

	// SIGHUP re-reads the file: a second job appears in the targets.
	config = strings.Replace(config, "scrape_configs:\n", "scrape_configs:\n  - job_name: reloaded\n    static_configs:\n      - targets: [\""+addr+"\"]\n", 1)
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for {
		targets, err := monitorGet("http://" + addr + "/api/v1/targets")
		if err == nil && strings.Contains(targets, `"scrapePool":"reloaded"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not load the new job: %v %s\nstderr: %s", err, targets, stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d, want 0; stderr: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("skyfleet monitor did not stop within 30s")
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "wal")); err != nil {
		t.Errorf("--storage.tsdb.path holds no TSDB: %v", err)
	}
}

func monitorGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
