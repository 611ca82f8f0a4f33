package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// jsonShape records every path of a decoded JSON document with its type. Label sets (whose
// keys are data, not schema) are recorded as objects without their keys; array elements
// share the path "[]".
func jsonShape(v any, path string, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		out[path] = "object"
		last := path[strings.LastIndex(path, ".")+1:]
		if slices.Contains([]string{"metric", "labels", "discoveredLabels", "annotations"}, last) {
			return
		}
		for k, e := range x {
			jsonShape(e, path+"."+k, out)
		}
	case []any:
		out[path] = "array"
		for _, e := range x {
			jsonShape(e, path+"[]", out)
		}
	case string:
		out[path] = "string"
	case float64:
		out[path] = "number"
	case bool:
		out[path] = "bool"
	case nil:
		out[path] = "null"
	}
}

// TestSameJSONAsPrometheus runs the real Prometheus (Debian's package) and the monitor on the
// same configuration and target, waits until both have the alert firing, and checks that every
// field the real server returns on each route is returned by the monitor too, with the same
// JSON type: the proof that clients written for Prometheus read the monitor.
func TestSameJSONAsPrometheus(t *testing.T) {
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("SKYFLEET_REQUIRE_INTEGRATION") == "" {
			t.Skip("prometheus not installed")
		}
		t.Fatalf("SKYFLEET_REQUIRE_INTEGRATION is set but prometheus is missing: %v", err)
	}
	target := newLoadTarget(t)
	recv := newAlertReceiver(t)
	cfg := writeConfig(t, map[string]string{"Target": target.hostPort(), "Alertmanager": recv.hostPort()})
	target.gauge.Set(100)
	mon := startMonitor(t, cfg)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	promAddr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, promBin, "--config.file="+cfg, "--web.listen-address="+promAddr,
		"--storage.tsdb.path="+filepath.Join(t.TempDir(), "prom"), "--log.level=warn")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out.String())
		}
	})
	promBase := "http://" + promAddr

	firing := func(base string) func() error {
		return func() error {
			_, body := getNoFatal(base + "/api/v1/alerts")
			if !strings.Contains(body, `"state":"firing"`) {
				return fmt.Errorf("%s: no firing alert yet: %s", base, body)
			}
			return nil
		}
	}
	waitFor(t, "the alert firing on the real Prometheus", firing(promBase))
	waitFor(t, "the alert firing on the monitor", firing(mon.base))

	now := time.Now().Unix()
	// Each route with one path the real answer must have, so that a comparison with an
	// empty or error answer cannot pass by accident.
	routes := []struct{ route, mustHave string }{
		{"/api/v1/query?query=test_load", ".data.result[].value[]"},
		{fmt.Sprintf("/api/v1/query_range?query=test_load&start=%d&end=%d&step=1", now-5, now), ".data.result[].values[][]"},
		{"/api/v1/query?query=scalar(test_load)", ".data.result[]"},
		{"/api/v1/query?query=sum(", ".errorType"},
		{"/api/v1/query_range?query=up&start=10&end=5&step=1", ".errorType"},
		{"/api/v1/alerts", ".data.alerts[].activeAt"},
		{"/api/v1/rules", ".data.groups[].rules[].alerts[].activeAt"},
		{"/api/v1/targets", ".data.activeTargets[].lastScrape"},
		{"/api/v1/labels", ".data[]"},
		{"/api/v1/label/job/values", ".data[]"},
		{"/api/v1/series?match[]=test_load", ".data[]"},
		{"/api/v1/alertmanagers", ".data.activeAlertmanagers[].url"},
		{"/api/v1/metadata?metric=test_load", ".data.test_load[].type"},
		{"/api/v1/status/buildinfo", ".data.goVersion"},
	}
	for _, rt := range routes {
		route := rt.route
		t.Run(route, func(t *testing.T) {
			want, wantCode, err := shapeOf(promBase + route)
			if err != nil {
				t.Fatalf("prometheus: %v", err)
			}
			if want[rt.mustHave] == "" {
				t.Fatalf("prometheus' answer lacks %s: %v", rt.mustHave, want)
			}
			got, gotCode, err := shapeOf(mon.base + route)
			if err != nil {
				t.Fatalf("monitor: %v", err)
			}
			if gotCode != wantCode {
				t.Errorf("status %d, prometheus answers %d", gotCode, wantCode)
			}
			for path, typ := range want {
				if got[path] != typ {
					t.Errorf("%s: monitor has %q, prometheus has %q", path, got[path], typ)
				}
			}
		})
	}
}

func getNoFatal(url string) (int, string) {
	code, body, err := fetch(url)
	if err != nil {
		return 0, err.Error()
	}
	return code, body
}

func shapeOf(url string) (map[string]string, int, error) {
	code, body, err := fetch(url)
	if err != nil {
		return nil, 0, err
	}
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return nil, code, fmt.Errorf("decode %s: %w: %s", url, err, body)
	}
	out := map[string]string{}
	jsonShape(v, "", out)
	if len(out) == 0 {
		return nil, code, errors.New("empty document")
	}
	return out, code, nil
}

func fetch(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
