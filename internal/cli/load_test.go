package cli

import (
	"encoding/csv"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestLoadFailOnError(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Key") != "k" {
			http.Error(w, "no key", http.StatusUnauthorized)
			return
		}
		if r.URL.Query().Get("fail") != "" && n.Add(1)%2 == 0 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("payload"))
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
		wantErr  string
	}{
		{"all ok", []string{"load", "-n", "6", "-c", "2", "-H", "X-Key: k", "--fail-on-error", srv.URL}, 0,
			[]string{"requests   6 in", "6 ok, 0 errors", "latency    min"}, ""},
		{"errors without the flag exit 0", []string{"load", "-n", "4", "-q", "-H", "X-Key: k", srv.URL + "/?fail=1"}, 0,
			[]string{"2 ok, 2 errors", "errors     http 503: 2"}, ""},
		{"errors with the flag exit 1", []string{"load", "-n", "4", "-q", "--fail-on-error", srv.URL}, 1,
			[]string{"0 ok, 4 errors", "http 401: 4"}, "4 of 4 requests failed"},
		{"URL without a scheme is http", []string{"load", "-n", "1", "-q", "-H", "X-Key: k", "--fail-on-error", strings.TrimPrefix(srv.URL, "http://")}, 0,
			[]string{"1 ok"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, tc.args...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout %s\nstderr %s", code, tc.wantCode, out, errOut)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("summary lacks %q:\n%s", w, out)
				}
			}
			if !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantErr, errOut)
			}
		})
	}
}

func TestLoadBadFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"headers and concurrency", []string{"load", "-H", "nocolon", "-H", "Bad Name: x", "-c", "0", "http://127.0.0.1:1/"},
			[]string{`-H "nocolon": want "Name: value"`, `-H "Bad Name: x"`, "--concurrency: 0 is outside"}},
		{"server without infra", []string{"load", "--server", "http://127.0.0.1:1", "http://127.0.0.1:1/"}, []string{"--server: only used", "which need --infra"}},
		{"infra without timeline", []string{"load", "--infra", "x", "http://127.0.0.1:1/"}, []string{"--infra: node counts go into the timeline"}},
		{"bad url", []string{"load", "-n", "1", "ftp://x/"}, []string{`url "ftp://x/"`}},
		{"no url", []string{"load"}, []string{"accepts 1 arg"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := runCLI(t, tc.args...)
			if code == 0 {
				t.Fatal("exit 0, want a refusal")
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// TestLoadTimelineWithNodeCounts runs load with --timeline and --infra against a fake
// skyfleet server that answers GET /v1/infrastructures/{id}.
func TestLoadTimelineWithNodeCounts(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Millisecond)
		_, _ = w.Write([]byte("0123456789"))
	}))
	defer target.Close()
	var polls atomic.Int64
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/infrastructures/inf1" {
			http.NotFound(w, r)
			return
		}
		polls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"inf1","name":"demo","phase":"ready","nodes":[
			{"name":"db","ready":1,"instances":[]},
			{"name":"app","ready":3,"instances":[]},
			{"name":"lb","ready":2,"instances":[]}]}`))
	}))
	defer server.Close()
	file := filepath.Join(t.TempDir(), "timeline.csv")
	out, errOut, code := runCLI(t, "load", "-d", "1500ms", "-c", "2", "--timeline", file, "--infra", "inf1", "--server", server.URL, target.URL)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("timeline is not CSV: %v", err)
	}
	want := "time,elapsed_s,requests,errors,p50_ms,p99_ms,bytes,in_flight,db_ready,app_ready,lb_ready"
	if got := strings.Join(rows[0], ","); got != want {
		t.Fatalf("header %s, want %s", got, want)
	}
	if len(rows) < 3 {
		t.Fatalf("%d rows for a 1.5 s run, want a header, a row for the first second and a last one", len(rows))
	}
	for _, row := range rows[1:] {
		if strings.Join(row[8:], ",") != "1,3,2" {
			t.Fatalf("node columns %v, want 1,3,2", row[8:])
		}
	}
	if polls.Load() < 2 {
		t.Fatalf("the server was asked %d times, want at least once at start and once per second", polls.Load())
	}
	if !strings.Contains(errOut, "req/s") {
		t.Errorf("no progress line on stderr:\n%s", errOut)
	}
}
