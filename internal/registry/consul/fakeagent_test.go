package consul

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/consul/api"
)

// fakeAgent implements the Consul agent endpoints the sync uses, with the JSON shapes of
// Consul's HTTP API:
//
//	PUT /v1/agent/service/register[?replace-existing-checks=true]
//	PUT /v1/agent/service/deregister/{id}   (404 "Unknown service ID" for an unknown id)
//	GET /v1/agent/services                  (map of id to service)
//
// Every request must carry the expected token in X-Consul-Token (403 otherwise, as Consul
// answers with ACLs on). While down, every request gets 503.
type fakeAgent struct {
	t     *testing.T
	srv   *httptest.Server
	token string

	mu       sync.Mutex
	services map[string]*api.AgentServiceRegistration
	down     bool
	requests []string // "METHOD path?query"
	changed  chan struct{}
}

func newFakeAgent(t *testing.T, token string) *fakeAgent {
	a := &fakeAgent{t: t, token: token, services: map[string]*api.AgentServiceRegistration{}, changed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/agent/service/register", a.register)
	mux.HandleFunc("PUT /v1/agent/service/deregister/{id}", a.deregister)
	mux.HandleFunc("GET /v1/agent/services", a.list)
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.requests = append(a.requests, r.Method+" "+r.URL.RequestURI())
		down := a.down
		a.mu.Unlock()
		switch {
		case down:
			http.Error(w, "No cluster leader", http.StatusServiceUnavailable)
		case r.Header.Get("X-Consul-Token") != a.token:
			http.Error(w, "ACL not found", http.StatusForbidden)
		default:
			mux.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *fakeAgent) addr() string { return strings.TrimPrefix(a.srv.URL, "http://") }

// bump wakes everyone waiting for a change; it must be called with a.mu held.
func (a *fakeAgent) bump() {
	close(a.changed)
	a.changed = make(chan struct{})
}

func (a *fakeAgent) register(w http.ResponseWriter, r *http.Request) {
	var reg api.AgentServiceRegistration
	if err := json.NewDecoder(r.Body).Decode(&reg); err != nil {
		http.Error(w, "Request decode failed: "+err.Error(), http.StatusBadRequest)
		return
	}
	if reg.Name == "" {
		http.Error(w, "Missing service name", http.StatusBadRequest)
		return
	}
	if reg.ID == "" {
		reg.ID = reg.Name
	}
	if reg.Check != nil && reg.Check.TCP != "" && reg.Check.Interval == "" {
		http.Error(w, "Invalid check: TCP checks need an interval", http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.services[reg.ID] = &reg
	a.bump()
}

func (a *fakeAgent) deregister(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.services[id]; !ok {
		http.Error(w, "Unknown service ID \""+id+"\". Ensure that the service ID is passed, not the service name.", http.StatusNotFound)
		return
	}
	delete(a.services, id)
	a.bump()
}

func (a *fakeAgent) list(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	out := map[string]*api.AgentService{}
	for id, reg := range a.services {
		out[id] = &api.AgentService{ID: id, Service: reg.Name, Tags: reg.Tags, Meta: reg.Meta, Port: reg.Port,
			Address: reg.Address, Datacenter: "dc1"}
	}
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// put stores a service as if someone had registered it before the test.
func (a *fakeAgent) put(reg *api.AgentServiceRegistration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.services[reg.ID] = reg
}

func (a *fakeAgent) setDown(down bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.down = down
	a.bump()
}

// snapshot returns a copy of the registered services and the channel closed at the next
// change.
func (a *fakeAgent) snapshot() (map[string]*api.AgentServiceRegistration, <-chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.services), a.changed
}

func (a *fakeAgent) requestLog() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.requests)
}
