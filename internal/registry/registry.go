package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/skyfleet/skyfleet/internal/events"
	"github.com/skyfleet/skyfleet/internal/store"
)

// Endpoint is one ready instance of a node.
type Endpoint struct {
	NodeID string `json:"node_id"`
	// Address is the instance's primary address: the first of Addresses (most public first),
	// or its private address when it reports no other.
	Address string `json:"address"`
	// Addresses lists every address the instance reports, most public first.
	Addresses []string `json:"addresses"`
	// State is always "ready" today; it is carried so that clients need no second lookup.
	State string `json:"state"`
}

// Snapshot is the set of ready instances of one node at one revision.
type Snapshot struct {
	InfraID string `json:"infra_id"`
	Node    string `json:"node"`
	// Revision increases whenever the set changes. It is derived from the infrastructure's
	// event sequence (the highest event sequence number seen when the change was observed),
	// so it also increases across server restarts.
	Revision  uint64     `json:"revision"`
	Endpoints []Endpoint `json:"endpoints"`
}

// NotFoundError reports an unknown infrastructure or node; it matches store.ErrNotFound
// with errors.Is.
type NotFoundError struct {
	// Kind is "infrastructure" or "node".
	Kind    string
	Name    string
	InfraID string
}

func (e *NotFoundError) Error() string {
	if e.Kind == "node" {
		return fmt.Sprintf("node %q of infrastructure %q: not found", e.Name, e.InfraID)
	}
	return fmt.Sprintf("infrastructure %q: not found", e.Name)
}

// Unwrap lets errors.Is(err, store.ErrNotFound) match.
func (e *NotFoundError) Unwrap() error { return store.ErrNotFound }

// Options configures New.
type Options struct {
	// Store is where instances are read from (required).
	Store store.Store
	// Hub wakes watchers when events happen; nil leaves watchers on the periodic resync only.
	Hub *events.Hub
	// Logger receives the few messages of the registry; nil discards them.
	Logger *slog.Logger
	// Clock is used to age load-balancer reports; nil means time.Now.
	Clock func() time.Time
	// Resync is how often a watcher re-reads the store even without events (default 5s).
	Resync time.Duration
	// Coalesce is how long a watcher waits after an event for more before it re-reads
	// (default 10ms), so that a burst of events yields one snapshot.
	Coalesce time.Duration
	// Heartbeat is the interval of comment lines on event streams (default 15s).
	Heartbeat time.Duration
	// ReportTTL is how long a load-balancer report counts (default 10s).
	ReportTTL time.Duration
}

// Registry computes ready-instance views from the store. It is safe for concurrent use.
type Registry struct {
	st        store.Store
	hub       *events.Hub
	log       *slog.Logger
	now       func() time.Time
	resync    time.Duration
	coalesce  time.Duration
	heartbeat time.Duration
	reportTTL time.Duration
	started   time.Time

	mu     sync.Mutex
	infras map[string]*infraCache
}

// infraCache is what the registry remembers about one infrastructure between store reads.
type infraCache struct {
	mu sync.Mutex // held across a store read so that revisions are assigned in order
	// lastSeq is the highest event sequence number read from the store.
	lastSeq uint64
	// descriptor and nodes cache the parsed node list of the stored descriptor.
	descriptor string
	infraName  string
	nodes      map[string]nodeInfo
	// nodeOf maps every instance id of the infrastructure to its node name.
	nodeOf map[string]string
	views  map[string]*view
	// reports holds the latest load-balancer report per node and reporter.
	reports map[string]map[string]storedReport
	// balanced records the nodes some load balancer has reported on.
	balanced map[string]bool
}

// view is the last computed ready set of one node.
type view struct {
	rev       uint64
	key       string
	endpoints []Endpoint
	// removedAt is the revision at which an instance left the ready set, for instances that
	// still exist; a load balancer that has not applied that revision may still send it work.
	removedAt map[string]uint64
}

// New returns a registry over opts.Store.
func New(opts Options) (*Registry, error) {
	if opts.Store == nil {
		return nil, errors.New("new registry: a store is required")
	}
	r := &Registry{
		st:        opts.Store,
		hub:       opts.Hub,
		log:       opts.Logger,
		now:       opts.Clock,
		resync:    opts.Resync,
		coalesce:  opts.Coalesce,
		heartbeat: opts.Heartbeat,
		reportTTL: opts.ReportTTL,
		infras:    map[string]*infraCache{},
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("component", "registry")
	if r.now == nil {
		r.now = time.Now
	}
	if r.resync <= 0 {
		r.resync = 5 * time.Second
	}
	if r.coalesce <= 0 {
		r.coalesce = 10 * time.Millisecond
	}
	if r.heartbeat <= 0 {
		r.heartbeat = 15 * time.Second
	}
	if r.reportTTL <= 0 {
		r.reportTTL = 10 * time.Second
	}
	r.started = r.now()
	return r, nil
}

func (r *Registry) cache(infraID string) *infraCache {
	r.mu.Lock()
	defer r.mu.Unlock()
	ic, ok := r.infras[infraID]
	if !ok {
		ic = &infraCache{
			nodeOf:   map[string]string{},
			views:    map[string]*view{},
			reports:  map[string]map[string]storedReport{},
			balanced: map[string]bool{},
		}
		r.infras[infraID] = ic
	}
	return ic
}

// forget drops the cache of an infrastructure that no longer exists.
func (r *Registry) forget(infraID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.infras, infraID)
}

// Endpoints returns the current ready instances of node in infrastructure infraID. An
// unknown infrastructure or node gives a *NotFoundError.
func (r *Registry) Endpoints(ctx context.Context, infraID, node string) (Snapshot, error) {
	return r.refresh(ctx, infraID, node)
}

// infraState is one consistent read of an infrastructure.
type infraState struct {
	rec       *store.InfraRecord
	instances []*store.InstanceRecord
}

// read loads the infrastructure and brings the cache's event sequence and node tables up to
// date. It must be called with ic.mu held.
func (r *Registry) read(ctx context.Context, infraID string, ic *infraCache) (infraState, error) {
	var s infraState
	err := r.st.View(ctx, func(tx store.Tx) error {
		rec, err := tx.Infra(infraID)
		if err != nil {
			return err
		}
		insts, err := tx.Instances(infraID)
		if err != nil {
			return err
		}
		evs, err := tx.Events(infraID, ic.lastSeq, 0)
		if err != nil {
			return err
		}
		if n := len(evs); n > 0 {
			ic.lastSeq = max(ic.lastSeq, evs[n-1].Seq)
		}
		s = infraState{rec: rec, instances: insts}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return s, &NotFoundError{Kind: "infrastructure", Name: infraID, InfraID: infraID}
	}
	if err != nil {
		return s, fmt.Errorf("read infrastructure %q: %w", infraID, err)
	}
	if s.rec.Descriptor != ic.descriptor || ic.nodes == nil {
		ic.descriptor = s.rec.Descriptor
		ic.infraName, ic.nodes = parseNodes(s.rec.Descriptor)
	}
	nodeOf := make(map[string]string, len(s.instances))
	for _, in := range s.instances {
		nodeOf[in.NodeID] = in.Node
	}
	ic.nodeOf = nodeOf
	return s, nil
}

// hasNode tells whether node is part of the infrastructure: named by its descriptor, by its
// stored targets, or by one of its instances.
func (s infraState) hasNode(ic *infraCache, node string) bool {
	if _, ok := ic.nodes[node]; ok {
		return true
	}
	if _, ok := s.rec.Targets[node]; ok {
		return true
	}
	for _, in := range s.instances {
		if in.Node == node {
			return true
		}
	}
	return false
}

// nodeNames lists every node of the infrastructure, sorted.
func (s infraState) nodeNames(ic *infraCache) []string {
	set := map[string]struct{}{}
	for n := range ic.nodes {
		set[n] = struct{}{}
	}
	for n := range s.rec.Targets {
		set[n] = struct{}{}
	}
	for _, in := range s.instances {
		set[in.Node] = struct{}{}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// readyEndpoints lists node's ready instances, sorted by node id.
func readyEndpoints(insts []*store.InstanceRecord, node string) []Endpoint {
	eps := []Endpoint{}
	for _, in := range insts {
		if in.Node != node || in.State != store.StateReady {
			continue
		}
		addrs := slices.Clone(in.Addresses)
		if addrs == nil {
			addrs = []string{}
		}
		primary := in.PrivateAddress
		if len(addrs) > 0 {
			primary = addrs[0]
		}
		if primary == "" {
			// An instance without any address cannot receive traffic; leave it out.
			continue
		}
		eps = append(eps, Endpoint{NodeID: in.NodeID, Address: primary, Addresses: addrs, State: string(in.State)})
	}
	slices.SortFunc(eps, func(a, b Endpoint) int {
		switch {
		case a.NodeID < b.NodeID:
			return -1
		case a.NodeID > b.NodeID:
			return 1
		}
		return 0
	})
	return eps
}

// refresh re-reads the store and returns node's snapshot, assigning a new revision when the
// ready set differs from the last one computed.
func (r *Registry) refresh(ctx context.Context, infraID, node string) (Snapshot, error) {
	ic := r.cache(infraID)
	ic.mu.Lock()
	defer ic.mu.Unlock()
	s, err := r.read(ctx, infraID, ic)
	if err != nil {
		if _, ok := errors.AsType[*NotFoundError](err); ok {
			r.forget(infraID)
		}
		return Snapshot{}, err
	}
	if !s.hasNode(ic, node) {
		return Snapshot{}, &NotFoundError{Kind: "node", Name: node, InfraID: infraID}
	}
	v := ic.update(node, s.instances)
	return Snapshot{InfraID: infraID, Node: node, Revision: v.rev, Endpoints: slices.Clone(v.endpoints)}, nil
}

// update recomputes node's view from insts. It must be called with ic.mu held.
func (ic *infraCache) update(node string, insts []*store.InstanceRecord) *view {
	eps := readyEndpoints(insts, node)
	keyBytes, _ := json.Marshal(eps) // Endpoint always marshals.
	key := string(keyBytes)
	v, ok := ic.views[node]
	if !ok {
		v = &view{rev: max(ic.lastSeq, 1), key: key, endpoints: eps, removedAt: map[string]uint64{}}
		ic.views[node] = v
		return v
	}
	if v.key == key {
		return v
	}
	rev := max(ic.lastSeq, v.rev+1)
	now := map[string]bool{}
	for _, e := range eps {
		now[e.NodeID] = true
		delete(v.removedAt, e.NodeID)
	}
	for _, e := range v.endpoints {
		if !now[e.NodeID] {
			v.removedAt[e.NodeID] = rev
		}
	}
	for id := range v.removedAt {
		if _, exists := ic.nodeOf[id]; !exists {
			delete(v.removedAt, id)
		}
	}
	v.rev, v.key, v.endpoints = rev, key, eps
	return v
}
