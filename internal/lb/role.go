package lb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/skyfleet/skyfleet/internal/registry"
)

// Role runs one load balancer: it feeds the Source's backend sets to the Engine and, with a
// Reporter, posts the engine's connection counts every ReportInterval.
type Role struct {
	Source Source
	Engine Engine
	// Reporter is optional; nil sends no reports.
	Reporter *Reporter
	// ReportInterval defaults to 1s.
	ReportInterval time.Duration
	// Logger defaults to discarding.
	Logger *slog.Logger

	mu sync.Mutex
	// rev is the revision last applied to the engine; addrs remembers the address of every
	// backend the engine may still hold, for reports.
	rev     uint64
	addrs   map[string]string
	current map[string]bool
}

// Run runs the engine and follows the source until ctx is done or the engine fails. It
// returns the engine's error, if any, after every goroutine it started has stopped.
func (r *Role) Run(ctx context.Context) error {
	if r.Source == nil || r.Engine == nil {
		return errors.New("run lb role: a source and an engine are required")
	}
	log := r.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The source stops with wctx, which ends when Run ends for any reason (also when the
	// engine fails while ctx is still live).
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	ch, err := r.Source.Watch(wctx)
	if err != nil {
		return fmt.Errorf("run lb role: %w", err)
	}
	g, gctx := errgroup.WithContext(wctx)
	g.Go(func() error {
		if err := r.Engine.Run(gctx); err != nil {
			return fmt.Errorf("run lb role: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				// Stop the source and drain ch so that its goroutine never blocks.
				stopWatch()
				for range ch {
				}
				return nil
			case m, ok := <-ch:
				if !ok {
					return nil
				}
				r.apply(m)
				log.Info("backends changed", "revision", m.Revision, "backends", len(m.Backends))
			}
		}
	})
	if r.Reporter != nil {
		g.Go(func() error { r.report(gctx, log); return nil })
	}
	return g.Wait()
}

func (r *Role) apply(m Membership) {
	r.mu.Lock()
	if r.addrs == nil {
		r.addrs = map[string]string{}
	}
	r.current = map[string]bool{}
	for _, b := range m.Backends {
		r.addrs[b.ID] = b.Addr
		r.current[b.ID] = true
	}
	r.mu.Unlock()
	r.Engine.Update(m.Backends)
	// The revision counts as applied only once the engine has the set.
	r.mu.Lock()
	r.rev = m.Revision
	r.mu.Unlock()
}

// Report builds the report the role would send now.
func (r *Role) Report(name string) registry.LBReport {
	active := r.Engine.Active()
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := registry.LBReport{Reporter: name, Revision: r.rev, Backends: []registry.LBBackend{}}
	for _, id := range slices.Sorted(maps.Keys(active)) {
		rep.Backends = append(rep.Backends, registry.LBBackend{NodeID: id, Address: r.addrs[id], Active: active[id]})
	}
	for id := range r.addrs {
		if _, held := active[id]; !held && !r.current[id] {
			delete(r.addrs, id)
		}
	}
	return rep
}

func (r *Role) report(ctx context.Context, log *slog.Logger) {
	every := r.ReportInterval
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := r.Reporter.Send(sctx, r.Report(r.Reporter.Name))
		cancel()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			log.Warn("connection report failed; the orchestrator falls back to its drain timeout", "error", err)
			failing = true
		case err == nil && failing:
			log.Info("connection reports delivered again")
			failing = false
		}
	}
}
