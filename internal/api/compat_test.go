package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/store"
)

// TestCompatRoutesGolden drives every Occopus-compatible route in the order a user would and
// compares each answer with its golden file.
func TestCompatRoutesGolden(t *testing.T) {
	h := newHarness(t, nil)
	id := h.createInfra()
	if id != "infra-1" {
		t.Fatalf("infraid = %q, want infra-1 from the fake engine", id)
	}
	h.seedInstances(id)
	// A second infrastructure, to see the list order.
	resp, body := h.do("POST", "/infrastructures/", readFixture(t, "infra.yaml"))
	mustStatus(t, resp, body, 200)
	golden(t, "compat_create", body)

	resp, body = h.do("POST", "/v1/nodedefs?filename=nodedefs.yaml", readFixture(t, "nodedefs.yaml"))
	mustStatus(t, resp, body, 200)
	_, err := h.eng.addEvent(context.Background(), store.Event{InfraID: id, At: now, Type: "infraready"})
	if err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name, method, path, body string
	}{
		{"compat_info_started", "GET", "/info/infrastructure.started?infra_id=infra-1", ""},
		{"compat_info_first_maintenance", "GET", "/info/infrastructure.finished_first_maintenance?infra_id=infra-1", ""},
		{"compat_info_first_maintenance_not_yet", "GET", "/info/infrastructure.finished_first_maintenance?infra_id=infra-2", ""},
		{"compat_info_node_definition_all", "GET", "/info/node.definition.all?node_type=app", ""},
		{"compat_list", "GET", "/infrastructures/", ""},
		{"compat_report", "GET", "/infrastructures/infra-1", ""},
		{"compat_report_empty", "GET", "/infrastructures/infra-2", ""},
		{"compat_cost", "GET", "/infrastructures/infra-1/cost", ""},
		{"compat_scaleup", "POST", "/infrastructures/infra-1/scaleup/app", ""},
		{"compat_scaleup_count", "POST", "/infrastructures/infra-1/scaleup/lb/2", ""},
		{"compat_scaledown", "POST", "/infrastructures/infra-1/scaledown/lb", ""},
		{"compat_scaledown_ip", "POST", "/infrastructures/infra-1/scaledown/app/127.77.0.3", ""},
		{"compat_scaleto", "POST", "/infrastructures/infra-1/scaleto/lb/3", ""},
		{"compat_detach", "POST", "/infrastructures/infra-1/detach", ""},
		{"compat_attach", "POST", "/infrastructures/infra-1/attach", ""},
		{"compat_notify", "POST", "/infrastructures/infra-1/notify", `{"type":"fcm","fcm":{"api_key":"k","reg_id":"r"}}`},
		{"compat_report_after_scaling", "GET", "/infrastructures/infra-1", ""},
		{"compat_info_name", "GET", "/info/infrastructure.name?infra_id=infra-1", ""},
		{"compat_info_state", "GET", "/info/infrastructure.state?infra_id=infra-1", ""},
		{"compat_info_node_instances", "GET", "/info/infrastructure.node_instances?infra_id=infra-1", ""},
		{"compat_info_node_state", "GET", "/info/node.state?infra_id=infra-1&node_id=0b3c5a3e-0000-4000-8000-000000000001", ""},
		{"compat_info_node_address", "GET", "/info/node.address?infra_id=infra-1&node_id=0b3c5a3e-0000-4000-8000-000000000003", ""},
		{"compat_info_node_find", "GET", "/info/node.find?infra_id=infra-1&name=app", ""},
		{"compat_info_state_report", "GET", "/info/infrastructure.state_report?infra_id=infra-1", ""},
		{"compat_delete", "DELETE", "/infrastructures/infra-1", ""},
		{"compat_list_after_delete", "GET", "/infrastructures/", ""},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			resp, body := h.do(st.method, st.path, st.body)
			mustStatus(t, resp, body, 200)
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin = %q, want * (Flask-CORS)", got)
			}
			golden(t, st.name, body)
		})
	}

	// The notify body is stored as it was sent.
	resp, body = h.do("GET", "/v1/infrastructures/infra-2", "")
	mustStatus(t, resp, body, 200)
	var d InfraDetail
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if d.Notification != "" {
		t.Errorf("infra-2 notification = %q, want none", d.Notification)
	}
}

func TestCompatNotifyStoresBody(t *testing.T) {
	h := newHarness(t, nil)
	id := h.createInfra()
	const note = `{"type":"fcm","fcm":{"api_key":"k","reg_id":"r"}}`
	resp, body := h.do("POST", "/infrastructures/"+id+"/notify", note)
	mustStatus(t, resp, body, 200)
	resp, body = h.do("GET", "/v1/infrastructures/"+id, "")
	mustStatus(t, resp, body, 200)
	var d InfraDetail
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if d.Notification != note {
		t.Errorf("notification = %q, want %q", d.Notification, note)
	}
}

// TestCompatErrors checks every handled error: Occopus' body shape and exact reason texts,
// with HTTP 200 by default and the real status with CompatHTTPStatus.
func TestCompatErrors(t *testing.T) {
	invalid := readFixture(t, "infra_invalid.yaml")
	malformed := readFixture(t, "infra_malformed.yaml")
	cases := []struct {
		name, method, path, body string
		code                     int // status_code in the body
		real                     int // HTTP status with CompatHTTPStatus
		reason                   string
		reasonHas                []string
	}{
		{name: "empty post", method: "POST", path: "/infrastructures/", code: 400, real: 400, reason: "Empty POST data"},
		{name: "malformed yaml", method: "POST", path: "/infrastructures/", body: malformed, code: 400, real: 400,
			reasonHas: []string{"infrastructure.yaml:1: invalid YAML"}},
		{name: "invalid descriptor", method: "POST", path: "/infrastructures/?filename=infra_invalid.yaml", body: invalid, code: 400, real: 400,
			reasonHas: []string{
				"infra_invalid.yaml:6:28: nodes[0].scaling.max: 1 is below min (3)",
				`infra_invalid.yaml:7:11: nodes[1].name: "app_server" is not a valid name`,
				`infra_invalid.yaml:9:5: nodes[1].colour: unknown key "colour"`,
			}},
		{name: "report unknown infra", method: "GET", path: "/infrastructures/nope", code: 300, real: 404, reason: "ERROR: infrastructure 'nope' does not exist!"},
		{name: "delete unknown infra", method: "DELETE", path: "/infrastructures/nope", code: 300, real: 404, reason: "ERROR: infrastructure 'nope' does not exist!"},
		{name: "attach unknown infra", method: "POST", path: "/infrastructures/nope/attach", code: 300, real: 404, reason: "ERROR: infrastructure 'nope' does not exist!"},
		{name: "detach unknown infra", method: "POST", path: "/infrastructures/nope/detach", code: 300, real: 404, reason: "ERROR: infrastructure 'nope' does not exist!"},
		{name: "notify unknown infra", method: "POST", path: "/infrastructures/nope/notify", body: "{}", code: 300, real: 404, reason: "ERROR: infrastructure 'nope' does not exist!"},
		{name: "cost unknown infra", method: "GET", path: "/infrastructures/nope/cost", code: 300, real: 404, reason: "ERROR: infrastructure 'nope' does not exist!"},
		{name: "scaleup unknown infra", method: "POST", path: "/infrastructures/nope/scaleup/app", code: 300, real: 404, reason: "ERROR: infrastructure 'nope' does not exist!"},
		{name: "scaledown unknown infra", method: "POST", path: "/infrastructures/nope/scaledown/app/1.2.3.4", code: 300, real: 404, reason: "ERROR: infrastructure 'nope' does not exist!"},
		{name: "scaleto unknown infra", method: "POST", path: "/infrastructures/nope/scaleto/app/2", code: 300, real: 404, reason: "ERROR: infrastructure 'nope' does not exist!"},
		{name: "scaleup unknown node", method: "POST", path: "/infrastructures/infra-1/scaleup/web", code: 300, real: 404, reason: "ERROR: node 'web does not exist in infrastructure 'infra-1'!"},
		{name: "scaleup count unknown node", method: "POST", path: "/infrastructures/infra-1/scaleup/web/2", code: 300, real: 404, reason: "ERROR: node 'web does not exist in infrastructure 'infra-1'!"},
		{name: "scaledown unknown node", method: "POST", path: "/infrastructures/infra-1/scaledown/web", code: 300, real: 404, reason: "ERROR: node 'web does not exist in infrastructure 'infra-1'!"},
		{name: "scaleto unknown node", method: "POST", path: "/infrastructures/infra-1/scaleto/web/1", code: 300, real: 404, reason: "ERROR: node 'web does not exist in infrastructure 'infra-1'!"},
		{name: "attach maintained", method: "POST", path: "/infrastructures/infra-1/attach", code: 300, real: 409, reason: "ERROR: Infrastructure infra-1 already being maintained!"},
		{name: "info unknown key", method: "GET", path: "/info/backends.auth_data", code: 404, real: 404, reason: `Key not found: "backends.auth_data"`},
		{name: "info missing parameter", method: "GET", path: "/info/infrastructure.name", code: 400, real: 400, reason: `Invalid parameter value for key "infrastructure.name"`},
		{name: "info unknown infra", method: "GET", path: "/info/infrastructure.state?infra_id=nope", code: 400, real: 400, reason: `Invalid parameter value for key "infrastructure.state"`},
	}
	for _, mode := range []bool{false, true} {
		h := newHarness(t, func(o *Options) { o.CompatHTTPStatus = mode })
		h.createInfra()
		for _, c := range cases {
			t.Run(c.name+map[bool]string{false: " (occopus status)", true: " (real status)"}[mode], func(t *testing.T) {
				resp, body := h.do(c.method, c.path, c.body)
				want := 200
				if mode {
					want = c.real
				}
				mustStatus(t, resp, body, want)
				var got compatBody
				dec := json.NewDecoder(strings.NewReader(string(body)))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&got); err != nil {
					t.Fatalf("body is not Occopus' error shape: %v: %s", err, body)
				}
				if got.StatusCode != c.code {
					t.Errorf("status_code = %d, want %d", got.StatusCode, c.code)
				}
				if c.reason != "" && got.Reason != c.reason {
					t.Errorf("reason = %q, want %q", got.Reason, c.reason)
				}
				for _, part := range c.reasonHas {
					if !strings.Contains(got.Reason, part) {
						t.Errorf("reason lacks %q:\n%s", part, got.Reason)
					}
				}
			})
		}
	}
}

func TestCompatRoutingQuirks(t *testing.T) {
	h := newHarness(t, nil)
	id := h.createInfra()
	t.Run("non-integer count is no route", func(t *testing.T) {
		for _, p := range []string{"/scaleup/app/two", "/scaleup/app/-1", "/scaleto/app/1.5", "/scaleto/app/99999999999999999999"} {
			resp, body := h.do("POST", "/infrastructures/"+id+p, "")
			mustStatus(t, resp, body, 404)
		}
		h.eng.mu.Lock()
		n := len(h.eng.requests)
		h.eng.mu.Unlock()
		if n != 0 {
			t.Errorf("%d scaling requests reached the engine, want none", n)
		}
	})
	t.Run("no trailing slash redirects with 308", func(t *testing.T) {
		for _, m := range []string{"GET", "POST"} {
			resp, body := h.do(m, "/infrastructures", "")
			mustStatus(t, resp, body, http.StatusPermanentRedirect)
			if loc := resp.Header.Get("Location"); loc != "/infrastructures/" {
				t.Errorf("%s Location = %q, want /infrastructures/", m, loc)
			}
		}
	})
	t.Run("curl -L follows the redirect with the body", func(t *testing.T) {
		resp, err := http.Post(h.ts.URL+"/infrastructures", "application/octet-stream", strings.NewReader(readFixture(t, "infra.yaml")))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out["infraid"] == "" {
			t.Fatalf("after redirect: status %d, body %v, err %v", resp.StatusCode, out, err)
		}
	})
	t.Run("wrong method is 405", func(t *testing.T) {
		resp, body := h.do("GET", "/infrastructures/"+id+"/scaleup/app", "")
		mustStatus(t, resp, body, http.StatusMethodNotAllowed)
	})
	t.Run("CORS preflight", func(t *testing.T) {
		resp, body := h.do("OPTIONS", "/infrastructures/"+id+"/scaleup/app", "",
			"Origin: http://127.0.0.1:8000", "Access-Control-Request-Method: POST", "Access-Control-Request-Headers: content-type")
		mustStatus(t, resp, body, 200)
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") ||
			resp.Header.Get("Access-Control-Allow-Headers") != "content-type" {
			t.Errorf("preflight headers: %v", resp.Header)
		}
	})
	t.Run("v1 routes carry no CORS header", func(t *testing.T) {
		resp, body := h.do("GET", "/v1/infrastructures", "")
		mustStatus(t, resp, body, 200)
		if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("v1 Access-Control-Allow-Origin = %q, want none", v)
		}
	})
}

// TestCompatDeleteWaits checks that DELETE answers only once the engine removed the
// infrastructure, and gives Occopus' error body when that takes longer than the timeout.
func TestCompatDeleteWaits(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.DeleteTimeout = 50 * time.Millisecond })
	h.eng.destroyNow = false
	id := h.createInfra()
	resp, body := h.do("DELETE", "/infrastructures/"+id, "")
	mustStatus(t, resp, body, 200)
	var got compatBody
	if err := json.Unmarshal(body, &got); err != nil || got.StatusCode != 500 || !strings.Contains(got.Reason, "was not destroyed within") {
		t.Fatalf("timeout body = %s (%v)", body, err)
	}
	if strings.Contains(string(body), "infraid") {
		t.Errorf("a timed-out DELETE must not carry infraid (clients test 'infraid' in the body): %s", body)
	}
}
