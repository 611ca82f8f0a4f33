package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/skyfleet/skyfleet/docs"
	"github.com/skyfleet/skyfleet/internal/client"
	"github.com/skyfleet/skyfleet/internal/store"
)

// TestDaemonMountsAreDocumented: every route the daemon mounts from other packages is in
// docs/openapi.yaml, marked x-skyfleet-mounted, and every such entry is mounted.
func TestDaemonMountsAreDocumented(t *testing.T) {
	d := startDaemon(t)
	var doc struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(docs.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, item := range doc.Paths {
		if _, ok := item["x-skyfleet-mounted"]; !ok {
			continue
		}
		for m := range item {
			if m != "x-skyfleet-mounted" && m != "parameters" {
				documented = append(documented, strings.ToUpper(m)+" "+path)
			}
		}
	}
	var mounted []string
	for _, m := range d.mounts(nil) {
		mounted = append(mounted, m.Pattern)
	}
	slices.Sort(documented)
	slices.Sort(mounted)
	if !slices.Equal(documented, mounted) {
		t.Errorf("mounted routes:\n%s\ndocumented as mounted:\n%s", strings.Join(mounted, "\n"), strings.Join(documented, "\n"))
	}
}

const mountsNodeDefs = `'node_def:app':
  - resource: {type: sim}
    health_check: {ping: false}
`

const mountsInfra = `user_id: u
infra_name: mounts
nodes:
  - name: app
    type: app
    scaling: {min: 1, max: 3}
    variables: {metrics_port: 9100}
`

// TestAlertToScaleThroughTheDaemon drives the whole chain on the sim provider: an
// Alertmanager webhook posted to the daemon (with the alert token) scales the node out, the
// decision is in the log, and the new instance shows in Prometheus service discovery.
func TestAlertToScaleThroughTheDaemon(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	alertFile := filepath.Join(dir, "alert-token")
	if err := os.WriteFile(tokFile, []byte("main-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(alertFile, []byte("alert-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--token-file", tokFile, "--alert-token-file", alertFile)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New(client.Options{Addr: d.URL, Token: "main-token"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportNodeDefs(ctx, "nodes.yaml", []byte(mountsNodeDefs)); err != nil {
		t.Fatal(err)
	}
	created, err := c.CreateInfra(ctx, "infra.yaml", []byte(mountsInfra))
	if err != nil {
		t.Fatal(err)
	}
	id := created.ID

	do := func(method, path, token, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, d.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	webhook := `{"version":"4","status":"firing","receiver":"skyfleet","groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"","groupKey":"{}","truncatedAlerts":0,
	  "alerts":[{"status":"firing","labels":{"alertname":"app_overloaded","alert":"overloaded","node":"app","infra_id":"` + id + `"},"annotations":{},"startsAt":"2026-11-29T06:00:00Z","endsAt":"0001-01-01T00:00:00Z"}]}`
	if code, body := do("POST", "/v1/alerts/alertmanager", "", webhook); code != 401 {
		t.Fatalf("webhook without token: %d %s", code, body)
	}
	if code, body := do("GET", "/v1/infrastructures", "alert-token", ""); code != 401 {
		t.Fatalf("alert token accepted on another route: %d %s", code, body)
	}
	if code, body := do("POST", "/v1/alerts/alertmanager", "alert-token", webhook); code != 200 || !strings.Contains(body, `"accepted":1`) {
		t.Fatalf("webhook: %d %s", code, body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := do("GET", "/v1/sd/prometheus?infra_id="+id, "main-token", "")
		var groups []struct {
			Targets []string          `json:"targets"`
			Labels  map[string]string `json:"labels"`
		}
		if code == 200 {
			_ = json.Unmarshal([]byte(body), &groups)
		}
		if len(groups) >= 2 {
			if groups[0].Labels["group"] != "app_cluster" || !strings.HasSuffix(groups[0].Targets[0], ":9100") {
				t.Fatalf("SD group: %+v", groups[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("app did not scale out to 2 ready instances: SD %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, body := do("GET", "/v1/infrastructures/"+id+"/decisions", "main-token", "")
	if code != 200 || !strings.Contains(body, `"outcome":"scaled"`) || !strings.Contains(body, `app_overloaded`) {
		t.Fatalf("decisions: %d %s", code, body)
	}
	if code, body := do("GET", "/v1/infrastructures/"+id+"/nodes/app/endpoints", "main-token", ""); code != 200 || !strings.Contains(body, `"endpoints"`) {
		t.Fatalf("endpoints: %d %s", code, body)
	}
}

// TestDashboardIsServedWithoutTokenButItsAPIIsNot: the static page loads without a token (it
// asks for one), while the routes it calls keep requiring it.
func TestDashboardIsServedWithoutTokenButItsAPIIsNot(t *testing.T) {
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte("main-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--token-file", tokFile)
	for _, c := range []struct {
		path string
		want int
	}{
		{"/ui/", 200},
		{"/v1/infrastructures", 401},
		{"/v1/alerts", 401},
		{"/v1/infrastructures/x/decisions", 401},
	} {
		resp, err := http.Get(d.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET %s without token: %d, want %d", c.path, resp.StatusCode, c.want)
		}
		if c.path == "/ui/" && !strings.Contains(string(body), "<html") {
			t.Errorf("GET /ui/ is not the page: %.200s", body)
		}
	}
}

func TestSimFlags(t *testing.T) {
	cmd, cfg := daemonCmd(t, "--listen", "127.0.0.1:0", "--sim-failure-rate", "1.5", "--sim-api-error-rate", "-1", "--sim-address-range", "nope")
	_, err := newDaemon(cmd, cfg, t.TempDir(), discardLogger())
	want := `--sim-failure-rate 1.5: want a probability from 0 to 1; --sim-api-error-rate -1: want a probability from 0 to 1; --sim-address-range "nope": want an IPv4 prefix such as 127.77.0.0/16`
	if err == nil || err.Error() != want {
		t.Fatalf("newDaemon: %v\nwant %s", err, want)
	}

	// A server-wide boot time keeps sim instances pending.
	d := startDaemon(t, "--sim-boot-time", "1h")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New(client.Options{Addr: d.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportNodeDefs(ctx, "nodes.yaml", []byte(mountsNodeDefs)); err != nil {
		t.Fatal(err)
	}
	created, err := c.CreateInfra(ctx, "infra.yaml", []byte(mountsInfra))
	if err != nil {
		t.Fatal(err)
	}
	for {
		var n int
		var state string
		_ = d.store.View(ctx, func(tx store.Tx) error {
			recs, err := tx.Instances(created.ID)
			n = len(recs)
			if n > 0 {
				state = string(recs[0].State)
			}
			return err
		})
		if n == 1 && state == "pending" {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("instance never seen pending: %d instances, state %q", n, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTargetTrackingThroughTheDaemon: a node with scaling.target follows a Prometheus-compatible
// query: the measured value at twice the target doubles the node.
func TestTargetTrackingThroughTheDaemon(t *testing.T) {
	var value atomic.Value
	value.Store("100")
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1764396000,"`+value.Load().(string)+`"]}]}}`)
	}))
	defer prom.Close()
	d := startDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New(client.Options{Addr: d.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportNodeDefs(ctx, "nodes.yaml", []byte(mountsNodeDefs)); err != nil {
		t.Fatal(err)
	}
	infra := `user_id: u
infra_name: tracked
nodes:
  - name: app
    type: app
    scaling:
      min: 1
      max: 4
      target: {query: 'avg(load{infra_id="{{infra_id}}"})', value: 50, source: "` + prom.URL + `", interval: 1s}
`
	created, err := c.CreateInfra(ctx, "infra.yaml", []byte(infra))
	if err != nil {
		t.Fatal(err)
	}
	readyCount := func() int {
		n := 0
		_ = d.store.View(ctx, func(tx store.Tx) error {
			recs, err := tx.Instances(created.ID)
			for _, r := range recs {
				if r.State == store.StateReady {
					n++
				}
			}
			return err
		})
		return n
	}
	for readyCount() < 2 {
		if ctx.Err() != nil {
			t.Fatalf("target tracking did not scale out: %d ready", readyCount())
		}
		time.Sleep(50 * time.Millisecond)
	}
	ds, err := c.Decisions(ctx, created.ID, 0, "app")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, dec := range ds {
		if dec.Outcome == "scaled" && dec.Direction == "out" && dec.Cause["query"] == `avg(load{infra_id="`+created.ID+`"})` {
			found = true
		}
	}
	if !found {
		t.Fatalf("no scaled decision naming the rendered query: %+v", ds)
	}
}
