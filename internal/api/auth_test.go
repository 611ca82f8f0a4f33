package api

import (
	"log/slog"
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
