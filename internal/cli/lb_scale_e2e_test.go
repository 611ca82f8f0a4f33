package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/api"
	"github.com/skyfleet/skyfleet/internal/client"
	"github.com/skyfleet/skyfleet/internal/lb"
)

// The test in this file scales a backend cluster behind a real `skyfleet lb` node under steady
// load from `skyfleet load`, everything orchestrated by a real daemon on the local provider:
// the load balancer follows the registry's endpoints watch, and every scale-in victim is
// drained (the daemon waits for the load balancer's reports) before it is destroyed. No
// request may fail, and every new instance must receive traffic.

// lbScaleNodeDefs are the node definitions: %[1]s is the lb engine, %[2]s the address range
// (a /24 of its own, so that other tests' local instances, which use the default range with
// the same ports, never answer in place of this test's). The roles listen at $SKYFLEET_IP,
// which the local provider sets (the template's ip is not known before the instance exists):
// storage on its default :8081, the lb on :8080 (not its default :80, which needs privileges)
// with metrics on :9101. The skyfleet binary is
// the descriptor's variable bin: inside a test, the daemon's own executable is the test binary.
// The web instances stop at once when destroyed (--shutdown-grace 1ms), cutting any response
// still open, as a killed machine would: only the drain before destroy protects the clients.
// (Checked by hand: with the descriptor's drain_timeout 0s, i.e. no drain, the load sees
// truncated responses at scale-in under either engine.)
const lbScaleNodeDefs = `'node_def:web':
  - resource: {type: local, address_range: '%[2]s'}
    contextualisation:
      type: process
      command: ['{{ variables.bin }}', storage, --shutdown-grace, 1ms]
    health_check:
      ping: false
      urls: ['http://{{ ip }}:8081/healthz']
      interval: 200ms
      timeout: 60
'node_def:lb':
  - resource: {type: local, address_range: '%[2]s'}
    contextualisation:
      type: process
      # sh only adds the listen addresses from $SKYFLEET_IP, then execs skyfleet lb.
      command:
        - sh
        - -c
        - 'exec "$@" --listen "$SKYFLEET_IP:8080" --metrics-listen "$SKYFLEET_IP:9101"'
        - sh
        - '{{ variables.bin }}'
        - --log-format
        - json
        - lb
        - --server
        - '{{ skyfleet_server }}'
        - --infra
        - '{{ infra_id }}'
        - --backend
        - web
        - --backend-port
        - '8081'
        - --drain-timeout
        - 10s
        - --engine
        - %[1]s
    health_check:
      ping: false
      ports: [8080]
      interval: 200ms
      timeout: 60
`

// lbScaleInfra is the descriptor: %[1]s names the engine, %[2]s is the skyfleet binary,
// %[3]s the web node's drain timeout.
const lbScaleInfra = `user_id: e2e
infra_name: lb-scale-%[1]s
nodes:
  - &web
    name: web
    type: web
    scaling: {min: 1, max: 4, drain_timeout: %[3]s}
  - &lb
    name: lb
    type: lb
    scaling: {min: 1, max: 1}
dependencies:
  - connection: [*lb, *web]
variables:
  bin: %[2]q
`

// lbScaleDrainTimeout is the web node's scaling.drain_timeout: an upper bound; drains end
// when the lb reports no open request to the victim.
const lbScaleDrainTimeout = "10s"

// lbScaleSteps are the web node's successive targets.
var lbScaleSteps = []int{3, 1, 4, 2, 1}

// TestLBScalingUnderLoadE2E runs, for each engine, steady load through a `skyfleet lb` node
// while the web node behind it is scaled to 3, 1, 4, 2 and 1 instances through the API.
func TestLBScalingUnderLoadE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the skyfleet binary and runs real processes")
	}
	bin := filepath.Join(t.TempDir(), "skyfleet")
	build := exec.Command("go", "build", "-o", bin, "./cmd/skyfleet")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, engine := range []string{"builtin", "haproxy"} {
		t.Run(engine, func(t *testing.T) {
			if engine == "haproxy" {
				if _, err := lb.FindHAProxy(""); err != nil {
					if os.Getenv("SKYFLEET_REQUIRE_INTEGRATION") != "" {
						t.Fatalf("SKYFLEET_REQUIRE_INTEGRATION is set: %v", err)
					}
					t.Skip(err)
				}
			}
			runLBScale(t, bin, engine)
		})
	}
}

// lbScaleRig is one daemon running the web + lb infrastructure.
type lbScaleRig struct {
	t       *testing.T
	ctx     context.Context
	c       *client.Client
	id      string
	dataDir string
	engine  string
	// lbAddr is the lb instance's address, lbNodeID its node id.
	lbAddr, lbNodeID string
	traffic          *trafficWatch
}

func runLBScale(t *testing.T, bin, engine string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	artifacts := e2eArtifactDir(t)
	r := &lbScaleRig{t: t, ctx: ctx, dataDir: t.TempDir(), engine: engine}
	logFile, err := os.Create(filepath.Join(artifacts, "skyfleet-serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = logFile.Close() })
	d := startDaemonIn(t, r.dataDir, slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if r.c, err = client.New(client.Options{Addr: d.URL}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.c.ImportNodeDefs(ctx, "nodes.yaml", fmt.Appendf(nil, lbScaleNodeDefs, engine, lbScaleRange())); err != nil {
		t.Fatal(err)
	}
	res, err := r.c.CreateInfra(ctx, "infra.yaml", fmt.Appendf(nil, lbScaleInfra, engine, bin, lbScaleDrainTimeout))
	if err != nil {
		t.Fatal(err)
	}
	r.id = res.ID
	// Instances outlive the daemon: destroy them before it stops (cleanups run last-in
	// first-out), keeping the lb's log first.
	t.Cleanup(func() {
		r.keepLBLog(artifacts)
		dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
		defer dcancel()
		if _, err := r.c.DeleteInfra(dctx, r.id, true); err != nil {
			t.Errorf("destroy the infrastructure: %v", err)
		}
	})

	detail := r.waitNode("web", 1, 90*time.Second)
	lbNode := r.node(r.waitInfra(), "lb")
	if len(lbNode.Instances) != 1 || len(lbNode.Instances[0].Addresses) == 0 {
		t.Fatalf("lb instances: %+v", lbNode.Instances)
	}
	r.lbAddr, r.lbNodeID = lbNode.Instances[0].Addresses[0], lbNode.Instances[0].NodeID
	// 4 MiB responses take milliseconds each, so that a scale-in victim has responses in
	// flight when it is chosen.
	target := "http://" + r.lbAddr + ":8080/objects/e2e?size=4M"
	waitFor(t, 30*time.Second, "the lb serves the first web instance", func() bool {
		resp, err := http.Get(target)
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	http.DefaultClient.CloseIdleConnections()

	r.traffic = newTrafficWatch("http://"+r.lbAddr+":9101/metrics", engine)
	stopWatch := r.traffic.run()
	defer stopWatch()

	// The load: a real load tool as a subprocess, stopped with SIGINT once scaling is done.
	timeline := filepath.Join(artifacts, "load-timeline.csv")
	load := exec.Command(bin, "load", "--concurrency", "8", "--duration", "150s", "--fail-on-error",
		"--timeline", timeline, "--quiet", target)
	var loadOut, loadErr bytes.Buffer
	load.Stdout, load.Stderr = &loadOut, &loadErr
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	loadDone := make(chan error, 1)
	go func() { loadDone <- load.Wait() }()
	stopLoad := func() error {
		_ = load.Process.Signal(syscall.SIGINT)
		select {
		case err := <-loadDone:
			return err
		case <-time.After(30 * time.Second):
			_ = load.Process.Kill()
			return fmt.Errorf("load did not stop after SIGINT: %w", <-loadDone)
		}
	}
	loadStopped := false
	defer func() {
		if !loadStopped {
			_ = stopLoad()
		}
	}()
	first := detail.Instances[0]
	r.waitTraffic(first)
	loadStart := time.Now()

	seen := map[string]bool{first.NodeID: true}
	for _, n := range lbScaleSteps {
		stepStart := time.Now()
		res, err := r.c.Scale(ctx, r.id, "web", api.ScaleRequest{Target: &n})
		if err != nil || !res.Applied {
			t.Fatalf("scale web to %d: %+v, %v", n, res, err)
		}
		node := r.waitNode("web", n, 60*time.Second)
		for _, in := range node.Instances {
			if !seen[in.NodeID] {
				seen[in.NodeID] = true
				r.waitTraffic(in)
			}
		}
		t.Logf("web scaled to %d in %v (instances ready, victims destroyed, new ones serving)", n, time.Since(stepStart).Round(time.Millisecond))
		// Some load on this membership before the next change, so that every victim is
		// chosen from busy instances.
		time.Sleep(time.Second)
	}
	loadStopped = true
	if err := stopLoad(); err != nil {
		t.Fatalf("skyfleet load: %v\nstdout: %s\nstderr: %s", err, loadOut.String(), loadErr.String())
	}
	summary := loadOut.String()
	t.Logf("skyfleet load over %v:\n%s", time.Since(loadStart).Round(time.Second), summary)
	m := regexp.MustCompile(`requests\s+(\d+) in .*: (\d+) ok, (\d+) errors`).FindStringSubmatch(summary)
	if m == nil {
		t.Fatalf("no summary line in the load's output:\n%s", summary)
	}
	if m[3] != "0" {
		t.Fatalf("%s requests failed during scaling:\n%s%s", m[3], summary, loadErr.String())
	}
	if ok, _ := strconv.Atoi(m[2]); ok < 100 {
		t.Fatalf("only %d requests succeeded: the load did not run", ok)
	}
	if errs := timelineErrors(t, timeline); errs != 0 {
		t.Fatalf("the timeline counts %d errors while the summary counts none", errs)
	}
	r.reportTimes(first.NodeID)
}

// lbScaleRange picks a loopback /24 outside the local provider's default 127.42.0.0/16.
func lbScaleRange() string {
	return fmt.Sprintf("127.77.%d.0/24", rand.IntN(256))
}

// startDaemonIn is startDaemon with a given data directory (where the local provider keeps
// the instances' logs) and logger.
func startDaemonIn(t *testing.T, dataDir string, log *slog.Logger) *daemon {
	t.Helper()
	cmd, cfg := daemonCmd(t, "--listen", "127.0.0.1:0", "--resync", "200ms")
	d, err := newDaemon(cmd, cfg, dataDir, log)
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

func (r *lbScaleRig) waitInfra() *api.InfraDetail {
	r.t.Helper()
	d, err := r.c.Infra(r.ctx, r.id)
	if err != nil {
		r.t.Fatalf("read the infrastructure: %v", err)
	}
	return d
}

func (r *lbScaleRig) node(d *api.InfraDetail, name string) api.NodeDetail {
	r.t.Helper()
	for _, n := range d.Nodes {
		if n.Name == name {
			return n
		}
	}
	r.t.Fatalf("no node %s in %+v", name, d.Nodes)
	return api.NodeDetail{}
}

// waitNode waits until the node has exactly n instances, all ready: new ones serving, and
// victims drained and destroyed. It also waits for the lb to be ready.
func (r *lbScaleRig) waitNode(name string, n int, limit time.Duration) api.NodeDetail {
	r.t.Helper()
	var last api.NodeDetail
	var lbReady bool
	deadline := time.Now().Add(limit)
	for {
		d := r.waitInfra()
		last = r.node(d, name)
		lbReady = r.node(d, "lb").Ready == 1
		ready := 0
		for _, in := range last.Instances {
			if in.State == "ready" {
				ready++
			}
		}
		if lbReady && ready == n && len(last.Instances) == n {
			return last
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("after %v: %s has %d instances (%d ready), want %d ready; lb ready: %v; instances %+v",
				limit, name, len(last.Instances), ready, n, lbReady, last.Instances)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitTraffic waits until the lb has sent requests to the ready web instance in.
func (r *lbScaleRig) waitTraffic(in api.InstanceDetail) {
	r.t.Helper()
	if in.Ready == nil {
		r.t.Fatalf("web instance %s has no ready time: %+v", in.NodeID, in)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		r.traffic.mapSlots(r.lbLog())
		if _, ok := r.traffic.first(in.NodeID, *in.Ready); ok {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("web instance %s received no request through the %s lb within 20s", in.NodeID, r.engine)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lbLog returns the lb instance's standard error (its JSON log).
func (r *lbScaleRig) lbLog() []byte {
	data, _ := os.ReadFile(filepath.Join(r.dataDir, "local", "instances", "local-"+r.lbNodeID, "stderr.log"))
	return data
}

// keepLBLog copies the lb's log into the artifacts.
func (r *lbScaleRig) keepLBLog(dir string) {
	if r.lbNodeID != "" {
		_ = os.WriteFile(filepath.Join(dir, "lb-stderr.log"), r.lbLog(), 0o644)
	}
}

// reportTimes logs, per web instance created during the load, the time from its nodecreated
// event to the first request the lb sent it, and per victim the time from nodedraining to
// nodedropped. Every victim must have been dropped before its drain deadline: its drain was
// ended by the lb's reports (no open request left), not by the timeout, which is 10 s where
// the reports take about a second; a drop at the deadline means the reports were not used.
func (r *lbScaleRig) reportTimes(first string) {
	r.t.Helper()
	var all []api.Event
	for after := uint64(0); ; {
		list, err := r.c.Events(r.ctx, r.id, after, 0)
		if err != nil {
			r.t.Fatalf("read events: %v", err)
		}
		if len(list.Events) == 0 {
			break
		}
		all = append(all, list.Events...)
		after = list.Next
	}
	type drain struct {
		at, deadline time.Time
	}
	draining := map[string]drain{}
	victims := 0
	for _, ev := range all {
		if ev.Node != "web" {
			continue
		}
		switch ev.Type {
		case "nodecreated":
			if ev.NodeID == first {
				continue
			}
			at, ok := r.traffic.first(ev.NodeID, ev.At)
			if !ok {
				r.t.Errorf("web instance %s (created %s) never received traffic", ev.NodeID, ev.At.Format(time.RFC3339Nano))
				continue
			}
			r.t.Logf("web %s: first request %v after nodecreated (lb metrics polled every 50ms)",
				ev.NodeID, at.Sub(ev.At).Round(time.Millisecond))
		case "nodedraining":
			d := drain{at: ev.At}
			if s, ok := ev.Data["deadline"].(string); ok {
				d.deadline, _ = time.Parse(time.RFC3339Nano, s)
			}
			if d.deadline.IsZero() {
				r.t.Errorf("nodedraining of %s carries no deadline: %+v", ev.NodeID, ev.Data)
			}
			draining[ev.NodeID] = d
		case "nodedropped":
			d, ok := draining[ev.NodeID]
			if !ok {
				r.t.Errorf("web %s was dropped without draining first", ev.NodeID)
				continue
			}
			victims++
			r.t.Logf("web %s: dropped %v after draining began (drain timeout %s)", ev.NodeID, ev.At.Sub(d.at).Round(time.Millisecond), lbScaleDrainTimeout)
			if !ev.At.Before(d.deadline) {
				r.t.Errorf("web %s was dropped at %s, after its drain deadline %s: the lb's reports did not end the drain",
					ev.NodeID, ev.At.Format(time.RFC3339Nano), d.deadline.Format(time.RFC3339Nano))
			}
		}
	}
	want, prev := 0, 1
	for _, n := range lbScaleSteps {
		want += max(0, prev-n)
		prev = n
	}
	if victims != want {
		r.t.Errorf("%d victims dropped, want %d", victims, want)
	}
}

// timelineErrors sums the errors column of a `skyfleet load --timeline` file.
func timelineErrors(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("read the timeline: %v", err)
	}
	if len(rows) < 2 || len(rows[0]) < 4 || rows[0][3] != "errors" {
		t.Fatalf("timeline has no errors column: %v", rows)
	}
	sum := 0
	for _, row := range rows[1:] {
		n, err := strconv.Atoi(row[3])
		if err != nil {
			t.Fatalf("timeline row %v: %v", row, err)
		}
		sum += n
	}
	return sum
}

// trafficWatch polls a load balancer's metrics every 50 ms and keeps each backend's request
// counter over time. Under the builtin engine backends are named by node id
// (skyfleet_lb_requests_total{backend=...}); under haproxy by server slot
// (haproxy_server_http_responses_total{proxy="be",server="sN"}), mapped to node ids through
// the lb's "backend added" log lines. A slot is reused once its previous instance has drained,
// so an instance's first request is the first rise of its series above its value when the
// instance became ready.
type trafficWatch struct {
	url, engine string

	mu      sync.Mutex
	history map[string][]sample
	// slots maps node id → haproxy slot.
	slots map[string]string
}

// sample is one reading of a counter.
type sample struct {
	at time.Time
	v  float64
}

func newTrafficWatch(url, engine string) *trafficWatch {
	return &trafficWatch{url: url, engine: engine, history: map[string][]sample{}, slots: map[string]string{}}
}

// run polls until the returned stop function is called.
func (w *trafficWatch) run() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		c := &http.Client{Timeout: time.Second}
		for {
			w.poll(ctx, c)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

var (
	builtinSeries = regexp.MustCompile(`^skyfleet_lb_requests_total\{.*backend="([^"]+)".*\} (\S+)$`)
	haproxySeries = regexp.MustCompile(`^haproxy_server_http_responses_total\{(?:.*,)?proxy="be",server="([^"]+)".*\} (\S+)$`)
)

func (w *trafficWatch) poll(ctx context.Context, c *http.Client) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.url, nil)
	if err != nil {
		return
	}
	resp, err := c.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	re := builtinSeries
	if w.engine == "haproxy" {
		re = haproxySeries
	}
	sums := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if v, err := strconv.ParseFloat(m[2], 64); err == nil {
			sums[m[1]] += v
		}
	}
	if sc.Err() != nil {
		return
	}
	// Stamped once read: the counters held these values at the latest by then.
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, v := range sums {
		w.history[k] = append(w.history[k], sample{at: now, v: v})
	}
}

// mapSlots reads the haproxy engine's "backend added" log lines and maps each added node id
// to its slot.
func (w *trafficWatch) mapSlots(log []byte) {
	if w.engine != "haproxy" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, line := range bytes.Split(log, []byte("\n")) {
		var rec struct {
			Msg    string `json:"msg"`
			NodeID string `json:"node_id"`
			Slot   int    `json:"slot"`
		}
		if json.Unmarshal(line, &rec) != nil || rec.Msg != "backend added" || rec.NodeID == "" {
			continue
		}
		w.slots[rec.NodeID] = "s" + strconv.Itoa(rec.Slot)
	}
}

// first returns when the backend nodeID, ready since readyAt, was first seen to have
// received a request.
func (w *trafficWatch) first(nodeID string, readyAt time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := nodeID
	if w.engine == "haproxy" {
		if key = w.slots[nodeID]; key == "" {
			return time.Time{}, false
		}
	}
	baseline := 0.0
	for _, s := range w.history[key] {
		if !s.at.After(readyAt) {
			baseline = s.v
			continue
		}
		if s.v > baseline {
			return s.at, true
		}
	}
	return time.Time{}, false
}
