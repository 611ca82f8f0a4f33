package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/skyfleet/skyfleet/internal/store"
)

// v1Error decodes the /v1 error envelope strictly.
func v1Error(t *testing.T, body []byte) ErrorBody {
	t.Helper()
	var env ErrorEnvelope
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		t.Fatalf("body is not the v1 error envelope: %v: %s", err, body)
	}
	if env.Error.Code == "" || env.Error.Message == "" {
		t.Fatalf("envelope without code or message: %s", body)
	}
	return env.Error
}

func TestV1NodeDefs(t *testing.T) {
	h := newHarness(t, nil)
	resp, body := h.do("POST", "/v1/nodedefs?filename=nodedefs.yaml", readFixture(t, "nodedefs.yaml"))
	mustStatus(t, resp, body, 200)
	golden(t, "v1_nodedefs_import", body)

	resp, body = h.do("GET", "/v1/nodedefs", "")
	mustStatus(t, resp, body, 200)
	golden(t, "v1_nodedefs_list", body)

	resp, body = h.do("GET", "/v1/nodedefs/app", "")
	mustStatus(t, resp, body, 200)
	golden(t, "v1_nodedefs_get", body)

	resp, body = h.do("DELETE", "/v1/nodedefs/app", "")
	mustStatus(t, resp, body, 204)

	bad := []struct {
		name, method, path, body string
		status                   int
		code                     string
		detailHas                string
	}{
		{"get deleted", "GET", "/v1/nodedefs/app", "", 404, CodeNotFound, ""},
		{"delete deleted", "DELETE", "/v1/nodedefs/app", "", 404, CodeNotFound, ""},
		{"empty body", "POST", "/v1/nodedefs", "", 400, CodeBadRequest, ""},
		{"imports refused", "POST", "/v1/nodedefs?filename=nodedefs_import.yaml", readFixture(t, "nodedefs_import.yaml"), 400, CodeInvalid,
			"nodedefs_import.yaml:6:25: !text_import is not allowed here"},
		{"malformed", "POST", "/v1/nodedefs", "'node_def:x': [unclosed\n", 400, CodeInvalid, "nodedefs.yaml:1"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			resp, body := h.do(c.method, c.path, c.body)
			mustStatus(t, resp, body, c.status)
			e := v1Error(t, body)
			if e.Code != c.code {
				t.Errorf("code = %q, want %q", e.Code, c.code)
			}
			if c.detailHas != "" && !strings.Contains(strings.Join(e.Details, "\n"), c.detailHas) {
				t.Errorf("details %q lack %q", e.Details, c.detailHas)
			}
		})
	}
}

func TestV1Infrastructures(t *testing.T) {
	h := newHarness(t, nil)
	resp, body := h.do("POST", "/v1/infrastructures?filename=infra.yaml", readFixture(t, "infra.yaml"))
	mustStatus(t, resp, body, 201)
	if loc := resp.Header.Get("Location"); loc != "/v1/infrastructures/infra-1" {
		t.Errorf("Location = %q", loc)
	}
	golden(t, "v1_infra_create", body)
	h.seedInstances("infra-1")

	resp, body = h.do("GET", "/v1/infrastructures", "")
	mustStatus(t, resp, body, 200)
	golden(t, "v1_infra_list", body)

	resp, body = h.do("GET", "/v1/infrastructures/infra-1", "")
	mustStatus(t, resp, body, 200)
	golden(t, "v1_infra_get", body)

	t.Run("put replaces the descriptor under the same id", func(t *testing.T) {
		changed := strings.Replace(readFixture(t, "infra.yaml"), "max: 2", "max: 4", 1)
		resp, body := h.do("PUT", "/v1/infrastructures/infra-1", changed)
		mustStatus(t, resp, body, 200)
		golden(t, "v1_infra_put", body)
		resp, body = h.do("GET", "/v1/infrastructures/infra-1", "")
		mustStatus(t, resp, body, 200)
		var d InfraDetail
		if err := json.Unmarshal(body, &d); err != nil {
			t.Fatal(err)
		}
		if d.Generation != 1 || d.Nodes[1].Name != "app" || d.Nodes[1].Max != 4 {
			t.Errorf("after PUT: generation %d, nodes %+v; want generation 1 and app max 4", d.Generation, d.Nodes)
		}
	})
	t.Run("put creates under a chosen id", func(t *testing.T) {
		resp, body := h.do("PUT", "/v1/infrastructures/micado-worker-infra", readFixture(t, "infra.yaml"))
		mustStatus(t, resp, body, 201)
		golden(t, "v1_infra_put_create", body)
	})
	t.Run("attach and detach", func(t *testing.T) {
		resp, body := h.do("POST", "/v1/infrastructures/infra-1/attach", "")
		mustStatus(t, resp, body, 409)
		if e := v1Error(t, body); e.Code != CodeConflict {
			t.Errorf("code %q", e.Code)
		}
		resp, body = h.do("POST", "/v1/infrastructures/infra-1/detach", "")
		mustStatus(t, resp, body, 200)
		resp, body = h.do("POST", "/v1/infrastructures/infra-1/detach", "")
		mustStatus(t, resp, body, 409)
		resp, body = h.do("POST", "/v1/infrastructures/infra-1/attach", "")
		mustStatus(t, resp, body, 200)
	})
	t.Run("delete", func(t *testing.T) {
		resp, body := h.do("DELETE", "/v1/infrastructures/micado-worker-infra", "")
		mustStatus(t, resp, body, 202)
		golden(t, "v1_infra_delete", body)
		resp, body = h.do("DELETE", "/v1/infrastructures/infra-1?wait=1", "")
		mustStatus(t, resp, body, 200)
		golden(t, "v1_infra_delete_wait", body)
		resp, body = h.do("GET", "/v1/infrastructures/infra-1", "")
		mustStatus(t, resp, body, 404)
	})
}

func TestV1InfraErrors(t *testing.T) {
	h := newHarness(t, nil)
	h.createInfra()
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
		details                  []string
	}{
		{"empty descriptor", "POST", "/v1/infrastructures", "", 400, CodeBadRequest, nil},
		{"invalid descriptor", "POST", "/v1/infrastructures?filename=infra_invalid.yaml", readFixture(t, "infra_invalid.yaml"), 400, CodeInvalid, []string{
			"infra_invalid.yaml:6:28: nodes[0].scaling.max: 1 is below min (3)",
			`infra_invalid.yaml:7:11: nodes[1].name: "app_server" is not a valid name: use 1 to 63 letters, digits or '-' (no '_' or '.')`,
			`infra_invalid.yaml:9:5: nodes[1].colour: unknown key "colour" (allowed: name, type, scaling, filter, variables)`,
		}},
		{"malformed descriptor", "POST", "/v1/infrastructures?filename=m.yaml", readFixture(t, "infra_malformed.yaml"), 400, CodeInvalid, []string{
			"m.yaml:1: invalid YAML: did not find expected ',' or ']'",
		}},
		{"invalid put", "PUT", "/v1/infrastructures/infra-1?filename=infra_invalid.yaml", readFixture(t, "infra_invalid.yaml"), 400, CodeInvalid, nil},
		{"get unknown", "GET", "/v1/infrastructures/nope", "", 404, CodeNotFound, nil},
		{"delete unknown", "DELETE", "/v1/infrastructures/nope", "", 404, CodeNotFound, nil},
		{"delete bad wait", "DELETE", "/v1/infrastructures/infra-1?wait=soon", "", 400, CodeBadRequest, nil},
		{"attach unknown", "POST", "/v1/infrastructures/nope/attach", "", 404, CodeNotFound, nil},
		{"events unknown", "GET", "/v1/infrastructures/nope/events", "", 404, CodeNotFound, nil},
		{"events bad after", "GET", "/v1/infrastructures/infra-1/events?after=-1", "", 400, CodeBadRequest, nil},
		{"scale unknown infra", "POST", "/v1/infrastructures/nope/nodes/app/scale", `{"delta": 1}`, 404, CodeNotFound, nil},
		{"scale unknown node", "POST", "/v1/infrastructures/infra-1/nodes/web/scale", `{"delta": 1}`, 404, CodeNotFound, nil},
		{"scale two fields", "POST", "/v1/infrastructures/infra-1/nodes/app/scale", `{"delta": 1, "target": 2}`, 400, CodeBadRequest, nil},
		{"scale no field", "POST", "/v1/infrastructures/infra-1/nodes/app/scale", `{}`, 400, CodeBadRequest, nil},
		{"scale delta zero", "POST", "/v1/infrastructures/infra-1/nodes/app/scale", `{"delta": 0}`, 400, CodeBadRequest, nil},
		{"scale negative target", "POST", "/v1/infrastructures/infra-1/nodes/app/scale", `{"target": -1}`, 400, CodeBadRequest, nil},
		{"scale empty victim", "POST", "/v1/infrastructures/infra-1/nodes/app/scale", `{"victim": " "}`, 400, CodeBadRequest, nil},
		{"scale unknown field", "POST", "/v1/infrastructures/infra-1/nodes/app/scale", `{"count": 1}`, 400, CodeBadRequest, nil},
		{"scale not json", "POST", "/v1/infrastructures/infra-1/nodes/app/scale", `delta=1`, 400, CodeBadRequest, nil},
		{"unknown route", "GET", "/v1/nothing", "", 404, "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := h.do(c.method, c.path, c.body)
			mustStatus(t, resp, body, c.status)
			if c.code == "" {
				return
			}
			e := v1Error(t, body)
			if e.Code != c.code {
				t.Errorf("code = %q, want %q (%s)", e.Code, c.code, e.Message)
			}
			// Each wanted line starts the corresponding detail (the descriptor package may
			// add a hint after its message).
			if c.details != nil {
				ok := len(e.Details) == len(c.details)
				for i := 0; ok && i < len(c.details); i++ {
					ok = strings.HasPrefix(e.Details[i], c.details[i])
				}
				if !ok {
					t.Errorf("details:\n%s\nwant lines starting:\n%s", strings.Join(e.Details, "\n"), strings.Join(c.details, "\n"))
				}
			}
		})
	}
}

// TestV1ScalePastMax checks that a request beyond the limits is answered 200 with
// applied=false and the reason, and recorded as ignored.
func TestV1ScalePastMax(t *testing.T) {
	h := newHarness(t, nil)
	id := h.createInfra()
	steps := []struct {
		body    string
		applied bool
		from    int
		target  int
		reason  string
	}{
		{`{"delta": 1}`, true, 1, 2, ""},
		{`{"delta": 1}`, false, 2, 2, "maximum count reached (2)"},
		{`{"target": 5}`, false, 2, 2, "maximum count reached (2)"},
		{`{"delta": -5}`, true, 2, 1, "minimum count reached (1)"},
		{`{"victim": "127.77.0.3"}`, false, 1, 1, "minimum count reached (1)"},
	}
	for i, st := range steps {
		resp, body := h.do("POST", "/v1/infrastructures/"+id+"/nodes/app/scale", st.body)
		mustStatus(t, resp, body, 200)
		var res ScaleResult
		if err := json.Unmarshal(body, &res); err != nil {
			t.Fatal(err)
		}
		if res.Applied != st.applied || res.From != st.from || res.Target != st.target || res.Reason != st.reason {
			t.Errorf("step %d %s: got %+v, want applied=%v from=%d target=%d reason=%q", i, st.body, res, st.applied, st.from, st.target, st.reason)
		}
	}
	// The engine received the requests with the right kinds.
	h.eng.mu.Lock()
	kinds := []string{}
	for _, r := range h.eng.requests {
		kinds = append(kinds, string(r.Kind)+":"+itoa(r.Count)+":"+r.Victim)
	}
	h.eng.mu.Unlock()
	want := "scaleup:1: scaleup:1: scaleto:5: scaledown:5: scaledown:1:127.77.0.3"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("requests = %s, want %s", got, want)
	}
	// The ignored ones are in the event log with their reason.
	resp, body := h.do("GET", "/v1/infrastructures/"+id+"/events?after=1&limit=3", "")
	mustStatus(t, resp, body, 200)
	golden(t, "v1_events_page", body)
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestV1Misc(t *testing.T) {
	h := newHarness(t, nil)
	t.Run("healthz", func(t *testing.T) {
		resp, body := h.do("GET", "/healthz", "")
		mustStatus(t, resp, body, 200)
		golden(t, "v1_healthz", body)
	})
	t.Run("openapi", func(t *testing.T) {
		resp, body := h.do("GET", "/v1/openapi.yaml", "")
		mustStatus(t, resp, body, 200)
		if !strings.HasPrefix(string(body), "openapi: 3.0") || resp.Header.Get("Content-Type") != "application/yaml" {
			t.Errorf("openapi: %s %q", resp.Header.Get("Content-Type"), body[:min(40, len(body))])
		}
	})
	t.Run("metrics count requests by route", func(t *testing.T) {
		h.do("GET", "/infrastructures/nope", "")
		resp, body := h.do("GET", "/metrics", "")
		mustStatus(t, resp, body, 200)
		if !strings.Contains(string(body), `skyfleet_api_requests_total{code="200",route="GET /infrastructures/{id}"} 1`) {
			t.Errorf("metrics lack the request counter:\n%s", body)
		}
	})
	t.Run("body over the limit is 413", func(t *testing.T) {
		h2 := newHarness(t, func(o *Options) { o.MaxBodyBytes = 64 })
		big := strings.Repeat("#", 100)
		resp, body := h2.do("POST", "/v1/infrastructures", big)
		mustStatus(t, resp, body, 413)
		if e := v1Error(t, body); e.Code != CodeTooLarge {
			t.Errorf("code %q", e.Code)
		}
		resp, body = h2.do("POST", "/infrastructures/", big)
		mustStatus(t, resp, body, 413)
		if !strings.Contains(string(body), `"status_code": 413`) {
			t.Errorf("compat 413 body: %s", body)
		}
	})
	t.Run("panic becomes a 500 envelope", func(t *testing.T) {
		h.eng.panicOn = "submit"
		defer func() { h.eng.panicOn = "" }()
		resp, body := h.do("POST", "/v1/infrastructures", readFixture(t, "infra.yaml"))
		mustStatus(t, resp, body, 500)
		if e := v1Error(t, body); e.Code != CodeInternal || strings.Contains(e.Message, "exploded") {
			t.Errorf("envelope %+v: want internal without the panic text", e)
		}
		resp, body = h.do("POST", "/infrastructures/", readFixture(t, "infra.yaml"))
		mustStatus(t, resp, body, 500)
	})
	t.Run("metrics disabled", func(t *testing.T) {
		h3 := newHarness(t, func(o *Options) { o.Gatherer = nil; o.Registerer = nil })
		resp, body := h3.do("GET", "/metrics", "")
		mustStatus(t, resp, body, http.StatusServiceUnavailable)
	})
}

// addEvents appends n events to the infrastructure (persisted and published).
func (h *harness) addEvents(id string, n int, typ string) []store.Event {
	h.t.Helper()
	var out []store.Event
	for range n {
		e, err := h.eng.addEvent(context.Background(), store.Event{InfraID: id, At: now, Type: typ, Node: "app"})
		if err != nil {
			h.t.Fatalf("add event: %v", err)
		}
		out = append(out, e)
	}
	return out
}
