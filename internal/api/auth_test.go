package api

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestAuth(t *testing.T) {
	const token = "s3cret-token-value"
	logs := &captureLogger{}
	h := newHarness(t, func(o *Options) {
		o.Token = token
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	routes := []struct{ method, path, body string }{
		{"GET", "/infrastructures/", ""},
		{"POST", "/infrastructures/", readFixture(t, "infra.yaml")},
		{"GET", "/infrastructures/x", ""},
		{"POST", "/infrastructures/x/scaleup/app", ""},
		{"GET", "/info/infrastructure.name?infra_id=x", ""},
		{"GET", "/v1/infrastructures", ""},
		{"POST", "/v1/nodedefs", readFixture(t, "nodedefs.yaml")},
		{"GET", "/v1/openapi.yaml", ""},
		{"GET", "/metrics", ""},
		{"GET", "/v1/infrastructures/x/events?watch=1", ""},
	}
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			for _, hdr := range []string{"", "Authorization: Bearer wrong", "Authorization: Basic " + token, "Authorization: Bearer " + token + "x"} {
				var resp, body = h.do(rt.method, rt.path, rt.body, nonEmpty(hdr)...)
				mustStatus(t, resp, body, 401)
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("401 without WWW-Authenticate")
				}
				if strings.HasPrefix(rt.path, "/v1/") || rt.path == "/metrics" {
					if e := v1Error(t, body); e.Code != CodeUnauthorized {
						t.Errorf("code %q", e.Code)
					}
				} else if !strings.Contains(string(body), `"status_code": 401`) {
					t.Errorf("compat 401 body: %s", body)
				}
			}
			resp, body := h.do(rt.method, rt.path, rt.body, "Authorization: Bearer "+token)
			if resp.StatusCode == 401 {
				t.Fatalf("the right token was refused: %s", body)
			}
		})
	}
	t.Run("healthz needs no token", func(t *testing.T) {
		resp, body := h.do("GET", "/healthz", "")
		mustStatus(t, resp, body, 200)
	})
	t.Run("preflight needs no token", func(t *testing.T) {
		resp, body := h.do("OPTIONS", "/infrastructures/", "", "Access-Control-Request-Method: POST")
		mustStatus(t, resp, body, 200)
	})
	if strings.Contains(logs.String(), token) {
		t.Errorf("the token appears in the log:\n%s", logs.String())
	}
}

func TestNoAuthWithoutToken(t *testing.T) {
	h := newHarness(t, nil)
	for _, p := range []string{"/infrastructures/", "/v1/infrastructures", "/v1/nodedefs", "/metrics"} {
		resp, body := h.do("GET", p, "", "Authorization: Bearer anything")
		mustStatus(t, resp, body, 200)
	}
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func TestMountAuth(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mounts := []Mount{
		{Pattern: "POST /api/v2/alerts", Handler: ok, Auth: MountAlerts},
		{Pattern: "GET /v1/sd/prometheus", Handler: ok, Auth: MountToken},
		{Pattern: "GET /ui/", Handler: ok, Auth: MountPublic},
	}
	tests := []struct {
		name, token, alertToken string
		method, path, header    string
		want                    int
	}{
		{"alert route with the alert token", "main", "alerts", "POST", "/api/v2/alerts", "Authorization: Bearer alerts", 204},
		{"alert route with the main token", "main", "alerts", "POST", "/api/v2/alerts", "Authorization: Bearer main", 204},
		{"alert route without token", "main", "alerts", "POST", "/api/v2/alerts", "", 401},
		{"alert token elsewhere", "main", "alerts", "GET", "/v1/sd/prometheus", "Authorization: Bearer alerts", 401},
		{"token mount with main token", "main", "alerts", "GET", "/v1/sd/prometheus", "Authorization: Bearer main", 204},
		{"public mount", "main", "alerts", "GET", "/ui/app.js", "", 204},
		{"only an alert token: alert route protected", "", "alerts", "POST", "/api/v2/alerts", "", 401},
		{"only an alert token: alert route with it", "", "alerts", "POST", "/api/v2/alerts", "Authorization: Bearer alerts", 204},
		{"only an alert token: other routes open", "", "alerts", "GET", "/v1/sd/prometheus", "", 204},
		{"no tokens", "", "", "POST", "/api/v2/alerts", "", 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(o *Options) {
				o.Token, o.AlertToken, o.Mounts = tt.token, tt.alertToken, mounts
			})
			resp, body := h.do(tt.method, tt.path, "", nonEmpty(tt.header)...)
			mustStatus(t, resp, body, tt.want)
		})
	}
}
