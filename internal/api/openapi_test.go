package api

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/skyfleet/skyfleet/docs"
)

// TestOpenAPIMatchesRoutes checks that every registered route is documented in
// docs/openapi.yaml and every documented operation is registered.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                          `yaml:"openapi"`
		Paths   map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(docs.OpenAPI, &doc); err != nil {
		t.Fatalf("parse docs/openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0") {
		t.Errorf("openapi version %q, want 3.0.x", doc.OpenAPI)
	}
	methods := []string{"get", "put", "post", "delete", "patch", "options", "head"}
	var documented []string
	for path, item := range doc.Paths {
		if _, mounted := item["x-skyfleet-mounted"]; mounted {
			// Served through Options.Mounts by the daemon (alert intake, discovery, …);
			// TestOpenAPIDocumentsMounts checks those.
			continue
		}
		for m := range item {
			if slices.Contains(methods, m) {
				documented = append(documented, strings.ToUpper(m)+" "+path)
			}
		}
	}
	srv := New(Options{Engine: newFakeEngine(nil, nil, nil)})
	defer srv.Close()
	var registered []string
	for _, r := range srv.Routes() {
		method, path, _ := strings.Cut(r, " ")
		path = strings.TrimSuffix(path, "{$}")
		if method == "" {
			// A pattern for any method: the document lists the methods it answers.
			for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
				registered = append(registered, m+" "+path)
			}
			continue
		}
		registered = append(registered, method+" "+path)
	}
	slices.Sort(documented)
	slices.Sort(registered)
	for _, r := range registered {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in docs/openapi.yaml", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(registered, d) {
			t.Errorf("docs/openapi.yaml documents %s, which is not a route", d)
		}
	}
}
