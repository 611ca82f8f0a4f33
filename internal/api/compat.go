package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/skyfleet/skyfleet/internal/store"
)

// This file serves the Occopus-compatible routes (occopus-rest-service's rest.py): same
// paths, methods, bodies and error shapes, so curl commands and clients written for Occopus
// keep working. docs/api.md lists the quirks kept and the ones fixed.

// compatBody is Occopus' error body. Occopus sends it with HTTP 200 (its error handler sets
// no status); Options.CompatHTTPStatus sends the real status instead.
type compatBody struct {
	StatusCode int    `json:"status_code"`
	Reason     string `json:"reason"`
	Message    string `json:"message"`
}

// compatError is a handled error of a compat route: Occopus' status_code and reason text,
// and the real HTTP status used with CompatHTTPStatus.
type compatError struct {
	code    int
	reason  string
	real    int
	message string
}

func (e *compatError) Error() string { return e.reason }

// Occopus' exact reason texts (occo/api/rest.py, manager.py).
func errNoInfra(id string) error {
	return &compatError{code: 300, reason: fmt.Sprintf("ERROR: infrastructure '%s' does not exist!", id), real: http.StatusNotFound}
}

func errNoNode(id, node string) error {
	// The unbalanced quote after the node name is Occopus' own text, kept for clients that
	// match on it.
	return &compatError{code: 300, reason: fmt.Sprintf("ERROR: node '%s does not exist in infrastructure '%s'!", node, id), real: http.StatusNotFound}
}

// compatEngineError translates an engine error into Occopus' handled errors; anything else is
// returned unchanged (and answered as a real 500).
func compatEngineError(id string, err error) error {
	var nf *NotFoundError
	switch {
	case errors.As(err, &nf) && nf.Kind == "node":
		return errNoNode(id, nf.Name)
	case errors.As(err, &nf):
		return errNoInfra(id)
	case errors.Is(err, ErrAlreadyAttached):
		return &compatError{code: 300, reason: fmt.Sprintf("ERROR: Infrastructure %s already being maintained!", id), real: http.StatusConflict}
	case errors.Is(err, ErrNotAttached):
		return &compatError{code: 300, reason: fmt.Sprintf("ERROR: Infrastructure %s is not maintained!", id), real: http.StatusConflict}
	case errors.Is(err, ErrDestroying):
		return &compatError{code: 300, reason: fmt.Sprintf("ERROR: Infrastructure %s is being destroyed!", id), real: http.StatusConflict}
	}
	return err
}

// writeCompatError answers a compat route's error. Handled errors keep Occopus' HTTP 200
// unless CompatHTTPStatus is set; unhandled ones (too large, internal) use their real status,
// as Flask does for errors Occopus does not catch.
func (s *Server) writeCompatError(w http.ResponseWriter, r *http.Request, err error) {
	var ce *compatError
	if errors.As(err, &ce) {
		status := http.StatusOK
		if s.opts.CompatHTTPStatus {
			status = ce.real
		}
		writeJSON(w, status, compatBody{StatusCode: ce.code, Reason: ce.reason, Message: ce.message})
		return
	}
	status, _, _ := classify(err)
	if status >= 500 {
		s.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, compatBody{StatusCode: status, Reason: http.StatusText(status), Message: err.Error()})
}

func (s *Server) compatRoutes() []route {
	c := func(method, path string, h func(http.ResponseWriter, *http.Request) error) route {
		return route{method: method, path: path, kind: routeCompat, h: h}
	}
	return []route{
		c("", "/infrastructures", s.compatRedirect),
		c(http.MethodPost, "/infrastructures/{$}", s.compatCreate),
		c(http.MethodGet, "/infrastructures/{$}", s.compatList),
		c(http.MethodGet, "/infrastructures/{id}", s.compatReport),
		c(http.MethodDelete, "/infrastructures/{id}", s.compatDelete),
		c(http.MethodPost, "/infrastructures/{id}/attach", s.compatAttach),
		c(http.MethodPost, "/infrastructures/{id}/detach", s.compatDetach),
		c(http.MethodPost, "/infrastructures/{id}/notify", s.compatNotify),
		c(http.MethodGet, "/infrastructures/{id}/cost", s.compatCost),
		c(http.MethodPost, "/infrastructures/{id}/scaleup/{node}", s.compatScaleUp),
		c(http.MethodPost, "/infrastructures/{id}/scaleup/{node}/{count}", s.compatScaleUp),
		c(http.MethodPost, "/infrastructures/{id}/scaledown/{node}", s.compatScaleDown),
		c(http.MethodPost, "/infrastructures/{id}/scaledown/{node}/{nodeid}", s.compatScaleDown),
		c(http.MethodPost, "/infrastructures/{id}/scaleto/{node}/{count}", s.compatScaleTo),
		c(http.MethodGet, "/info/{key}", s.compatInfo),
	}
}

// compatRedirect sends /infrastructures to /infrastructures/ as Werkzeug does for a rule with
// a trailing slash. 308 keeps the method and body, so a POST follows correctly.
func (s *Server) compatRedirect(w http.ResponseWriter, r *http.Request) error {
	u := *r.URL
	u.Path = "/infrastructures/"
	http.Redirect(w, r, u.String(), http.StatusPermanentRedirect)
	return nil
}

// compatCreate is POST /infrastructures/: the raw descriptor YAML in, {"infraid"} out.
func (s *Server) compatCreate(w http.ResponseWriter, r *http.Request) error {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return fmt.Errorf("read request body: %w", err)
	}
	if len(data) == 0 {
		return &compatError{code: 400, reason: "Empty POST data", real: http.StatusBadRequest}
	}
	id, warnings, err := s.opts.Engine.Submit(r.Context(), "", descriptorFileName(r, "infrastructure.yaml"), data)
	if err != nil {
		if lines := problemLines(err); lines != nil {
			return &compatError{code: 400, reason: strings.Join(lines, "\n"), real: http.StatusBadRequest}
		}
		return fmt.Errorf("submit infrastructure: %w", err)
	}
	for _, wn := range warnings {
		s.logger.Warn("descriptor warning", "infra_id", id, "position", wn.Position, "warning", wn.Message)
	}
	writeJSON(w, http.StatusOK, map[string]string{"infraid": id})
	return nil
}

// descriptorFileName names the request body in error messages: the ?filename= parameter
// when given (the CLI sends the file's name), else def.
func descriptorFileName(r *http.Request, def string) string {
	if f := strings.TrimSpace(r.URL.Query().Get("filename")); f != "" {
		return f
	}
	return def
}

// compatList is GET /infrastructures/: the ids, under both the documented key and the
// misspelt key Occopus' code really sends.
func (s *Server) compatList(w http.ResponseWriter, r *http.Request) error {
	var ids []string
	err := s.opts.Store.View(r.Context(), func(tx store.Tx) error {
		recs, err := tx.Infras()
		if err != nil {
			return err
		}
		sortInfras(recs)
		for _, rec := range recs {
			ids = append(ids, rec.ID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list infrastructures: %w", err)
	}
	if ids == nil {
		ids = []string{}
	}
	writeJSON(w, http.StatusOK, struct {
		Infrastructures []string `json:"infrastructures"`
		Infrastuctures  []string `json:"infrastuctures"`
	}{ids, ids})
	return nil
}

// sortInfras orders infrastructures by creation (Occopus' infralist keeps submission order).
func sortInfras(recs []*store.InfraRecord) {
	slices.SortStableFunc(recs, func(a, b *store.InfraRecord) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// compatInstance is one instance in Occopus' report.
type compatInstance struct {
	ResourceAddress any    `json:"resource_address"`
	State           string `json:"state"`
}

// compatScaling is a node's scaling block in Occopus' report.
type compatScaling struct {
	Actual int `json:"actual"`
	Max    int `json:"max"`
	Min    int `json:"min"`
	Target int `json:"target"`
}

// compatNode is one node in Occopus' report.
type compatNode struct {
	Instances map[string]compatInstance `json:"instances"`
	Scaling   compatScaling             `json:"scaling"`
}

// compatState maps skyfleet's instance states to the five Occopus clients know.
func compatState(st store.InstanceState) string {
	switch st {
	case store.StateCreating:
		return string(store.StatePending)
	case store.StateDraining, store.StateDestroying:
		return string(store.StateShutdown)
	}
	return string(st)
}

// resourceAddress is the instance's address in Occopus' report form: what the engine stored
// (a string, or a list for ec2-like providers), else the first address, else "".
func resourceAddress(in *store.InstanceRecord) any {
	if in.ResourceAddress != nil {
		return in.ResourceAddress
	}
	if len(in.Addresses) > 0 {
		return in.Addresses[0]
	}
	return ""
}

// compatReport is GET /infrastructures/{id}: per node with instances, its instances and
// scaling numbers. Nodes without instances are left out, as Occopus does.
func (s *Server) compatReport(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	snap, err := s.snapshot(r.Context(), id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errNoInfra(id)
		}
		return err
	}
	out := map[string]compatNode{}
	for _, n := range snap.model.Nodes {
		insts := snap.byNode[n.Name]
		if len(insts) == 0 {
			continue
		}
		cn := compatNode{Instances: make(map[string]compatInstance, len(insts))}
		for _, in := range insts {
			cn.Instances[in.NodeID] = compatInstance{ResourceAddress: resourceAddress(in), State: compatState(in.State)}
		}
		cn.Scaling = compatScaling{Actual: countLive(insts), Min: n.Min, Max: n.Max, Target: snap.target(n)}
		out[n.Name] = cn
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// requireInfra answers Occopus' "does not exist" unless the infrastructure is stored.
func (s *Server) requireInfra(ctx context.Context, id string) error {
	err := s.opts.Store.View(ctx, func(tx store.Tx) error {
		_, err := tx.Infra(id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return errNoInfra(id)
	}
	if err != nil {
		return fmt.Errorf("read infrastructure %s: %w", id, err)
	}
	return nil
}

// compatDelete is DELETE /infrastructures/{id}: synchronous as in Occopus, it answers once
// every instance is gone (or after Options.DeleteTimeout, with an error body; destruction
// goes on).
func (s *Server) compatDelete(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := s.requireInfra(r.Context(), id); err != nil {
		return err
	}
	if err := s.opts.Engine.Destroy(r.Context(), id); err != nil {
		return compatEngineError(id, fmt.Errorf("destroy infrastructure %s: %w", id, err))
	}
	if err := s.waitGone(r.Context(), id); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return &compatError{code: 500, reason: fmt.Sprintf("ERROR: infrastructure %s was not destroyed within %s; destruction goes on", id, s.opts.DeleteTimeout), real: http.StatusGatewayTimeout}
		}
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"infraid": id})
	return nil
}

// waitGone waits for the engine to remove the infrastructure, at most DeleteTimeout, and
// gives up early when the client leaves or the server shuts down.
func (s *Server) waitGone(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.DeleteTimeout)
	defer cancel()
	stop := context.AfterFunc(s.life, cancel)
	defer stop()
	if err := s.opts.Engine.WaitGone(ctx, id); err != nil {
		if s.life.Err() != nil {
			return errShuttingDown
		}
		return fmt.Errorf("wait for infrastructure %s to be destroyed: %w", id, err)
	}
	return nil
}

func (s *Server) compatAttach(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := s.opts.Engine.Attach(r.Context(), id); err != nil {
		return compatEngineError(id, fmt.Errorf("attach infrastructure %s: %w", id, err))
	}
	writeJSON(w, http.StatusOK, map[string]string{"infraid": id})
	return nil
}

func (s *Server) compatDetach(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := s.opts.Engine.Detach(r.Context(), id); err != nil {
		return compatEngineError(id, fmt.Errorf("detach infrastructure %s: %w", id, err))
	}
	writeJSON(w, http.StatusOK, map[string]string{"infraid": id})
	return nil
}

// compatNotify is POST /infrastructures/{id}/notify: the body is stored as it is.
func (s *Server) compatNotify(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return fmt.Errorf("read request body: %w", err)
	}
	err = s.opts.Store.Update(r.Context(), func(tx store.Tx) error {
		rec, err := tx.Infra(id)
		if err != nil {
			return err
		}
		rec.Notification = string(body)
		return tx.PutInfra(rec)
	})
	if errors.Is(err, store.ErrNotFound) {
		return errNoInfra(id)
	}
	if err != nil {
		return fmt.Errorf("store notification of infrastructure %s: %w", id, err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"infraid": id})
	return nil
}

// compatCost is GET /infrastructures/{id}/cost. No provider skyfleet drives reports costs, so
// every instance costs 0, in the shape Occopus' code really returns (node maps at the top
// level, no "nodecosts" key).
func (s *Server) compatCost(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	snap, err := s.snapshot(r.Context(), id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errNoInfra(id)
		}
		return err
	}
	out := map[string]any{"totalcost": 0}
	for node, insts := range snap.byNode {
		costs := make(map[string]int, len(insts))
		for _, in := range insts {
			costs[in.NodeID] = 0
		}
		out[node] = costs
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// pathCount parses Flask's <int:count>: digits only. Anything else is no route at all (404),
// as in Flask.
func pathCount(r *http.Request) (int, bool) {
	v := r.PathValue("count")
	if v == "" {
		return 1, true
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, false
	}
	return n, true
}

// scale records one request through the engine, answering Occopus' errors.
func (s *Server) compatScale(r *http.Request, kind store.ScalingKind, count int, victim string) error {
	id, node := r.PathValue("id"), r.PathValue("node")
	_, err := s.opts.Engine.Scale(r.Context(), store.ScalingRequest{
		InfraID: id, Node: node, Kind: kind, Count: count, Victim: victim, Source: "api", At: s.clock(),
	})
	if err != nil {
		return compatEngineError(id, fmt.Errorf("%s %s/%s: %w", kind, id, node, err))
	}
	return nil
}

func (s *Server) compatScaleUp(w http.ResponseWriter, r *http.Request) error {
	count, ok := pathCount(r)
	if !ok {
		// A real 404 whatever the mode: Flask finds no route either.
		writeJSON(w, http.StatusNotFound, compatBody{StatusCode: 404, Reason: "Not Found", Message: "count must be a non-negative integer"})
		return nil
	}
	if err := s.compatScale(r, store.ScaleUp, count, ""); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"count": count, "infraid": r.PathValue("id"), "method": "scaleup", "nodename": r.PathValue("node"),
	})
	return nil
}

func (s *Server) compatScaleDown(w http.ResponseWriter, r *http.Request) error {
	victim := r.PathValue("nodeid")
	if err := s.compatScale(r, store.ScaleDown, 1, victim); err != nil {
		return err
	}
	var nodeID any // null when no node id was given, as in Occopus
	if victim != "" {
		nodeID = victim
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"infraid": r.PathValue("id"), "method": "scaledown", "nodeid": nodeID, "nodename": r.PathValue("node"),
	})
	return nil
}

func (s *Server) compatScaleTo(w http.ResponseWriter, r *http.Request) error {
	count, ok := pathCount(r)
	if !ok {
		writeJSON(w, http.StatusNotFound, compatBody{StatusCode: 404, Reason: "Not Found", Message: "count must be a non-negative integer"})
		return nil
	}
	if err := s.compatScale(r, store.ScaleTo, count, ""); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"count": count, "infraid": r.PathValue("id"), "method": "scaleto", "nodename": r.PathValue("node"),
	})
	return nil
}

// unixSeconds renders a time as Occopus' time.time() float, 0 for the zero time.
func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}
