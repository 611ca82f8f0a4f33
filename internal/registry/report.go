package registry

import (
	"context"
	"time"
)

// LBReport is what a load balancer posts every second to
// /v1/infrastructures/{id}/nodes/{name}/lbreport: its open connections per backend.
type LBReport struct {
	// Reporter names the load balancer (its listen address or node id); a newer report from
	// the same reporter replaces the older one.
	Reporter string `json:"reporter"`
	// Revision is the endpoints revision the load balancer has applied. A load balancer that
	// has not yet applied the revision that removed an instance may still send it new
	// requests, so until it has, the instance counts as busy.
	Revision uint64 `json:"revision"`
	// Backends lists every backend the load balancer still holds, draining ones included.
	// A backend it has let go of entirely is simply absent (no connections).
	Backends []LBBackend `json:"backends"`
}

// LBBackend is one backend of an LBReport.
type LBBackend struct {
	NodeID  string `json:"node_id"`
	Address string `json:"address"`
	// Active is the number of requests or connections currently open to the backend.
	Active int `json:"active"`
}

type storedReport struct {
	LBReport
	at time.Time
}

// Report records a load balancer's report for node of infraID, replacing the reporter's
// previous one. Unknown infrastructures or nodes give a *NotFoundError.
func (r *Registry) Report(ctx context.Context, infraID, node string, rep LBReport) error {
	ic := r.cache(infraID)
	ic.mu.Lock()
	defer ic.mu.Unlock()
	s, err := r.read(ctx, infraID, ic)
	if err != nil {
		return err
	}
	if !s.hasNode(ic, node) {
		return &NotFoundError{Kind: "node", Name: node, InfraID: infraID}
	}
	// Keep the node's view current so that removals get their revision even when nobody
	// watches the node through this server.
	ic.update(node, s.instances)
	byReporter := ic.reports[node]
	if byReporter == nil {
		byReporter = map[string]storedReport{}
		ic.reports[node] = byReporter
	}
	now := r.now()
	for k, old := range byReporter {
		if now.Sub(old.at) > r.reportTTL {
			delete(byReporter, k)
		}
	}
	byReporter[rep.Reporter] = storedReport{LBReport: rep, at: now}
	ic.balanced[node] = true
	return nil
}

// DrainDone tells the engine whether the draining instance nodeID of infraID may be
// destroyed before its drain deadline (it fits engine.Options.DrainDone):
//
//   - true when the load balancers report no connection to it (ActiveConnections gives
//     0, known);
//   - true when no load balancer has reported on its node since this registry started, at
//     least ReportTTL ago: nothing balances the node, so there is nothing to wait for;
//   - false otherwise: connections are open, or the node's load balancers went silent (they
//     may still send it requests), or the registry started too recently to know. The engine
//     then waits, at most until the drain deadline.
func (r *Registry) DrainDone(infraID, nodeID string) bool {
	n, known := r.ActiveConnections(infraID, nodeID)
	if known {
		return n == 0
	}
	if r.now().Sub(r.started) < r.reportTTL {
		return false
	}
	r.mu.Lock()
	ic, ok := r.infras[infraID]
	r.mu.Unlock()
	if !ok {
		return true
	}
	ic.mu.Lock()
	defer ic.mu.Unlock()
	node, ok := ic.nodeOf[nodeID]
	return !ok || !ic.balanced[node]
}

// ActiveConnections returns how many connections the load balancers currently hold to the
// instance nodeID of infraID, summed over every load balancer whose last report is at most
// ReportTTL old (10 s by default). known is false when no load balancer reports on the
// instance's node (nothing balances it, or every balancer went silent): the caller then has
// nothing to wait for. A load balancer that has not yet applied the removal of the instance
// counts at least one connection, because it may still send it new requests.
func (r *Registry) ActiveConnections(infraID, nodeID string) (n int, known bool) {
	r.mu.Lock()
	ic, ok := r.infras[infraID]
	r.mu.Unlock()
	if !ok {
		return 0, false
	}
	ic.mu.Lock()
	defer ic.mu.Unlock()
	node, ok := ic.nodeOf[nodeID]
	if !ok {
		return 0, false
	}
	var removedAt uint64
	if v := ic.views[node]; v != nil {
		removedAt = v.removedAt[nodeID]
		for _, e := range v.endpoints {
			if e.NodeID == nodeID {
				// Still published as ready: every balancer may pick it.
				removedAt = v.rev + 1
			}
		}
	}
	now := r.now()
	for _, rep := range ic.reports[node] {
		if now.Sub(rep.at) > r.reportTTL {
			continue
		}
		known = true
		c := 0
		for _, b := range rep.Backends {
			if b.NodeID == nodeID {
				c += b.Active
			}
		}
		if removedAt != 0 && rep.Revision < removedAt {
			c = max(c, 1)
		}
		n += c
	}
	return n, known
}
