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
// The goroutine behind the channel stops when ctx is done; a consumer must keep receiving or
// cancel ctx.
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
	events <-chan store.Event, unsubscribe func(), out chan<- Snapshot) {
	defer close(out)
	defer func() { unsubscribe() }()
	log := r.log.With("infra_id", infraID, "node", node)

	var resubscribed time.Time
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
				// once. A hub that is closing cuts every new subscription too; then wait for
				// the next resync instead of spinning.
				events = nil
				unsubscribe()
				if time.Since(resubscribed) > time.Second {
					events, unsubscribe = r.hub.Subscribe(infraID, 64)
					resubscribed = time.Now()
				}
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
				events, unsubscribe = r.hub.Subscribe(infraID, 64)
				resubscribed = time.Now()
			}
		}

		snap, err := r.refresh(ctx, infraID, node)
		if _, gone := errors.AsType[*NotFoundError](err); gone {
			log.Info("watched node is gone; closing the watch")
			final := Snapshot{InfraID: infraID, Node: node, Revision: last.Revision + 1, Endpoints: []Endpoint{}}
			select {
			case out <- final:
			case <-ctx.Done():
			}
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
		select {
		case out <- snap:
		case <-ctx.Done():
			return
		}
	}
}
