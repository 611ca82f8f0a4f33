package engine

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"

	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/store"
)

// binding is one provider endpoint in use, found through a resource section.
type binding struct {
	resourceType string
	resource     map[string]any
	lister       cloud.Lister
	provider     cloud.Provider
}

// bindingsInUse binds every distinct resource section the stored infrastructures use (the
// recorded ones of their instances and the untemplated ones of their node definitions) and
// keeps those whose provider can list.
func (e *Engine) bindingsInUse(infras []*store.InfraRecord, instances map[string][]*store.InstanceRecord) []binding {
	seen := map[string]bool{}
	var out []binding
	add := func(res map[string]any) {
		if res == nil {
			return
		}
		key, err := json.Marshal(res)
		if err != nil || seen[string(key)] {
			return
		}
		seen[string(key)] = true
		p, err := e.bind(res)
		if err != nil {
			return // a templated endpoint, or a provider no longer registered
		}
		if l, ok := p.(cloud.Lister); ok {
			t, _ := res["type"].(string)
			out = append(out, binding{resourceType: t, resource: res, lister: l, provider: p})
		}
	}
	for _, rec := range infras {
		for _, r := range instances[rec.ID] {
			add(r.Resource)
		}
		d, err := e.compile(rec)
		if err != nil {
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(d.defs)) {
			for _, impl := range d.defs[name].Impls {
				add(impl.Resource)
			}
		}
	}
	return out
}

// reconcileOrphans runs once at start-up, before any loop: it lists skyfleet-tagged
// instances at every provider in use that can list, and settles those no instance record
// claims. An instance of a known infrastructure is adopted when its node still wants one
// (and it is pending or running), otherwise destroyed (orphan_destroyed). An instance of an
// unknown infrastructure is only logged unless DestroyUnknownOrphans is set, because another
// skyfleet server with its own store may own it.
func (e *Engine) reconcileOrphans(ctx context.Context, infras []*store.InfraRecord) {
	known := map[string]*store.InfraRecord{}
	instances := map[string][]*store.InstanceRecord{}
	claimed := map[string]bool{} // node ids with a record (live or archived)
	err := e.opts.Store.View(ctx, func(tx store.Tx) error {
		for _, rec := range infras {
			known[rec.ID] = rec
			rs, err := tx.Instances(rec.ID)
			if err != nil {
				return err
			}
			instances[rec.ID] = rs
			for _, r := range rs {
				claimed[r.NodeID] = true
			}
		}
		return nil
	})
	if err != nil {
		e.log.Warn("orphan check skipped: cannot read instances", "err", err)
		return
	}
	seen := map[string]bool{} // resource type + provider id: several bindings may list the same cloud
	for _, b := range e.bindingsInUse(infras, instances) {
		var found []cloud.Instance
		err := e.call(ctx, b.resourceType, "list", func(ctx context.Context) error {
			var lerr error
			found, lerr = b.lister.List(ctx, map[string]string{cloud.TagManaged: "1"})
			return lerr
		})
		if err != nil {
			e.log.Warn("orphan check: list failed; instances of this provider are neither adopted nor cleaned up until the next start", "resource_type", b.resourceType, "err", err)
			continue
		}
		for _, in := range found {
			key := b.resourceType + "\x00" + in.ID
			if seen[key] || in.State == cloud.StateGone {
				continue
			}
			seen[key] = true
			nodeID := in.Tags[cloud.TagNodeID]
			if nodeID == "" {
				nodeID = in.Token
			}
			if claimed[nodeID] {
				continue
			}
			infraID := in.Tags[cloud.TagInfraID]
			log := e.log.With("infra_id", infraID, "node", in.Tags[cloud.TagNode], "node_id", nodeID, "provider_id", in.ID)
			rec, ok := known[infraID]
			if !ok {
				if !e.opts.DestroyUnknownOrphans {
					log.Warn("instance tagged by skyfleet belongs to an infrastructure this store does not know; leaving it alone (another server may own it; set DestroyUnknownOrphans to clean it up)")
					continue
				}
				if err := e.destroyOrphan(ctx, b, in, ""); err != nil {
					log.Warn("destroy orphan of unknown infrastructure", "err", err)
				}
				continue
			}
			if e.adopt(ctx, rec, b, in, nodeID, instances) {
				claimed[nodeID] = true
				log.Info("adopted instance")
				continue
			}
			if err := e.destroyOrphan(ctx, b, in, infraID); err != nil {
				log.Warn("destroy orphan", "err", err)
			} else {
				log.Info("destroyed orphan instance")
			}
		}
	}
}

// adopt records an unclaimed instance of a known infrastructure when its node still wants
// one; it reports whether it did.
func (e *Engine) adopt(ctx context.Context, rec *store.InfraRecord, b binding, in cloud.Instance, nodeID string, instances map[string][]*store.InstanceRecord) bool {
	if rec.Phase == store.InfraDestroying || nodeID == "" {
		return false
	}
	if in.State != cloud.StatePending && in.State != cloud.StateRunning {
		return false
	}
	d, err := e.compile(rec)
	if err != nil {
		return false
	}
	node := in.Tags[cloud.TagNode]
	n, ok := d.node(node)
	if !ok {
		return false
	}
	target := currentTarget(rec.Targets, node, nodeLimits(n))
	count := 0
	for _, r := range instances[rec.ID] {
		if r.Node == node && live(r.State) {
			count++
		}
	}
	if count >= target {
		return false
	}
	created := in.Created
	if created.IsZero() {
		created = e.clock()
	}
	r := &store.InstanceRecord{
		InfraID:         rec.ID,
		Node:            node,
		NodeID:          nodeID,
		State:           store.StatePending,
		ResourceType:    b.resourceType,
		ProviderID:      in.ID,
		Resource:        b.resource,
		Addresses:       slices.Clone(in.Addresses),
		PrivateAddress:  in.PrivateAddress,
		ResourceAddress: resourceAddress(b.resourceType, in.Addresses),
		Created:         created,
		Detail:          "adopted after a restart",
	}
	err = e.update(ctx, func(tx store.Tx, ev *eventBuf) error {
		if _, err := tx.Instance(rec.ID, nodeID); err == nil {
			return errAlreadyClaimed
		}
		if err := tx.PutInstance(r); err != nil {
			return err
		}
		return ev.add(tx, instanceEvent("nodeadopted", r, "", map[string]any{"provider_id": in.ID, "addresses": in.Addresses}))
	})
	if err != nil {
		if !errors.Is(err, errAlreadyClaimed) {
			e.log.Warn("adopt instance", "infra_id", rec.ID, "node_id", nodeID, "err", err)
		}
		return false
	}
	instances[rec.ID] = append(instances[rec.ID], r)
	return true
}

var errAlreadyClaimed = errors.New("instance already has a record")

// destroyOrphan destroys an instance no state claims and records orphan_destroyed in its
// infrastructure's log when that infrastructure is known.
func (e *Engine) destroyOrphan(ctx context.Context, b binding, in cloud.Instance, infraID string) error {
	err := e.retry(ctx, func(ctx context.Context) error {
		return e.call(ctx, b.resourceType, "destroy", func(ctx context.Context) error {
			return b.provider.Destroy(ctx, in.ID)
		})
	})
	if err != nil {
		return err
	}
	if infraID == "" {
		e.log.Info("destroyed instance of an unknown infrastructure", "provider_id", in.ID, "infra_id", in.Tags[cloud.TagInfraID])
		return nil
	}
	return e.update(ctx, func(tx store.Tx, ev *eventBuf) error {
		return ev.add(tx, store.Event{
			InfraID: infraID, Type: "orphan_destroyed", Node: in.Tags[cloud.TagNode], NodeID: in.Tags[cloud.TagNodeID],
			Data: map[string]any{"provider_id": in.ID, "addresses": in.Addresses},
		})
	})
}
