package registry

import (
	"context"
	"errors"
	"time"

	"github.com/skyfleet/skyfleet/internal/store"
)

// Watch returns a channel that receives node's current snapshot at once and then a new
// snapshot whenever the ready set changes. Changes are noticed through the events hub (a
// burst of events yields one snapshot) and by a periodic re-read of the store, so none is
// missed even when the hub drops the watcher. The channel is closed when ctx is done, or after
// a final empty snapshot when the infrastructure or node disappears. An unknown
// infrastructure or node at the start gives a *NotFoundError and no channel.
//
// A consumer slower than the changes skips intermediate sets: the channel holds one
// snapshot, and a newer one replaces it. The goroutine behind the channel stops when ctx is
// done.
func (r *Registry) Watch(ctx context.Context, infraID, node string) (<-chan Snapshot, error) {
	var events <-chan store.Event
	unsubscribe := func() {}
	if r.hub != nil {
		events, unsubscribe = r.hub.Subscribe(infraID, 64)
	}
	first, err := r.refresh(ctx, infraID, node)
	if err != nil {
		unsubscribe()
		return nil, err
	}
	out := make(chan Snapshot, 1)
	out <- first
	go r.watch(ctx, infraID, node, first, events, unsubscribe, out)
	return out, nil
}

func (r *Registry) watch(ctx context.Context, infraID, node string, last Snapshot,
	events <-chan store.Event, unsubscribe func(), out chan Snapshot) {
	defer close(out)
	defer func() { unsubscribe() }()
	log := r.log.With("infra_id", infraID, "node", node)

	resync := time.NewTicker(r.resync)
	defer resync.Stop()
	var coalesce <-chan time.Time
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	arm := func() {
		if coalesce != nil {
			return
		}
		if timer == nil {
			timer = time.NewTimer(r.coalesce)
		} else {
			timer.Reset(r.coalesce)
		}
		coalesce = timer.C
	}

	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				// Cut off by the hub (too slow): look at the store now and subscribe again at
				// once. A closed hub closes every new subscription at once; then only the
				// resync is left.
				unsubscribe()
				events, unsubscribe = r.resubscribe(infraID)
				arm()
				continue
			}
			arm()
			continue
		case <-coalesce:
			coalesce = nil
		case <-resync.C:
			if events == nil && r.hub != nil {
				unsubscribe()
				events, unsubscribe = r.resubscribe(infraID)
			}
		}

		snap, err := r.refresh(ctx, infraID, node)
		if _, gone := errors.AsType[*NotFoundError](err); gone {
			log.Info("watched node is gone; closing the watch")
			offer(out, Snapshot{InfraID: infraID, Node: node, Revision: last.Revision + 1, Endpoints: []Endpoint{}})
			return
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("registry watch: re-read failed; retrying at the next resync", "error", err)
			continue
		}
		if snap.Revision == last.Revision {
			continue
		}
		last = snap
		offer(out, snap)
	}
}

// resubscribe subscribes to infraID's events again. It returns a nil channel when the hub is
// closed (its subscriptions come back already closed), so that the caller does not spin.
func (r *Registry) resubscribe(infraID string) (<-chan store.Event, func()) {
	ch, cancel := r.hub.Subscribe(infraID, 64)
	// Taking one event here loses nothing: every caller re-reads the store right after.
	select {
	case _, ok := <-ch:
		if !ok {
			cancel()
			return nil, func() {}
		}
	default:
	}
	return ch, cancel
}

// offer puts snap into out (capacity 1) without blocking, replacing a snapshot the consumer
// has not taken yet: a slow consumer skips intermediate sets and always gets the latest.
// Only the watch goroutine sends on out, so after emptying it the send cannot block.
func offer(out chan Snapshot, snap Snapshot) {
	select {
	case out <- snap:
	default:
		select {
		case <-out:
		default:
		}
		out <- snap
	}
}
