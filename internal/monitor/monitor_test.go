package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/skyfleet/skyfleet/internal/autoscale"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// loadTarget is a scrape target serving a test_load gauge whose value the test sets.
type loadTarget struct {
	srv   *httptest.Server
	gauge prometheus.Gauge
}

func newLoadTarget(t *testing.T) *loadTarget {
	t.Helper()
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_load", Help: "Load the test controls."})
	reg.MustRegister(g)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	lt := &loadTarget{srv: httptest.NewServer(mux), gauge: g}
	t.Cleanup(lt.srv.Close)
	return lt
}

func (lt *loadTarget) hostPort() string { return strings.TrimPrefix(lt.srv.URL, "http://") }

// receivedAlert is one alert as Prometheus' notifier posts it to /api/v2/alerts.
type receivedAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
}

// alertReceiver stands in for skyfleet's (or Alertmanager's) POST /api/v2/alerts.
type alertReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	alerts []receivedAlert
	intake []*autoscale.Alert // the same alerts as skyfleet's intake reads them
	bad    []string
}

func newAlertReceiver(t *testing.T) *alertReceiver {
	t.Helper()
	ar := &alertReceiver{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v2/alerts", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var batch []receivedAlert
		if err == nil {
			err = json.Unmarshal(body, &batch)
		}
		// skyfleet's own intake must read the same body: no refusals.
		var intake []*autoscale.Alert
		if err == nil {
			var rejected []autoscale.RejectedAlert
			intake, rejected, err = autoscale.ParsePostableAlerts(body, time.Now())
			if err == nil && len(rejected) > 0 {
				err = fmt.Errorf("skyfleet's intake refused %+v", rejected)
			}
		}
		ar.mu.Lock()
		defer ar.mu.Unlock()
		if err != nil {
			ar.bad = append(ar.bad, err.Error())
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ar.alerts = append(ar.alerts, batch...)
		ar.intake = append(ar.intake, intake...)
		w.WriteHeader(http.StatusOK)
	})
	ar.srv = httptest.NewServer(mux)
	t.Cleanup(ar.srv.Close)
	return ar
}

func (ar *alertReceiver) hostPort() string { return strings.TrimPrefix(ar.srv.URL, "http://") }

// find returns the last received alert for which match holds.
func (ar *alertReceiver) find(match func(receivedAlert) bool) (receivedAlert, bool) {
	ar.mu.Lock()
	defer ar.mu.Unlock()
	for i := len(ar.alerts) - 1; i >= 0; i-- {
		if match(ar.alerts[i]) {
			return ar.alerts[i], true
		}
	}
	return receivedAlert{}, false
}

// sdServer serves Prometheus' HTTP SD format, as skyfleet's GET /v1/sd/prometheus does.
func newSDServer(t *testing.T, target string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `[{"targets":[%q],"labels":{"infra_id":"X","node":"app","node_id":"n-1","group":"app_cluster"}}]`, target)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// writeConfig renders testdata/prometheus.yml.tmpl and copies the rule file next to it.
func writeConfig(t *testing.T, data map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	tmpl := template.Must(template.ParseFiles(filepath.Join("testdata", "prometheus.yml.tmpl")))
	f, err := os.Create(filepath.Join(dir, "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tmpl.Execute(f, data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join("testdata", "rules.yml"), filepath.Join(dir, "rules.yml"))
	return filepath.Join(dir, "prometheus.yml")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// testLogger sends warnings and errors to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// running is a Monitor started by a test, stopped at cleanup.
type running struct {
	m    *Monitor
	base string
	prom v1.API
}

func startMonitor(t *testing.T, configFile string) *running {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Options{ConfigFile: configFile, DataDir: t.TempDir(), Listener: ln, Logger: testLogger(t)})
	if err != nil {
		_ = ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return within 30s of cancellation")
		}
	})
	base := "http://" + ln.Addr().String()
	waitFor(t, "monitor ready", func() error {
		if !m.Ready() {
			return errors.New("not ready")
		}
		return nil
	})
	client, err := promapi.NewClient(promapi.Config{Address: base})
	if err != nil {
		t.Fatal(err)
	}
	return &running{m: m, base: base, prom: v1.NewAPI(client)}
}

// waitFor polls check until it returns nil or a generous deadline passes.
func waitFor(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = check(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("waiting for %s: %v", what, err)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestAlertLifecycle drives the seed's loop end to end: a target's load goes up, the rule
// fires after its `for`, the receiver gets a firing alert with the seed's labels; the load
// goes down and the receiver gets the resolved alert. Both target sources are covered.
func TestAlertLifecycle(t *testing.T) {
	tests := []struct {
		name string
		sd   bool
	}{
		{name: "static_configs"},
		{name: "http_sd_configs", sd: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target := newLoadTarget(t)
			recv := newAlertReceiver(t)
			data := map[string]string{"Target": target.hostPort(), "Alertmanager": recv.hostPort()}
			if tc.sd {
				data["SD"] = newSDServer(t, target.hostPort()).URL
			}
			mon := startMonitor(t, writeConfig(t, data))
			ctx := context.Background()

			target.gauge.Set(100)
			isOurs := func(a receivedAlert) bool {
				return a.Labels["alertname"] == "AppOverloaded" && a.Labels["alert"] == "overloaded" &&
					a.Labels["node"] == "app" && a.Labels["infra_id"] == "X"
			}
			var firing receivedAlert
			waitFor(t, "a firing alert at the receiver", func() error {
				a, ok := recv.find(func(a receivedAlert) bool { return isOurs(a) && a.EndsAt.After(time.Now()) })
				if !ok {
					return errors.New("none yet")
				}
				firing = a
				return nil
			})
			if firing.Annotations["summary"] != "app cluster overloaded" {
				t.Errorf("annotations = %v, want the rule's summary", firing.Annotations)
			}
			if firing.Labels["instance"] != target.hostPort() || firing.Labels["job"] != "app" {
				t.Errorf("labels = %v, want instance %s and job app", firing.Labels, target.hostPort())
			}
			if !strings.HasPrefix(firing.GeneratorURL, mon.base) {
				t.Errorf("generatorURL = %q, want it under %s", firing.GeneratorURL, mon.base)
			} else if code, page := get(t, firing.GeneratorURL); code != http.StatusOK || !strings.Contains(page, "test_load &gt; 50") || !strings.Contains(page, "<td>100</td>") {
				t.Errorf("the alert's generatorURL answers %d without the expression and its value 100:\n%s", code, page)
			}

			alerts, err := mon.prom.Alerts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(alerts.Alerts) != 1 || alerts.Alerts[0].State != v1.AlertStateFiring || alerts.Alerts[0].Labels["alert"] != "overloaded" {
				t.Errorf("/api/v1/alerts = %+v, want one firing overloaded alert", alerts.Alerts)
			}
			code, page := get(t, mon.base+"/alerts")
			if code != http.StatusOK || !strings.Contains(page, "AppOverloaded") || !strings.Contains(page, `<span class="state firing">firing</span> AppOverloaded`) {
				t.Errorf("/alerts (%d) does not show AppOverloaded firing:\n%s", code, page)
			}
			code, page = get(t, mon.base+"/targets")
			if code != http.StatusOK || !strings.Contains(page, target.srv.URL+"/metrics") || !strings.Contains(page, `<span class="state up">up</span>`) {
				t.Errorf("/targets (%d) does not show %s/metrics up:\n%s", code, target.srv.URL, page)
			}

			target.gauge.Set(10)
			waitFor(t, "a resolved alert at the receiver", func() error {
				_, ok := recv.find(func(a receivedAlert) bool { return isOurs(a) && !a.EndsAt.After(time.Now()) })
				if !ok {
					return errors.New("none yet")
				}
				return nil
			})
			code, page = get(t, mon.base+"/alerts")
			if code != http.StatusOK || !strings.Contains(page, `<span class="state inactive">inactive</span> AppOverloaded`) {
				t.Errorf("/alerts (%d) does not show AppOverloaded inactive:\n%s", code, page)
			}
			recv.mu.Lock()
			defer recv.mu.Unlock()
			if len(recv.bad) > 0 {
				t.Errorf("receiver could not decode: %v", recv.bad)
			}
			var sawFiring, sawResolved bool
			for _, a := range recv.intake {
				if a.Kind != "overloaded" || a.InfraID != "X" || a.Node != "app" || a.Name != "AppOverloaded" || a.Source != "prometheus" {
					t.Errorf("skyfleet's intake read %+v, want AppOverloaded overloaded for X/app", a)
				}
				sawFiring = sawFiring || a.Firing
				sawResolved = sawResolved || !a.Firing
			}
			if !sawFiring || !sawResolved {
				t.Errorf("skyfleet's intake saw firing %v resolved %v, want both", sawFiring, sawResolved)
			}
		})
	}
}

// TestQueryAPI reads the monitor with client_golang's Prometheus API client, as skyfleet's
// target tracking and Grafana do.
func TestQueryAPI(t *testing.T) {
	target := newLoadTarget(t)
	recv := newAlertReceiver(t)
	sd := newSDServer(t, target.hostPort())
	target.gauge.Set(42) // before the first scrape, so every stored point is 42
	mon := startMonitor(t, writeConfig(t, map[string]string{"Target": target.hostPort(), "Alertmanager": recv.hostPort(), "SD": sd.URL}))
	ctx := context.Background()

	waitFor(t, "test_load in the TSDB", func() error {
		v, _, _, err := mon.prom.Query(ctx, "test_load", time.Now())
		if err != nil {
			return err
		}
		vec, ok := v.(model.Vector)
		if !ok || len(vec) != 1 {
			return fmt.Errorf("result %v is not one sample", v)
		}
		if vec[0].Value != 42 || vec[0].Metric["group"] != "app_cluster" || vec[0].Metric["node_id"] != "n-1" {
			return fmt.Errorf("sample %v, want 42 with the SD labels", vec[0])
		}
		return nil
	})

	t.Run("query_range", func(t *testing.T) {
		end := time.Now()
		waitFor(t, "three points", func() error {
			end = time.Now()
			v, _, _, err := mon.prom.QueryRange(ctx, "test_load", v1.Range{Start: end.Add(-10 * time.Second), End: end, Step: time.Second})
			if err != nil {
				return err
			}
			m, ok := v.(model.Matrix)
			if !ok || len(m) != 1 || len(m[0].Values) < 3 {
				return fmt.Errorf("result %v is not one series with 3+ points", v)
			}
			for _, p := range m[0].Values {
				if p.Value != 42 {
					return fmt.Errorf("point %v, want 42", p)
				}
			}
			return nil
		})
	})
	t.Run("empty results are lists", func(t *testing.T) {
		_, body := get(t, mon.base+"/api/v1/query?query=does_not_exist")
		if want := `{"status":"success","data":{"resultType":"vector","result":[]}}`; body != want {
			t.Errorf("body = %s, want %s", body, want)
		}
	})
	t.Run("scalar", func(t *testing.T) {
		v, _, _, err := mon.prom.Query(ctx, "1+1", time.Unix(1000, 0))
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := v.(*model.Scalar); !ok || s.Value != 2 || s.Timestamp.Unix() != 1000 {
			t.Errorf("1+1 = %v, want scalar 2 at 1000", v)
		}
	})
	t.Run("targets", func(t *testing.T) {
		waitFor(t, "the target up", func() error {
			res, err := mon.prom.Targets(ctx)
			if err != nil {
				return err
			}
			if len(res.Active) != 1 {
				return fmt.Errorf("active targets %+v, want 1", res.Active)
			}
			a := res.Active[0]
			if a.Health != v1.HealthGood || a.ScrapeURL != target.srv.URL+"/metrics" || a.ScrapePool != "app" || a.Labels["infra_id"] != "X" {
				return fmt.Errorf("target %+v, want %s/metrics up in pool app with infra_id X", a, target.srv.URL)
			}
			return nil
		})
	})
	t.Run("rules", func(t *testing.T) {
		res, err := mon.prom.Rules(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Groups) != 1 || len(res.Groups[0].Rules) != 1 {
			t.Fatalf("rules = %+v, want one group with one rule", res.Groups)
		}
		ar, ok := res.Groups[0].Rules[0].(v1.AlertingRule)
		if !ok || ar.Name != "AppOverloaded" || ar.Query != "test_load > 50" || ar.Duration != 2 || ar.Labels["infra_id"] != "X" {
			t.Errorf("rule = %+v, want AppOverloaded with its query, for and labels", res.Groups[0].Rules[0])
		}
	})
	t.Run("labels and series", func(t *testing.T) {
		vals, _, _, err := mon.prom.LabelValues(ctx, "group", nil, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if len(vals) != 1 || vals[0] != "app_cluster" {
			t.Errorf("group values = %v, want [app_cluster]", vals)
		}
		series, _, _, err := mon.prom.Series(ctx, []string{`test_load{node="app"}`}, time.Now().Add(-time.Hour), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(series) != 1 || series[0]["instance"] != model.LabelValue(target.hostPort()) {
			t.Errorf("series = %v, want test_load of %s", series, target.hostPort())
		}
	})
	t.Run("metadata", func(t *testing.T) {
		md, err := mon.prom.Metadata(ctx, "test_load", "")
		if err != nil {
			t.Fatal(err)
		}
		if got := md["test_load"]; len(got) != 1 || got[0].Type != v1.MetricTypeGauge || got[0].Help != "Load the test controls." {
			t.Errorf("metadata = %+v, want test_load as a gauge with its help", md)
		}
	})
	t.Run("buildinfo", func(t *testing.T) {
		bi, err := mon.prom.Buildinfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if bi.GoVersion == "" || bi.Version == "" {
			t.Errorf("buildinfo = %+v, want a version and a Go version", bi)
		}
	})
	t.Run("errors use the envelope", func(t *testing.T) {
		tests := []struct {
			path, typ string
			code      int
			contains  string
		}{
			{"/api/v1/query?query=test_load%20%3E", "bad_data", http.StatusBadRequest, `invalid parameter \"query\"`},
			{"/api/v1/query_range?query=up&start=10&end=5&step=1", "bad_data", http.StatusBadRequest, "end timestamp must not be before start time"},
			{"/api/v1/query_range?query=up&start=0&end=10&step=0", "bad_data", http.StatusBadRequest, "zero or negative query resolution step"},
			{"/api/v1/query?query=up&time=yesterday", "bad_data", http.StatusBadRequest, `cannot parse \"yesterday\" to a valid timestamp`},
			{"/api/v1/series", "bad_data", http.StatusBadRequest, "no match[] parameter provided"},
			{"/api/v1/rules?type=other", "bad_data", http.StatusBadRequest, `not supported value \"other\"`},
		}
		for _, tc := range tests {
			code, body := get(t, mon.base+tc.path)
			if code != tc.code || !strings.HasPrefix(body, `{"status":"error","errorType":"`+tc.typ+`","error":"`) || !strings.Contains(body, tc.contains) {
				t.Errorf("GET %s = %d %s, want %d bad_data envelope containing %q", tc.path, code, body, tc.code, tc.contains)
			}
		}
		_, _, _, err := mon.prom.Query(ctx, "sum(", time.Now())
		var perr *v1.Error
		if !errors.As(err, &perr) || perr.Type != v1.ErrBadData {
			t.Errorf("client error = %#v, want a bad_data v1.Error", err)
		}
	})
	t.Run("query page", func(t *testing.T) {
		code, page := get(t, mon.base+"/graph?g0.expr=test_load")
		if code != http.StatusOK || !strings.Contains(page, `test_load{group=&#34;app_cluster&#34;`) || !strings.Contains(page, "<td>42</td>") {
			t.Errorf("/graph?g0.expr=test_load = %d without the series and 42:\n%s", code, page)
		}
		code, page = get(t, mon.base+"/graph?g0.expr=sum(")
		if code != http.StatusOK || !strings.Contains(page, `<p class="error">`) || !strings.Contains(page, "unclosed left parenthesis") {
			t.Errorf("/graph with a bad expression = %d without the parse error:\n%s", code, page)
		}
	})
	t.Run("health, readiness and metrics", func(t *testing.T) {
		for path, want := range map[string]string{
			"/-/healthy": "Prometheus Server is Healthy.",
			"/-/ready":   "Prometheus Server is Ready.",
			"/metrics":   "prometheus_tsdb_head_series",
		} {
			code, body := get(t, mon.base+path)
			if code != http.StatusOK || !strings.Contains(body, want) {
				t.Errorf("GET %s = %d, body lacks %q", path, code, want)
			}
		}
	})
}

// TestReload changes the rule file under a running monitor and applies it with POST /-/reload;
// a broken file is refused and leaves the running rules in place.
func TestReload(t *testing.T) {
	target := newLoadTarget(t)
	recv := newAlertReceiver(t)
	cfg := writeConfig(t, map[string]string{"Target": target.hostPort(), "Alertmanager": recv.hostPort()})
	mon := startMonitor(t, cfg)
	ctx := context.Background()
	rulesFile := filepath.Join(filepath.Dir(cfg), "rules.yml")

	names := func() []string {
		t.Helper()
		res, err := mon.prom.Rules(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, g := range res.Groups {
			for _, r := range g.Rules {
				if ar, ok := r.(v1.AlertingRule); ok {
					out = append(out, ar.Name)
				}
			}
		}
		return out
	}
	post := func() (int, string) {
		resp, err := http.Post(mon.base+"/-/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	renamed := strings.Replace(string(b), "AppOverloaded", "AppBusy", 1)
	if err := os.WriteFile(rulesFile, []byte(renamed), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := post(); code != http.StatusOK {
		t.Fatalf("POST /-/reload = %d %s, want 200", code, body)
	}
	if got := names(); len(got) != 1 || got[0] != "AppBusy" {
		t.Errorf("rules after reload = %v, want [AppBusy]", got)
	}

	if err := os.WriteFile(rulesFile, []byte("groups:\n  - name: app\n    rules:\n      - alert: Broken\n        expr: sum(\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, body := post()
	if code != http.StatusInternalServerError || !strings.Contains(body, "rules.yml") {
		t.Errorf("POST /-/reload with a broken rule file = %d %s, want 500 naming rules.yml", code, body)
	}
	if got := names(); len(got) != 1 || got[0] != "AppBusy" {
		t.Errorf("rules after a failed reload = %v, want [AppBusy] kept", got)
	}
	_, metrics := get(t, mon.base+"/metrics")
	if !strings.Contains(metrics, "prometheus_config_last_reload_successful 0") {
		t.Error("/metrics does not report the failed reload")
	}
}

// TestBadConfig checks that New refuses bad files with a message naming the file, the line
// and the problem.
func TestBadConfig(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"unknown_field.yml", []string{"unknown_field.yml", "line 7", "scrape_intervall"}},
		{"kubernetes_sd.yml", []string{"kubernetes_sd.yml:6:5", "scrape_configs[1].kubernetes_sd_configs (job \"pods\")", "not supported", "supported: static_configs, http_sd_configs"}},
		{"alertmanager_dns_sd.yml", []string{"alertmanager_dns_sd.yml:3:7", "alerting.alertmanagers[0].dns_sd_configs", "supported: static_configs, http_sd_configs"}},
		{"included.yml", []string{"included_jobs.yml.inc:3:5", `scrape_configs[0].ec2_sd_configs (job "cloud")`, "supported: static_configs, http_sd_configs"}},
		{"bad_rules.yml", []string{"bad_rules.rules.yml", "5:", "Broken"}},
		{"seed_rules.yml", []string{"seed.rules in Prometheus 1.x format", "skyfleet rules convert"}},
		{"bad_duration.yml", []string{"bad_duration.yml", "soon"}},
		{"missing.yml", []string{"missing.yml", "no such file"}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			_, err := New(Options{ConfigFile: filepath.Join("testdata", "bad", tc.file)})
			if err == nil {
				t.Fatal("New accepted the file")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	good := filepath.Join("testdata", "rules.yml") // any readable file: options are checked first
	for name, tc := range map[string]struct {
		opts Options
		want string
	}{
		"negative retention":    {Options{ConfigFile: good, Retention: -time.Hour}, "retention -1h0m0s is negative"},
		"negative resend delay": {Options{ConfigFile: good, ResendDelay: -time.Second}, "resend delay -1s is negative"},
		"bad listen address":    {Options{ConfigFile: good, Listen: "9090"}, `listen address "9090" is not host:port`},
		"bad external URL":      {Options{ConfigFile: good, ExternalURL: "monitor.local"}, `external URL "monitor.local" is not an absolute http(s) URL`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	t.Run("no file", func(t *testing.T) {
		_, err := New(Options{})
		if err == nil || !strings.Contains(err.Error(), "--config.file") {
			t.Errorf("error = %v, want one naming --config.file", err)
		}
	})
}

// TestPromtoolAcceptsConfig proves the configuration the tests run is a standard one: the real
// promtool from Prometheus' Debian package checks it and its rule file.
func TestPromtoolAcceptsConfig(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("SKYFLEET_REQUIRE_INTEGRATION") == "" {
			t.Skip("promtool not installed")
		}
		t.Fatalf("SKYFLEET_REQUIRE_INTEGRATION is set but promtool is missing: %v", err)
	}
	for name, data := range map[string]map[string]string{
		"static_configs":  {"Target": "127.0.0.1:9100", "Alertmanager": "127.0.0.1:9093"},
		"http_sd_configs": {"Target": "127.0.0.1:9100", "Alertmanager": "127.0.0.1:9093", "SD": "http://127.0.0.1:5000/v1/sd/prometheus"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := writeConfig(t, data)
			out, err := exec.Command(promtool, "check", "config", cfg).CombinedOutput()
			if err != nil {
				t.Fatalf("promtool check config: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "SUCCESS: 1 rules found") {
				t.Errorf("promtool did not check the rule file:\n%s", out)
			}
		})
	}
}

// TestPromtoolQueries points the real promtool's query commands at a running monitor, as a
// user checking the monitor from a shell would.
func TestPromtoolQueries(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("SKYFLEET_REQUIRE_INTEGRATION") == "" {
			t.Skip("promtool not installed")
		}
		t.Fatalf("SKYFLEET_REQUIRE_INTEGRATION is set but promtool is missing: %v", err)
	}
	target := newLoadTarget(t)
	recv := newAlertReceiver(t)
	target.gauge.Set(7)
	mon := startMonitor(t, writeConfig(t, map[string]string{"Target": target.hostPort(), "Alertmanager": recv.hostPort()}))
	promtoolOut := func(args ...string) (string, error) {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		return string(out), err
	}
	waitFor(t, "promtool query instant", func() error {
		out, err := promtoolOut("query", "instant", mon.base, "test_load")
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		if !strings.Contains(out, `test_load{group="app_cluster"`) || !strings.Contains(out, "=> 7 @[") {
			return fmt.Errorf("output lacks test_load => 7: %s", out)
		}
		return nil
	})
	waitFor(t, "promtool query range", func() error {
		// Whole seconds: the end is rounded up so that it is not before the first sample.
		now := time.Now()
		out, err := promtoolOut("query", "range", "--start", fmt.Sprint(now.Add(-time.Minute).Unix()),
			"--end", fmt.Sprint(now.Unix()+1), "--step", "1s", mon.base, "test_load")
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		if !strings.Contains(out, `test_load{group="app_cluster"`) || !strings.Contains(out, "\n7 @[") {
			return fmt.Errorf("output lacks the series with 7: %s", out)
		}
		return nil
	})
	out, err := promtoolOut("query", "labels", mon.base, "job")
	if err != nil || strings.TrimSpace(out) != "app" {
		t.Errorf("promtool query labels job = %v %q, want app", err, out)
	}
}
