package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/skyfleet/skyfleet/docs"
	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/store"
)

func (s *Server) v1Routes() []route {
	v := func(method, path string, h func(http.ResponseWriter, *http.Request) error) route {
		return route{method: method, path: path, kind: routeV1, h: h}
	}
	return []route{
		{method: http.MethodGet, path: "/healthz", kind: routePublic, h: s.healthz},
		v(http.MethodGet, "/metrics", s.metricsHandler()),
		v(http.MethodGet, "/v1/openapi.yaml", s.openapi),
		v(http.MethodPost, "/v1/nodedefs", s.importNodeDefs),
		v(http.MethodGet, "/v1/nodedefs", s.listNodeDefs),
		v(http.MethodGet, "/v1/nodedefs/{name}", s.getNodeDef),
		v(http.MethodDelete, "/v1/nodedefs/{name}", s.deleteNodeDef),
		v(http.MethodPost, "/v1/infrastructures", s.createInfra),
		v(http.MethodGet, "/v1/infrastructures", s.listInfras),
		v(http.MethodGet, "/v1/infrastructures/{id}", s.getInfra),
		v(http.MethodPut, "/v1/infrastructures/{id}", s.putInfra),
		v(http.MethodDelete, "/v1/infrastructures/{id}", s.deleteInfra),
		v(http.MethodPost, "/v1/infrastructures/{id}/attach", s.attachInfra),
		v(http.MethodPost, "/v1/infrastructures/{id}/detach", s.detachInfra),
		v(http.MethodPost, "/v1/infrastructures/{id}/nodes/{node}/scale", s.scaleNode),
		v(http.MethodGet, "/v1/infrastructures/{id}/events", s.events),
	}
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, Health{Status: "ok"})
	return nil
}

func (s *Server) metricsHandler() func(http.ResponseWriter, *http.Request) error {
	if s.opts.Gatherer == nil {
		return func(http.ResponseWriter, *http.Request) error {
			return &httpError{status: http.StatusServiceUnavailable, code: CodeUnavailable, msg: "metrics are not enabled on this server"}
		}
	}
	h := promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{ErrorLog: slogErrorLog{s.logger}})
	return func(w http.ResponseWriter, r *http.Request) error {
		h.ServeHTTP(w, r)
		return nil
	}
}

func (s *Server) openapi(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(docs.OpenAPI)
	return nil
}

// readYAMLBody reads a descriptor or node definition body; an empty one is a bad request.
func readYAMLBody(r *http.Request, what string) ([]byte, error) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if len(data) == 0 {
		return nil, badRequest("empty request body: send the %s as YAML", what)
	}
	return data, nil
}

// importNodeDefs is POST /v1/nodedefs. !yaml_import and !text_import are refused: the server
// cannot read the client's files. `skyfleet import` resolves them before sending.
func (s *Server) importNodeDefs(w http.ResponseWriter, r *http.Request) error {
	data, err := readYAMLBody(r, "node definitions")
	if err != nil {
		return err
	}
	file := descriptorFileName(r, "nodedefs.yaml")
	defs, warnings, err := descriptor.ParseNodeDefs(file, data, descriptor.ImportOptions{AllowImports: false})
	if err != nil {
		return fmt.Errorf("invalid node definitions (imports are resolved by `skyfleet import`, not by the server): %w", err)
	}
	for _, wn := range warnings {
		s.logger.Warn("node definition warning", "warning", wn.String())
	}
	names, err := s.opts.Engine.ImportNodeDefs(r.Context(), defs, file)
	if err != nil {
		return fmt.Errorf("import node definitions: %w", err)
	}
	writeJSON(w, http.StatusOK, ImportResult{Imported: names})
	return nil
}

// summarise describes a stored node definition.
func summarise(rec *store.NodeDefRecord) NodeDefSummary {
	sum := NodeDefSummary{Name: rec.Name, Source: rec.Source, Imported: rec.Imported, ResourceTypes: []string{}}
	defs, _, err := descriptor.ParseNodeDefs(rec.Name+".yaml", []byte(rec.YAML), descriptor.ImportOptions{})
	if err != nil {
		return sum
	}
	if d, ok := defs[rec.Name]; ok {
		sum.Implementations = len(d.Impls)
		for _, impl := range d.Impls {
			sum.ResourceTypes = append(sum.ResourceTypes, impl.ResourceType())
		}
	}
	return sum
}

func (s *Server) listNodeDefs(w http.ResponseWriter, r *http.Request) error {
	var recs []*store.NodeDefRecord
	err := s.opts.Store.View(r.Context(), func(tx store.Tx) error {
		var err error
		recs, err = tx.NodeDefs()
		return err
	})
	if err != nil {
		return fmt.Errorf("list node definitions: %w", err)
	}
	out := NodeDefList{NodeDefs: make([]NodeDefSummary, 0, len(recs))}
	for _, rec := range recs {
		out.NodeDefs = append(out.NodeDefs, summarise(rec))
	}
	slices.SortFunc(out.NodeDefs, func(a, b NodeDefSummary) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getNodeDef(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	var rec *store.NodeDefRecord
	err := s.opts.Store.View(r.Context(), func(tx store.Tx) error {
		var err error
		rec, err = tx.NodeDef(name)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return &NotFoundError{Kind: "nodedef", Name: name}
	}
	if err != nil {
		return fmt.Errorf("read node definition %s: %w", name, err)
	}
	writeJSON(w, http.StatusOK, NodeDefDetail{NodeDefSummary: summarise(rec), YAML: rec.YAML})
	return nil
}

// deleteNodeDef is DELETE /v1/nodedefs/{name}. Infrastructures keep the definitions they were
// submitted with, so deleting one never changes a running infrastructure.
func (s *Server) deleteNodeDef(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	err := s.opts.Store.Update(r.Context(), func(tx store.Tx) error { return tx.DeleteNodeDef(name) })
	if errors.Is(err, store.ErrNotFound) {
		return &NotFoundError{Kind: "nodedef", Name: name}
	}
	if err != nil {
		return fmt.Errorf("delete node definition %s: %w", name, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request, id string, created bool) error {
	data, err := readYAMLBody(r, "infrastructure descriptor")
	if err != nil {
		return err
	}
	newID, warnings, err := s.opts.Engine.Submit(r.Context(), id, descriptorFileName(r, "infrastructure.yaml"), data)
	if err != nil {
		return fmt.Errorf("submit infrastructure: %w", err)
	}
	if warnings == nil {
		warnings = []Warning{}
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", "/v1/infrastructures/"+newID)
	}
	writeJSON(w, status, SubmitResult{ID: newID, Warnings: warnings, Created: created})
	return nil
}

func (s *Server) createInfra(w http.ResponseWriter, r *http.Request) error {
	return s.submit(w, r, "", true)
}

// putInfra is PUT /v1/infrastructures/{id}: re-submit a descriptor under the same id, as
// `occopus-build -i ID` does (or create the infrastructure under that id).
func (s *Server) putInfra(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	exists, err := s.infraExists(r, id)
	if err != nil {
		return err
	}
	return s.submit(w, r, id, !exists)
}

func (s *Server) infraExists(r *http.Request, id string) (bool, error) {
	err := s.opts.Store.View(r.Context(), func(tx store.Tx) error {
		_, err := tx.Infra(id)
		return err
	})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("read infrastructure %s: %w", id, err)
}

func (s *Server) requireInfraV1(r *http.Request, id string) error {
	ok, err := s.infraExists(r, id)
	if err != nil {
		return err
	}
	if !ok {
		return &NotFoundError{Kind: "infrastructure", Name: id}
	}
	return nil
}

func (s *Server) listInfras(w http.ResponseWriter, r *http.Request) error {
	type item struct {
		rec   *store.InfraRecord
		insts []*store.InstanceRecord
	}
	var items []item
	err := s.opts.Store.View(r.Context(), func(tx store.Tx) error {
		recs, err := tx.Infras()
		if err != nil {
			return err
		}
		sortInfras(recs)
		for _, rec := range recs {
			insts, err := tx.Instances(rec.ID)
			if err != nil {
				return err
			}
			items = append(items, item{rec, insts})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list infrastructures: %w", err)
	}
	out := InfraList{Infrastructures: make([]InfraSummary, 0, len(items))}
	for _, it := range items {
		sum := InfraSummary{
			ID: it.rec.ID, Phase: string(it.rec.Phase), Maintained: s.opts.Engine.Maintained(it.rec.ID),
			Generation: it.rec.Generation, Created: it.rec.Created, Updated: it.rec.Updated,
			Nodes: map[string]NodeCounts{},
		}
		snap := &snapshot{rec: it.rec, byNode: map[string][]*store.InstanceRecord{}}
		for _, in := range it.insts {
			snap.byNode[in.Node] = append(snap.byNode[in.Node], in)
		}
		if m, err := s.models.get(it.rec); err == nil {
			sum.Name = m.Name
			for _, n := range m.Nodes {
				insts := snap.byNode[n.Name]
				sum.Nodes[n.Name] = NodeCounts{Target: snap.target(n), Ready: countState(insts, store.StateReady), Total: countLive(insts)}
			}
		} else {
			s.logger.Warn("stored descriptor unreadable", "infra_id", it.rec.ID, "err", err)
		}
		out.Infrastructures = append(out.Infrastructures, sum)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getInfra(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	snap, err := s.snapshot(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return &NotFoundError{Kind: "infrastructure", Name: id}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.detail(snap))
	return nil
}

// detail builds the full report of one infrastructure.
func (s *Server) detail(snap *snapshot) InfraDetail {
	now := s.clock()
	d := InfraDetail{
		ID: snap.rec.ID, Name: snap.model.Name, UserID: snap.model.UserID, Phase: string(snap.rec.Phase),
		Maintained: s.opts.Engine.Maintained(snap.rec.ID), Generation: snap.rec.Generation,
		Created: snap.rec.Created, Updated: snap.rec.Updated, Notification: snap.rec.Notification,
		Nodes: make([]NodeDetail, 0, len(snap.model.Nodes)),
	}
	for _, n := range snap.model.Nodes {
		insts := snap.byNode[n.Name]
		nd := NodeDetail{
			Name: n.Name, Type: n.Type, Min: n.Min, Max: n.Max, Target: snap.target(n),
			Actual: countLive(insts), Ready: countState(insts, store.StateReady),
			Dependencies: append([]string{}, n.Deps...), Instances: make([]InstanceDetail, 0, len(insts)),
		}
		for _, in := range insts {
			nd.Instances = append(nd.Instances, instanceDetail(in, now))
		}
		slices.SortStableFunc(nd.Instances, func(a, b InstanceDetail) int {
			if c := a.Created.Compare(b.Created); c != 0 {
				return c
			}
			return strings.Compare(a.NodeID, b.NodeID)
		})
		d.Nodes = append(d.Nodes, nd)
	}
	return d
}

func instanceDetail(in *store.InstanceRecord, now time.Time) InstanceDetail {
	id := InstanceDetail{
		NodeID: in.NodeID, ProviderID: in.ProviderID, ResourceType: in.ResourceType, State: string(in.State),
		Addresses: append([]string{}, in.Addresses...), PrivateAddress: in.PrivateAddress,
		Created: in.Created, Ready: timePtr(in.Ready), Health: in.Health, HealthAt: timePtr(in.HealthAt),
		FailingSince: timePtr(in.FailingSince), Detail: in.Detail,
	}
	if !in.Created.IsZero() {
		id.AgeSeconds = max(0, now.Sub(in.Created).Seconds())
	}
	return id
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// deleteInfra is DELETE /v1/infrastructures/{id}: 202 at once, or with ?wait=1 200 once every
// instance is gone.
func (s *Server) deleteInfra(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := s.requireInfraV1(r, id); err != nil {
		return err
	}
	wait, err := boolParam(r, "wait")
	if err != nil {
		return err
	}
	if err := s.opts.Engine.Destroy(r.Context(), id); err != nil {
		return fmt.Errorf("destroy infrastructure %s: %w", id, err)
	}
	if !wait {
		writeJSON(w, http.StatusAccepted, DeleteResult{ID: id})
		return nil
	}
	if err := s.waitGone(r.Context(), id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, DeleteResult{ID: id, Gone: true})
	return nil
}

func (s *Server) attachInfra(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := s.opts.Engine.Attach(r.Context(), id); err != nil {
		return fmt.Errorf("attach infrastructure %s: %w", id, err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": id})
	return nil
}

func (s *Server) detachInfra(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := s.opts.Engine.Detach(r.Context(), id); err != nil {
		return fmt.Errorf("detach infrastructure %s: %w", id, err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": id})
	return nil
}

// scaleNode is POST /v1/infrastructures/{id}/nodes/{node}/scale. A request the node's limits
// do not allow is answered 200 with applied=false and the reason; the engine records it as
// an ignored request (event scaling_ignored).
func (s *Server) scaleNode(w http.ResponseWriter, r *http.Request) error {
	id, node := r.PathValue("id"), r.PathValue("node")
	var body ScaleRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("scale request: invalid JSON body: %v (want one of {\"delta\": N}, {\"target\": N}, {\"victim\": \"NODE_ID_OR_ADDRESS\"})", err)
	}
	req := store.ScalingRequest{InfraID: id, Node: node, Source: "api", At: s.clock()}
	set := 0
	if body.Delta != nil {
		set++
		switch d := *body.Delta; {
		case d > 0:
			req.Kind, req.Count = store.ScaleUp, d
		case d < 0:
			req.Kind, req.Count = store.ScaleDown, -d
		default:
			return badRequest("scale request: delta 0 changes nothing (want a positive or negative count)")
		}
	}
	if body.Target != nil {
		set++
		if *body.Target < 0 {
			return badRequest("scale request: target %d is negative (want 0 or more)", *body.Target)
		}
		req.Kind, req.Count = store.ScaleTo, *body.Target
	}
	if body.Victim != nil {
		set++
		if strings.TrimSpace(*body.Victim) == "" {
			return badRequest("scale request: victim is empty (want a node id or one of the instance's addresses)")
		}
		req.Kind, req.Count, req.Victim = store.ScaleDown, 1, strings.TrimSpace(*body.Victim)
	}
	if set != 1 {
		return badRequest("scale request: set exactly one of delta, target and victim (got %d)", set)
	}
	res, err := s.opts.Engine.Scale(r.Context(), req)
	if err != nil {
		return fmt.Errorf("scale %s/%s: %w", id, node, err)
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// events is GET /v1/infrastructures/{id}/events: a page of the event log, or with ?watch=1 a
// live server-sent event stream.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	q := r.URL.Query()
	after, err := uintParam(q.Get("after"), "after")
	if err != nil {
		return err
	}
	watch, err := boolParam(r, "watch")
	if err != nil {
		return err
	}
	if err := s.requireInfraV1(r, id); err != nil {
		return err
	}
	if watch {
		return s.stream(w, r, id, after)
	}
	limit := uint64(1000)
	if v := q.Get("limit"); v != "" {
		if limit, err = uintParam(v, "limit"); err != nil {
			return err
		}
		limit = min(max(limit, 1), 10000)
	}
	var evs []*store.Event
	err = s.opts.Store.View(r.Context(), func(tx store.Tx) error {
		var err error
		evs, err = tx.Events(id, after, int(limit))
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return &NotFoundError{Kind: "infrastructure", Name: id}
	}
	if err != nil {
		return fmt.Errorf("read events of %s: %w", id, err)
	}
	out := EventList{Events: make([]Event, 0, len(evs)), Next: after}
	for _, e := range evs {
		out.Events = append(out.Events, wireEvent(e))
		out.Next = e.Seq
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func wireEvent(e *store.Event) Event {
	return Event{Seq: e.Seq, At: e.At, Type: e.Type, InfraID: e.InfraID, Node: e.Node, NodeID: e.NodeID, Message: e.Message, Data: e.Data}
}

func uintParam(v, name string) (uint64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, badRequest("parameter %s: %q is not a non-negative integer", name, v)
	}
	return n, nil
}

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("parameter %s: %q is not a boolean (want 1, 0, true or false)", name, v)
	}
	return b, nil
}

// slogErrorLog lets promhttp report its errors through the injected logger.
type slogErrorLog struct {
	l interface{ Error(string, ...any) }
}

func (e slogErrorLog) Println(v ...any) { e.l.Error("serve metrics", "err", fmt.Sprint(v...)) }
