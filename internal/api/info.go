package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/store"
)

// This file serves GET /info/{key}, Occopus' generic InfoBroker query, for the keys a client
// can use over HTTP. Query parameters are the key's arguments, as in Occopus. Keys that
// expose credentials (backends.auth_data) or Python objects are not served.

// infoKeys lists the keys served, with their required parameters, for the 404 message and
// docs/api.md.
var infoKeys = map[string][]string{
	"infrastructure.name":                       {"infra_id"},
	"infrastructure.node_instances":             {"infra_id"},
	"infrastructure.state":                      {"infra_id"},
	"infrastructure.state_report":               {"infra_id"},
	"infrastructure.started":                    {"infra_id"},
	"infrastructure.finished_first_maintenance": {"infra_id"},
	"node.definition.all":                       {"node_type"},
	"node.find":                                 {"infra_id"},
	"node.state":                                {"infra_id", "node_id"},
	"node.address":                              {"infra_id", "node_id"},
}

// infoError is Occopus' answer to a bad argument (ArgumentError → 400).
func infoError(key, msg string) error {
	return &compatError{code: 400, reason: fmt.Sprintf("Invalid parameter value for key %q", key), real: http.StatusBadRequest, message: msg}
}

func (s *Server) compatInfo(w http.ResponseWriter, r *http.Request) error {
	key := r.PathValue("key")
	params, ok := infoKeys[key]
	if !ok {
		known := make([]string, 0, len(infoKeys))
		for k := range infoKeys {
			known = append(known, k)
		}
		slices.Sort(known)
		return &compatError{code: 404, reason: fmt.Sprintf("Key not found: %q", key), real: http.StatusNotFound,
			message: "keys served: " + strings.Join(known, ", ")}
	}
	q := r.URL.Query()
	for _, p := range params {
		if q.Get(p) == "" {
			return infoError(key, fmt.Sprintf("missing query parameter %s (key %s takes %s)", p, key, strings.Join(params, ", ")))
		}
	}
	if key == "node.definition.all" {
		return s.infoNodeDefinitions(w, r, key, q.Get("node_type"))
	}
	id := q.Get("infra_id")
	snap, err := s.snapshot(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return infoError(key, fmt.Sprintf("infrastructure '%s' does not exist", id))
	}
	if err != nil {
		return err
	}
	var result any
	switch key {
	case "infrastructure.name":
		result = snap.model.Name
	case "infrastructure.started":
		result = true
	case "infrastructure.finished_first_maintenance":
		result = snap.rec.Phase == store.InfraReady || s.reachedReady(r, id)
	case "infrastructure.node_instances":
		out := map[string]map[string]map[string]any{}
		for node, insts := range snap.byNode {
			out[node] = map[string]map[string]any{}
			for _, in := range insts {
				out[node][in.NodeID] = instanceData(snap, in)
			}
		}
		result = out
	case "infrastructure.state":
		out := map[string]map[string]string{}
		for node, insts := range snap.byNode {
			out[node] = map[string]string{}
			for _, in := range insts {
				out[node][in.NodeID] = compatState(in.State)
			}
		}
		result = out
	case "infrastructure.state_report":
		out := map[string]compatNode{}
		for _, n := range snap.model.Nodes {
			insts := snap.byNode[n.Name]
			if len(insts) == 0 {
				continue
			}
			cn := compatNode{Instances: map[string]compatInstance{}}
			for _, in := range insts {
				cn.Instances[in.NodeID] = compatInstance{ResourceAddress: resourceAddress(in), State: compatState(in.State)}
			}
			cn.Scaling = compatScaling{Actual: countLive(insts), Min: n.Min, Max: n.Max, Target: snap.target(n)}
			out[n.Name] = cn
		}
		result = out
	case "node.find":
		name, nodeID := q.Get("name"), q.Get("node_id")
		found := []map[string]any{}
		for _, in := range snap.instances {
			if (name == "" || in.Node == name) && (nodeID == "" || in.NodeID == nodeID) {
				found = append(found, instanceData(snap, in))
			}
		}
		result = found
	case "node.state", "node.address":
		nodeID := q.Get("node_id")
		i := slices.IndexFunc(snap.instances, func(in *store.InstanceRecord) bool { return in.NodeID == nodeID })
		if i < 0 {
			return infoError(key, fmt.Sprintf("node '%s' does not exist in infrastructure '%s'", nodeID, id))
		}
		in := snap.instances[i]
		if key == "node.state" {
			result = compatState(in.State)
		} else {
			addr := ""
			if len(in.Addresses) > 0 {
				addr = in.Addresses[0]
			}
			result = addr
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"result": result})
	return nil
}

// reachedReady tells whether the infrastructure was ever ready (an infraready event exists).
func (s *Server) reachedReady(r *http.Request, id string) bool {
	found := false
	_ = s.opts.Store.View(r.Context(), func(tx store.Tx) error {
		var after uint64
		for !found {
			evs, err := tx.Events(id, after, replayPage)
			if err != nil || len(evs) == 0 {
				return err
			}
			for _, e := range evs {
				if e.Type == "infraready" {
					found = true
				}
				after = e.Seq
			}
		}
		return nil
	})
	return found
}

// instanceData is Occopus' per-instance record (instance_data) without the parts that may
// hold secrets (the rendered resource section).
func instanceData(snap *snapshot, in *store.InstanceRecord) map[string]any {
	return map[string]any{
		"node_id":             in.NodeID,
		"infra_id":            in.InfraID,
		"infra_name":          snap.model.Name,
		"user_id":             snap.model.UserID,
		"node_name":           in.Node,
		"instance_id":         in.ProviderID,
		"resource_type":       in.ResourceType,
		"resource_address":    resourceAddress(in),
		"addresses":           append([]string{}, in.Addresses...),
		"state":               compatState(in.State),
		"instance_start_time": unixSeconds(in.Created),
	}
}

// infoNodeDefinitions answers node.definition.all: the stored implementations of a node type.
func (s *Server) infoNodeDefinitions(w http.ResponseWriter, r *http.Request, key, name string) error {
	var rec *store.NodeDefRecord
	err := s.opts.Store.View(r.Context(), func(tx store.Tx) error {
		var err error
		rec, err = tx.NodeDef(name)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return infoError(key, fmt.Sprintf("node definition '%s' does not exist", name))
	}
	if err != nil {
		return fmt.Errorf("read node definition %s: %w", name, err)
	}
	defs, _, err := descriptor.ParseNodeDefs(name+".yaml", []byte(rec.YAML), descriptor.ImportOptions{})
	if err != nil {
		return fmt.Errorf("parse stored node definition %s: %w", name, err)
	}
	impls := []map[string]any{}
	if d, ok := defs[name]; ok {
		for _, impl := range d.Impls {
			m := map[string]any{"resource": impl.Resource}
			if impl.Contextualisation != nil {
				m["contextualisation"] = impl.Contextualisation
			}
			if impl.HealthCheck != nil {
				m["health_check"] = impl.HealthCheck
			}
			if impl.ConfigManagement != nil {
				m["config_management"] = impl.ConfigManagement
			}
			impls = append(impls, m)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"result": impls})
	return nil
}
