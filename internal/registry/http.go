package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/skyfleet/skyfleet/internal/store"
)

// Route patterns (Go 1.22 http.ServeMux syntax) of the handlers below. The API server mounts
// each handler under its pattern; the handlers read the {id} and {name} path values.
const (
	// EndpointsPattern serves EndpointsHandler.
	EndpointsPattern = "GET /v1/infrastructures/{id}/nodes/{name}/endpoints"
	// LBReportPattern serves LBReportHandler.
	LBReportPattern = "POST /v1/infrastructures/{id}/nodes/{name}/lbreport"
	// PrometheusSDPattern serves PrometheusSDHandler.
	PrometheusSDPattern = "GET /v1/sd/prometheus"
)

// maxReportBytes bounds an lbreport body.
const maxReportBytes = 1 << 20

// errorEnvelope is the /v1 error body: {"error":{"code":"…","message":"…"}}.
type errorEnvelope struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var env errorEnvelope
	env.Error.Code, env.Error.Message = code, msg
	writeJSON(w, status, env)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // The client has gone if this fails; nothing to do.
}

// writeStoreError maps an error of the registry to a /v1 error response.
func (r *Registry) writeStoreError(w http.ResponseWriter, req *http.Request, err error) {
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", err.Error())
		return
	}
	if req.Context().Err() != nil {
		return
	}
	r.log.Error("registry request failed", "path", req.URL.Path, "error", err)
	writeError(w, http.StatusInternalServerError, "internal", "reading the registry failed")
}

// EndpointsHandler serves EndpointsPattern: the node's ready instances as a JSON Snapshot,
// or with ?watch=1 (or true) a server-sent event stream. Each change is one message
//
//	id: <revision>
//	event: endpoints
//	data: <snapshot JSON>
//
// The first message of every stream is the full current snapshot, so a client that
// reconnects simply replaces its set; when the request carries Last-Event-ID equal to the
// current revision that first message is skipped (the client already has it). A comment line
// is sent every 15 s so that proxies keep the stream open. The stream ends after an empty
// snapshot when the infrastructure or node is deleted. Unknown infrastructure or node: 404
// with the /v1 error envelope.
func (r *Registry) EndpointsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		infraID, node := req.PathValue("id"), req.PathValue("name")
		watch, _ := strconv.ParseBool(req.URL.Query().Get("watch"))
		if !watch {
			snap, err := r.Endpoints(req.Context(), infraID, node)
			if err != nil {
				r.writeStoreError(w, req, err)
				return
			}
			writeJSON(w, http.StatusOK, snap)
			return
		}
		r.serveWatch(w, req, infraID, node)
	})
}

func (r *Registry) serveWatch(w http.ResponseWriter, req *http.Request, infraID, node string) {
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	ch, err := r.Watch(ctx, infraID, node)
	if err != nil {
		r.writeStoreError(w, req, err)
		return
	}
	rc := http.NewResponseController(w)
	// A stream lives for hours: lift the server's write timeout, if any, for this response.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	skip, _ := strconv.ParseUint(req.Header.Get("Last-Event-ID"), 10, 64)
	first := true
	heartbeat := time.NewTicker(r.heartbeat)
	defer heartbeat.Stop()
	if err := rc.Flush(); err != nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-heartbeat.C:
			if _, err := io.WriteString(w, ": heartbeat\n\n"); err != nil {
				return
			}
		case snap, ok := <-ch:
			if !ok {
				return
			}
			if first && skip != 0 && snap.Revision == skip {
				first = false
				continue
			}
			first = false
			data, err := json.Marshal(snap)
			if err != nil {
				return
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: endpoints\ndata: %s\n\n", snap.Revision, data); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// LBReportHandler serves LBReportPattern: a load balancer's LBReport (JSON body). It answers
// 204 No Content; 400 for a malformed body or a missing reporter; 404 for an unknown
// infrastructure or node.
func (r *Registry) LBReportHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var rep LBReport
		dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxReportBytes))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rep); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "lbreport body: "+err.Error())
			return
		}
		if rep.Reporter == "" {
			writeError(w, http.StatusBadRequest, "bad_request", "lbreport body: reporter is empty; set it to the load balancer's listen address or node id")
			return
		}
		for i, b := range rep.Backends {
			if b.NodeID == "" || b.Active < 0 {
				writeError(w, http.StatusBadRequest, "bad_request",
					fmt.Sprintf("lbreport body: backends[%d]: node_id must be set and active must be >= 0 (got node_id %q, active %d)", i, b.NodeID, b.Active))
				return
			}
		}
		if err := r.Report(req.Context(), req.PathValue("id"), req.PathValue("name"), rep); err != nil {
			r.writeStoreError(w, req, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// SDGroup is one target group of Prometheus' HTTP service discovery format.
type SDGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// PrometheusSDHandler serves PrometheusSDPattern in Prometheus' HTTP SD format: one target
// group per ready instance (so that each carries its node_id), optionally restricted with
// ?infra_id=ID and &node=NAME. The target is the instance's primary address with the node's
// metrics_port variable, or 9100 (node_exporter, as the seed) when unset. Labels: infra_id,
// node, node_id, group (<node>_cluster, the seed's Consul service name that its alert rules
// select on) and __meta_skyfleet_{infra_id,infra_name,node,node_id,address}. Unknown infra_id
// or node: 404 with the /v1 error envelope.
func (r *Registry) PrometheusSDHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		q := req.URL.Query()
		groups, err := r.prometheusTargets(req.Context(), q.Get("infra_id"), q.Get("node"))
		if err != nil {
			r.writeStoreError(w, req, err)
			return
		}
		writeJSON(w, http.StatusOK, groups)
	})
}

func (r *Registry) prometheusTargets(ctx context.Context, infraID, node string) ([]SDGroup, error) {
	var ids []string
	if infraID != "" {
		ids = []string{infraID}
	} else {
		if node != "" {
			return nil, &NotFoundError{Kind: "node", Name: node, InfraID: "(none given)"}
		}
		err := r.st.View(ctx, func(tx store.Tx) error {
			recs, err := tx.Infras()
			for _, rec := range recs {
				ids = append(ids, rec.ID)
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("list infrastructures: %w", err)
		}
	}
	groups := []SDGroup{}
	for _, id := range ids {
		g, err := r.infraTargets(ctx, id, node)
		if err != nil {
			if _, gone := errors.AsType[*NotFoundError](err); gone && infraID == "" {
				continue // Deleted between the listing and the read.
			}
			return nil, err
		}
		groups = append(groups, g...)
	}
	return groups, nil
}

func (r *Registry) infraTargets(ctx context.Context, infraID, only string) ([]SDGroup, error) {
	ic := r.cache(infraID)
	ic.mu.Lock()
	defer ic.mu.Unlock()
	s, err := r.read(ctx, infraID, ic)
	if err != nil {
		return nil, err
	}
	nodes := s.nodeNames(ic)
	if only != "" {
		if !s.hasNode(ic, only) {
			return nil, &NotFoundError{Kind: "node", Name: only, InfraID: infraID}
		}
		nodes = []string{only}
	}
	var groups []SDGroup
	for _, node := range nodes {
		port := DefaultMetricsPort
		if ni, ok := ic.nodes[node]; ok {
			port = ni.metricsPort
		}
		for _, ep := range ic.update(node, s.instances).endpoints {
			groups = append(groups, SDGroup{
				Targets: []string{net.JoinHostPort(ep.Address, strconv.Itoa(port))},
				Labels: map[string]string{
					"infra_id":                   infraID,
					"node":                       node,
					"node_id":                    ep.NodeID,
					"group":                      node + "_cluster",
					"__meta_skyfleet_infra_id":   infraID,
					"__meta_skyfleet_infra_name": ic.infraName,
					"__meta_skyfleet_node":       node,
					"__meta_skyfleet_node_id":    ep.NodeID,
					"__meta_skyfleet_address":    ep.Address,
				},
			})
		}
	}
	return groups, nil
}
