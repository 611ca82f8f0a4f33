package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/api"
)

// scenario is one variant of the seed's architecture under load.
type scenario struct {
	dir  string   // example directory, relative to the repository (run from a copy)
	args []string // extra `skyfleet up` arguments
	// readyWithin bounds the first build; scaleOutWithin and scaleInWithin the two phases.
	readyWithin, scaleOutWithin, scaleInWithin time.Duration
	// concurrency and objectSize shape the load that makes the app cluster overloaded.
	concurrency int
	objectSize  string
	// minLocal is how many local-provider instance processes the run must at least have
	// seen; every one of them (and everything carrying the infrastructure's id) must be gone
	// after Ctrl-C.
	minLocal int
	// before runs first (e.g. building an image); after runs once up has exited.
	before func(t *testing.T, bin string)
	after  func(t *testing.T, infraID string)
	// extraCheck runs once the infrastructure is ready (e.g. the engines really in use).
	extraCheck func(t *testing.T, u *upRun, d *api.InfraDetail)
}

// wantApps is how many app instances the load must reach.
const wantApps = 3

// run brings the example up, loads it until the app cluster has wantApps ready instances,
// stops the load, waits until app is back at its minimum, keeps the artifacts, presses
// Ctrl-C and checks that nothing of the infrastructure is left running.
func (sc scenario) run(t *testing.T) {
	bin := skyfleetBinary(t)
	art := artifactsDir(t)
	ctx := context.Background()

	if sc.before != nil {
		sc.before(t, bin)
	}
	examples, rng := isolatedExamples(t)
	t.Logf("local instances in %s", rng)
	u := startUp(t, bin, filepath.Join(examples, strings.TrimPrefix(sc.dir, "examples/")), sc.readyWithin, sc.args...)
	// The server's log (scaling, alerts, instances) is kept too, whatever the outcome.
	t.Cleanup(func() {
		if data, err := os.ReadFile(u.errFile); err == nil {
			_ = os.WriteFile(filepath.Join(art, "up-stderr.log"), data, 0o644)
		}
	})
	if err := os.WriteFile(filepath.Join(art, "up-ready.txt"), []byte(u.out.String()), 0o644); err != nil {
		t.Error(err)
	}
	d, err := u.detail(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lb, storage := addressOf(t, d, "lb"), addressOf(t, d, "storage")
	appMin := node(d, "app").Min
	fileURL := "http://" + lb + "/blacktop3/rest/file"
	// up's ready message names the load balancer, the monitor and a ready-to-paste load
	// command for this infrastructure.
	out := u.out.String()
	for _, want := range []string{
		"http://" + lb + "/",
		"http://" + addressOf(t, d, "monitor") + ":9090/alerts",
		"skyfleet load ",
		"-i " + u.infraID,
		"X-URI: http://" + storage + ":8081/objects/big?size=1G",
		fileURL,
		"curl -k -o /dev/null",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("up's ready output lacks %q:\n%s", want, out)
		}
	}
	if sc.extraCheck != nil {
		sc.extraCheck(t, u, d)
	}
	tracker := newProcessTracker(u.dataDir)
	tracker.scan()

	// A steady trickle of small transfers through the lb for the whole run: the clients of
	// a system that resizes itself under them.
	pr := startProber(fileURL, "http://"+storage+":8081/objects/probe?size=256K", 250*time.Millisecond)
	proberStopped := false
	defer func() {
		if !proberStopped {
			pr.finish()
		}
	}()

	timeline := filepath.Join(art, "load-timeline.csv")
	load := startLoad(t, bin, "-c", itoa(sc.concurrency), "-d", "10m", "-q", "--fail-on-error",
		"--timeline", timeline, "-i", u.infraID, "--server", u.server,
		"-H", "X-Key: "+demoKey, "-H", "X-URI: http://"+storage+":8081/objects/big?size="+sc.objectSize,
		fileURL)
	start := time.Now()
	u.waitFor(ctx, "app scales out to "+itoa(wantApps), sc.scaleOutWithin, func(d *api.InfraDetail) bool {
		tracker.scan()
		return node(d, "app").Ready >= wantApps
	})
	t.Logf("app reached %d ready instances %s after the load started", wantApps, time.Since(start).Round(time.Second))
	lout, lerr := load.stop(time.Minute)
	if err := os.WriteFile(filepath.Join(art, "load-output.txt"), []byte(lout), 0o644); err != nil {
		t.Error(err)
	}
	if lerr != nil {
		t.Errorf("skyfleet load --fail-on-error: %v\n%s", lerr, lout)
	}
	if !strings.Contains(lout, " 0 errors") {
		t.Errorf("the load saw failed requests:\n%s", lout)
	}

	start = time.Now()
	u.waitFor(ctx, "app scales back in to its minimum", sc.scaleInWithin, func(d *api.InfraDetail) bool {
		tracker.scan()
		n := node(d, "app")
		return n.Target == appMin && n.Actual == appMin && n.Ready == appMin
	})
	t.Logf("app back at %d instance(s) %s after the load stopped", appMin, time.Since(start).Round(time.Second))
	ok, fail, errs := pr.finish()
	proberStopped = true
	t.Logf("probe requests through the lb during the run: %d ok, %d failed", ok, fail)
	if fail > 0 || ok == 0 {
		t.Errorf("probe requests: %d ok, %d failed: %s", ok, fail, strings.Join(errs, "; "))
	}
	maxApp, tlErrs, rows := checkTimeline(t, timeline)
	if rows == 0 || tlErrs != 0 || maxApp < wantApps-1 {
		t.Errorf("timeline %s: %d rows, %d errors, at most %d app instances ready", timeline, rows, tlErrs, maxApp)
	}
	sc.keepDecisions(t, u, bin, art)

	tracker.scan()
	if err := u.interrupt(3 * time.Minute); err != nil {
		t.Fatalf("up after Ctrl-C: %v\n%s\n%s", err, u.out.String(), u.stderrTail())
	}
	if err := os.WriteFile(filepath.Join(art, "up-output.txt"), []byte(u.out.String()), 0o644); err != nil {
		t.Error(err)
	}
	if !strings.Contains(u.out.String(), "is gone") {
		t.Errorf("up did not report the infrastructure gone:\n%s", u.out.String())
	}
	if left := tracker.leftovers(u.infraID); len(left) > 0 {
		t.Errorf("processes of the infrastructure still running after up exited:\n%s", strings.Join(left, "\n"))
	}
	if len(tracker.pids) < sc.minLocal {
		t.Errorf("only %d local instance processes were seen, want at least %d; the check above proves little", len(tracker.pids), sc.minLocal)
	}
	if sc.after != nil {
		sc.after(t, u.infraID)
	}
}

// keepDecisions stores the decision log, through `skyfleet decisions` when the binary has
// it, else straight from the API.
func (sc scenario) keepDecisions(t *testing.T, u *upRun, bin, art string) {
	t.Helper()
	path := filepath.Join(art, "decisions.json")
	out, err := runCmd(bin, "decisions", "-i", u.infraID, "-o", "json", "--server", u.server)
	if err != nil {
		var raw any
		if gerr := u.getJSON(context.Background(), "/v1/infrastructures/"+u.infraID+"/decisions", &raw); gerr != nil {
			t.Errorf("decision log: skyfleet decisions: %v; API: %v", err, gerr)
			return
		}
		out = mustJSON(raw)
	}
	if !strings.Contains(string(out), "scaled") {
		t.Errorf("the decision log records no scaling step:\n%.2000s", out)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Error(err)
	}
}

// TestAutoscalingEmbedded is the seed's architecture with skyfleet's own programs: the
// built-in load balancer and the embedded monitor (examples/autoscaling, infra.yaml).
func TestAutoscalingEmbedded(t *testing.T) {
	requirePrograms(t, "go", "postgres")
	scenario{
		dir:            "examples/autoscaling",
		readyWithin:    3 * time.Minute,
		scaleOutWithin: 3 * time.Minute,
		scaleInWithin:  3 * time.Minute,
		concurrency:    8,
		objectSize:     "32M",
		minLocal:       5 + wantApps - 1,
	}.run(t)
}

// TestAutoscalingReal is the same architecture with the real programs: haproxy behind
// skyfleet lb, Prometheus and Alertmanager (examples/autoscaling, infra-real.yaml).
func TestAutoscalingReal(t *testing.T) {
	requirePrograms(t, "go", "postgres", "haproxy", "prometheus", "prometheus-alertmanager")
	scenario{
		dir:            "examples/autoscaling",
		args:           []string{"--infra", "infra-real.yaml"},
		readyWithin:    3 * time.Minute,
		scaleOutWithin: 3 * time.Minute,
		scaleInWithin:  3 * time.Minute,
		concurrency:    8,
		objectSize:     "32M",
		minLocal:       5 + wantApps - 1,
		extraCheck: func(t *testing.T, u *upRun, d *api.InfraDetail) {
			// The real programs answer: haproxy's exporter behind the lb, Prometheus' own
			// build info and Alertmanager's status.
			mon := addressOf(t, d, "monitor")
			for _, url := range []string{
				"http://" + addressOf(t, d, "lb") + ":9101/metrics",
				"http://" + mon + ":9090/api/v1/status/buildinfo",
				"http://" + mon + ":9093/api/v2/status",
			} {
				body, err := httpGet(url)
				if err != nil {
					t.Errorf("%s: %v", url, err)
					continue
				}
				if strings.Contains(url, ":9101") && !strings.Contains(body, "haproxy_") {
					t.Errorf("%s is not haproxy's exporter:\n%.500s", url, body)
				}
			}
		},
	}.run(t)
}
