package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/autoscale"
)

// TestAlertsThroughAlertmanager sends the monitor's alerts to the real Alertmanager (Debian's
// prometheus-alertmanager), whose webhook delivers them to a receiver that reads them with
// skyfleet's own webhook parser: the seed's chain with the monitor in Prometheus' place.
func TestAlertsThroughAlertmanager(t *testing.T) {
	amBin := ""
	for _, name := range []string{"prometheus-alertmanager", "alertmanager"} {
		if p, err := exec.LookPath(name); err == nil {
			amBin = p
			break
		}
	}
	if amBin == "" {
		if os.Getenv("SKYFLEET_REQUIRE_INTEGRATION") == "" {
			t.Skip("alertmanager not installed")
		}
		t.Fatal("SKYFLEET_REQUIRE_INTEGRATION is set but neither prometheus-alertmanager nor alertmanager is installed")
	}

	// The webhook receiver stands in for skyfleet's POST /v1/alerts/alertmanager.
	var mu sync.Mutex
	var got []*autoscale.Alert
	var bad []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var alerts []*autoscale.Alert
		var rejected []autoscale.RejectedAlert
		if err == nil {
			alerts, rejected, err = autoscale.ParseWebhook(body, time.Now())
		}
		mu.Lock()
		defer mu.Unlock()
		if err == nil && len(rejected) > 0 {
			err = fmt.Errorf("refused %+v", rejected)
		}
		if err != nil {
			bad = append(bad, err.Error())
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got = append(got, alerts...)
	}))
	t.Cleanup(hook.Close)
	seen := func(firing bool) func() error {
		return func() error {
			mu.Lock()
			defer mu.Unlock()
			for _, a := range got {
				if a.Firing == firing && a.Kind == "overloaded" && a.InfraID == "X" && a.Node == "app" && a.Source == "alertmanager" {
					return nil
				}
			}
			return fmt.Errorf("no %s alert among %d received (bad: %v)", map[bool]string{true: "firing", false: "resolved"}[firing], len(got), bad)
		}
	}

	dir := t.TempDir()
	amCfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(amCfg, []byte(`route:
  receiver: skyfleet
  group_by: [alertname, infra_id, node]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1m
receivers:
  - name: skyfleet
    webhook_configs:
      - url: "`+hook.URL+`/v1/alerts/alertmanager"
        send_resolved: true
`), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	amAddr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	am := exec.CommandContext(ctx, amBin, "--config.file="+amCfg, "--storage.path="+filepath.Join(dir, "am"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=", "--log.level=warn")
	var amOut strings.Builder
	am.Stdout, am.Stderr = &amOut, &amOut
	if err := am.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = am.Wait()
		if t.Failed() {
			t.Logf("alertmanager output:\n%s", amOut.String())
		}
	})
	waitFor(t, "alertmanager ready", func() error {
		code, _, err := fetch("http://" + amAddr + "/-/ready")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return errors.New(http.StatusText(code))
		}
		return nil
	})

	target := newLoadTarget(t)
	startMonitor(t, writeConfig(t, map[string]string{"Target": target.hostPort(), "Alertmanager": amAddr}))
	target.gauge.Set(100)
	waitFor(t, "a firing alert through alertmanager", seen(true))
	target.gauge.Set(0)
	waitFor(t, "a resolved alert through alertmanager", seen(false))
}
