package cli

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/skyfleet/skyfleet/internal/client"
	"github.com/skyfleet/skyfleet/internal/monitor"
	"github.com/skyfleet/skyfleet/internal/store"
)

// The tests in this file run the seed's autoscaling chain end to end with real monitoring
// components: a target whose load the test sets, a rule that fires on it, and skyfleet
// scaling a sim node out while the load is high and back in once it is low. They differ only
// in what evaluates the rules and how the alerts reach skyfleet:
//
//	(a) Prometheus → Alertmanager → webhook POST /v1/alerts/alertmanager
//	(b) Prometheus → POST /api/v2/alerts (no Alertmanager)
//	(c) skyfleet monitor (embedded Prometheus) → POST /api/v2/alerts
//
// The configuration files they write are the ones docs/autoscaling.md shows. Logs of the
// processes, the configuration and the decision log are kept in $SKYFLEET_ARTIFACTS_DIR/<test>
// when that is set.

const e2eAlertToken = "alert-token-e2e"

const e2eNodeDefs = `'node_def:app':
  - resource: {type: sim, boot_time: 1s}
    health_check: {ping: false}
`

const e2eInfra = `user_id: e2e
infra_name: autoscaling-e2e
nodes:
  - name: app
    type: app
    scaling:
      min: 1
      max: 3
      scale_out_cooldown: 1s
      scale_in_cooldown: 2s
`

// e2eRules is the rule file (Prometheus 2.x format); %[1]s is the infrastructure id.
const e2eRules = `groups:
  - name: app
    interval: 1s
    rules:
      - alert: app_overloaded
        expr: test_load{instance_group="app"} > 50
        for: 2s
        labels:
          alert: overloaded
          node: app
          infra_id: "%[1]s"
      - alert: app_underloaded
        expr: test_load{instance_group="app"} < 20
        for: 2s
        labels:
          alert: underloaded
          node: app
          infra_id: "%[1]s"
`

// e2ePrometheus is prometheus.yml: %[1]s the rule file, %[2]s the load target's host:port,
// %[3]s the alerting section.
const e2ePrometheus = `global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %[1]s
scrape_configs:
  - job_name: load
    static_configs:
      - targets: ["%[2]s"]
%[3]s`

// e2eAlertToAlertmanager sends alerts to an Alertmanager at %[1]s.
const e2eAlertToAlertmanager = `alerting:
  alertmanagers:
    - api_version: v2
      static_configs:
        - targets: ["%[1]s"]
`

// e2eAlertToSkyfleet sends alerts straight to skyfleet serve at %[1]s, with the alert token
// %[2]s.
const e2eAlertToSkyfleet = `alerting:
  alertmanagers:
    - api_version: v2
      path_prefix: /
      authorization:
        credentials: %[2]s
      static_configs:
        - targets: ["%[1]s"]
`

// e2eAlertmanager is alertmanager.yml: %[1]s is skyfleet's base URL, %[2]s the alert token.
const e2eAlertmanager = `route:
  receiver: skyfleet
  group_by: [alertname, infra_id, node]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 10s
receivers:
  - name: skyfleet
    webhook_configs:
      - url: %[1]s/v1/alerts/alertmanager
        send_resolved: true
        http_config:
          authorization:
            credentials: %[2]s
`

// e2eBinary finds a monitoring binary, skipping the test when it is missing unless
// SKYFLEET_REQUIRE_INTEGRATION is set.
func e2eBinary(t *testing.T, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv("SKYFLEET_REQUIRE_INTEGRATION") == "" {
		t.Skipf("%s not installed", strings.Join(names, " or "))
	}
	t.Fatalf("SKYFLEET_REQUIRE_INTEGRATION is set but %s is not installed", strings.Join(names, " or "))
	return ""
}

// e2eRig is one daemon with one autoscaled sim node and a load target.
type e2eRig struct {
	t         *testing.T
	ctx       context.Context
	d         *daemon
	c         *client.Client
	id        string
	load      *prometheus.GaugeVec
	targetURL string
	// dir holds the configuration files; artifacts the logs and decision log to keep.
	dir       string
	artifacts string
}

func newE2ERig(t *testing.T) *e2eRig {
	t.Helper()
	r := &e2eRig{t: t, dir: t.TempDir(), artifacts: e2eArtifactDir(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	r.ctx = ctx

	tokFile := filepath.Join(r.dir, "token")
	alertFile := filepath.Join(r.dir, "alert-token")
	if err := os.WriteFile(tokFile, []byte("main-token-e2e\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(alertFile, []byte(e2eAlertToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.d = startDaemonLogged(t, r.logger("skyfleet-serve.log"), "--token-file", tokFile, "--alert-token-file", alertFile)
	c, err := client.New(client.Options{Addr: r.d.URL, Token: "main-token-e2e"})
	if err != nil {
		t.Fatal(err)
	}
	r.c = c
	if _, err := c.ImportNodeDefs(ctx, "nodes.yaml", []byte(e2eNodeDefs)); err != nil {
		t.Fatal(err)
	}
	res, err := c.CreateInfra(ctx, "infra.yaml", []byte(e2eInfra))
	if err != nil {
		t.Fatal(err)
	}
	r.id = res.ID
	// Runs before the daemon stops (cleanups run last-in first-out).
	t.Cleanup(r.saveDecisions)

	reg := prometheus.NewRegistry()
	r.load = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "test_load", Help: "Load the test sets."}, []string{"instance_group"})
	reg.MustRegister(r.load)
	r.setLoad(30) // between the two thresholds: no alert
	ts := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(ts.Close)
	r.targetURL = strings.TrimPrefix(ts.URL, "http://")
	return r
}

func e2eArtifactDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("SKYFLEET_ARTIFACTS_DIR")
	if base == "" {
		return t.TempDir()
	}
	dir := filepath.Join(base, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("artifacts in %s", dir)
	return dir
}

// logger returns a text logger writing to the artifact file name.
func (r *e2eRig) logger(name string) *slog.Logger {
	f, err := os.Create(filepath.Join(r.artifacts, name))
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = f.Close() })
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (r *e2eRig) setLoad(v float64) { r.load.WithLabelValues("app").Set(v) }

// writeConfig writes name into the configuration directory and the artifacts, returning its path.
func (r *e2eRig) writeConfig(name, content string) string {
	r.t.Helper()
	p := filepath.Join(r.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		r.t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(r.artifacts, name), []byte(content), 0o644)
	return p
}

// prometheusConfig writes the rule file and prometheus.yml with the given alerting section.
func (r *e2eRig) prometheusConfig(alerting string) string {
	rules := r.writeConfig("rules.yml", fmt.Sprintf(e2eRules, r.id))
	return r.writeConfig("prometheus.yml", fmt.Sprintf(e2ePrometheus, rules, r.targetURL, alerting))
}

// hostPort is the daemon's host:port.
func (r *e2eRig) hostPort() string { return strings.TrimPrefix(r.d.URL, "http://") }

// saveDecisions writes the decision log as JSON lines and as the table skyfleet decisions prints.
func (r *e2eRig) saveDecisions() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ds, err := r.c.Decisions(ctx, r.id, 0, "")
	if err != nil {
		r.t.Logf("save decisions: %v", err)
		return
	}
	for _, f := range []struct {
		name string
		json bool
	}{{"decisions.jsonl", true}, {"decisions.txt", false}} {
		var b bytes.Buffer
		p := &decisionPrinter{w: &b, json: f.json, loc: time.UTC}
		if err := p.print(ds); err == nil {
			_ = os.WriteFile(filepath.Join(r.artifacts, f.name), b.Bytes(), 0o644)
		}
	}
}

// node returns the app node's target, instances not being removed, and ready instances.
func (r *e2eRig) node() (target, actual, ready int) {
	r.t.Helper()
	d, err := r.c.Infra(r.ctx, r.id)
	if err != nil {
		r.t.Fatalf("get infrastructure: %v", err)
	}
	n := d.Nodes[0]
	return n.Target, n.Actual, n.Ready
}

// waitNode polls until cond holds for the app node, failing after within.
func (r *e2eRig) waitNode(what string, within time.Duration, cond func(target, actual, ready int) bool) {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for {
		target, actual, ready := r.node()
		if cond(target, actual, ready) {
			r.t.Logf("%s: target %d, actual %d, ready %d", what, target, actual, ready)
			return
		}
		if time.Now().After(deadline) {
			ds, _ := r.c.Decisions(r.ctx, r.id, 0, "")
			var b bytes.Buffer
			_ = (&decisionPrinter{w: &b, loc: time.UTC}).print(ds)
			r.t.Fatalf("%s: not within %s (target %d, actual %d, ready %d); decisions:\n%s\nartifacts: %s",
				what, within, target, actual, ready, b.String(), r.artifacts)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// scaleOutAndIn (bounded to a little over two minutes by its deadlines) drives the load high, waits for the node to step out to its max one step at
// a time (level-triggered: the alert stays firing, nobody re-sends it), then drives the load low
// and waits for it to come back to its min. source is the alert source the decisions must name.
// With oneDelivery, both scale-out steps must have been caused by the same delivery of the
// alert (the sender re-sends only after a minute), the proof that skyfleet steps again by
// itself instead of waiting for a re-delivery.
func (r *e2eRig) scaleOutAndIn(source string, oneDelivery bool) {
	r.t.Helper()
	r.waitNode("first instance ready", 20*time.Second, func(target, actual, ready int) bool { return target == 1 && ready == 1 })
	r.setLoad(100)
	r.waitNode("scaled out to 2", 40*time.Second, func(target, _, _ int) bool { return target >= 2 })
	r.waitNode("scaled out to max 3, all ready", 30*time.Second, func(target, actual, ready int) bool {
		return target == 3 && actual == 3 && ready == 3
	})
	r.setLoad(5)
	r.waitNode("scaled in to min 1", 40*time.Second, func(target, actual, ready int) bool {
		return target == 1 && actual == 1 && ready == 1
	})

	ds, err := r.c.Decisions(r.ctx, r.id, 0, "app")
	if err != nil {
		r.t.Fatal(err)
	}
	var steps []string
	received := map[any]bool{}
	for _, d := range ds {
		if d.Outcome != "scaled" {
			continue
		}
		steps = append(steps, fmt.Sprintf("%s %d→%d", d.Direction, d.From, d.To))
		if d.Direction == "out" {
			received[d.Cause["received"]] = true
		}
		if d.Cause["source"] != source {
			r.t.Errorf("decision %d was caused by source %v, want %s: %+v", d.Seq, d.Cause["source"], source, d)
		}
		if want := map[string]string{"out": "app_overloaded", "in": "app_underloaded"}[d.Direction]; d.Cause["alert"] != want {
			r.t.Errorf("decision %d was caused by alert %v, want %s", d.Seq, d.Cause["alert"], want)
		}
	}
	want := []string{"out 1→2", "out 2→3", "in 3→2", "in 2→1"}
	if strings.Join(steps, ", ") != strings.Join(want, ", ") {
		r.t.Errorf("steps %v, want %v", steps, want)
	}
	if oneDelivery && len(received) != 1 {
		r.t.Errorf("the scale-out steps were caused by %d deliveries (%v), want both by the first", len(received), received)
	}
	if !hasOutcome(ds, "resolved") {
		r.t.Errorf("no decision records the overloaded alert's resolution: %+v", ds)
	}
}

func hasOutcome(ds []store.Decision, outcome string) bool {
	for _, d := range ds {
		if d.Outcome == outcome {
			return true
		}
	}
	return false
}

// freeAddr returns a loopback host:port nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// startProcess starts bin with its output in the artifact file name.log and kills it (by its
// own pid) at the end of the test. It returns once GET http://addr/-/ready answers 200.
func (r *e2eRig) startProcess(name, addr, bin string, args ...string) {
	r.t.Helper()
	logPath := filepath.Join(r.artifacts, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		r.t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		r.t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	r.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		_ = logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(logPath)
			r.t.Fatalf("%s exited before it was ready:\n%s", name, out)
		default:
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logPath)
			r.t.Fatalf("%s not ready within 30s:\n%s", name, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (r *e2eRig) startPrometheus(config string) {
	bin := e2eBinary(r.t, "prometheus")
	addr := freeAddr(r.t)
	r.startProcess("prometheus", addr, bin, "--config.file="+config, "--web.listen-address="+addr,
		"--storage.tsdb.path="+filepath.Join(r.dir, "prometheus-data"), "--log.level=debug")
}

// TestAutoscalingPrometheusAlertmanager: Prometheus fires, the real Alertmanager delivers to
// skyfleet's webhook with the alert token, the node scales out to its max and back in.
func TestAutoscalingPrometheusAlertmanager(t *testing.T) {
	amBin := e2eBinary(t, "prometheus-alertmanager", "alertmanager")
	e2eBinary(t, "prometheus")
	r := newE2ERig(t)
	amAddr := freeAddr(t)
	amConfig := r.writeConfig("alertmanager.yml", fmt.Sprintf(e2eAlertmanager, r.d.URL, e2eAlertToken))
	r.startProcess("alertmanager", amAddr, amBin, "--config.file="+amConfig, "--web.listen-address="+amAddr,
		"--cluster.listen-address=", "--storage.path="+filepath.Join(r.dir, "alertmanager-data"), "--log.level=debug")
	r.startPrometheus(r.prometheusConfig(fmt.Sprintf(e2eAlertToAlertmanager, amAddr)))
	// Alertmanager repeats a notification every repeat_interval (10s), so a second delivery may
	// come between the steps: not the place to prove level-triggering.
	r.scaleOutAndIn("alertmanager", false)
}

// TestAutoscalingPrometheusDirect: Prometheus sends its alerts straight to skyfleet's
// /api/v2/alerts with the alert token; no Alertmanager in between.
func TestAutoscalingPrometheusDirect(t *testing.T) {
	e2eBinary(t, "prometheus")
	r := newE2ERig(t)
	r.startPrometheus(r.prometheusConfig(fmt.Sprintf(e2eAlertToSkyfleet, r.hostPort(), e2eAlertToken)))
	r.scaleOutAndIn("prometheus", true)
}

// TestAutoscalingMonitor: skyfleet monitor, with the same prometheus.yml and rule file, sends
// its alerts to /api/v2/alerts; no Prometheus installed is needed.
func TestAutoscalingMonitor(t *testing.T) {
	r := newE2ERig(t)
	config := r.prometheusConfig(fmt.Sprintf(e2eAlertToSkyfleet, r.hostPort(), e2eAlertToken))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, err := monitor.New(monitor.Options{ConfigFile: config, DataDir: filepath.Join(r.dir, "monitor-data"),
		Listener: ln, Logger: r.logger("monitor.log")})
	if err != nil {
		_ = ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("monitor: %v", err)
		}
	})
	r.scaleOutAndIn("prometheus", true)
}

// startDaemonLogged is startDaemon with the daemon's log going to log.
func startDaemonLogged(t *testing.T, log *slog.Logger, args ...string) *daemon {
	t.Helper()
	cmd, cfg := daemonCmd(t, append([]string{"--listen", "127.0.0.1:0", "--resync", "200ms"}, args...)...)
	d, err := newDaemon(cmd, cfg, t.TempDir(), log)
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
