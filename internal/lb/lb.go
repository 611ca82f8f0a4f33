package lb

import (
	"context"
	"slices"
	"strings"
)

// Backend is one destination of the load balancer.
type Backend struct {
	// ID is the instance's node id; it names the backend in metrics and reports.
	ID string
	// Addr is "host:port".
	Addr string
}

// Membership is the backend set at one revision of the orchestrator's registry.
type Membership struct {
	// Revision is the endpoints revision the set comes from (0 for sources without one). It
	// is reported back so that the orchestrator knows which removals a load balancer has seen.
	Revision uint64
	Backends []Backend
}

// Source tells the load balancer which backends to use. Watch returns a channel that receives
// the current set as soon as it is known and then every changed set; the channel is closed
// when ctx is done. An error from Watch means the source cannot start at all.
type Source interface {
	Watch(ctx context.Context) (<-chan Membership, error)
}

// Engine moves client traffic to backends.
//
// Run serves until ctx is done, then stops accepting, lets in-flight requests finish within
// the engine's drain timeout, and returns after every goroutine it started has stopped.
// Update replaces the backend set at any time (also before Run): new backends receive
// traffic at once, removed ones receive no new requests and are kept until their in-flight
// requests finish (drained). Active returns the open requests or connections per backend id,
// draining backends included; a backend it no longer holds is absent.
type Engine interface {
	Run(ctx context.Context) error
	Update(backends []Backend)
	Active() map[string]int
}

// StaticSource is a Source whose set changes only when Set is called; tests and fixed
// deployments use it.
type StaticSource struct {
	ch chan Membership
}

// NewStaticSource returns a source that starts with backends.
func NewStaticSource(backends ...Backend) *StaticSource {
	s := &StaticSource{ch: make(chan Membership, 16)}
	s.ch <- Membership{Revision: 1, Backends: sortBackends(backends)}
	return s
}

// Set publishes a new backend set. It must not be called after the watching context ended
// and blocks when 16 sets are waiting to be read.
func (s *StaticSource) Set(rev uint64, backends ...Backend) {
	s.ch <- Membership{Revision: rev, Backends: sortBackends(backends)}
}

// Watch forwards the sets given to NewStaticSource and Set until ctx is done. It may be
// called once.
func (s *StaticSource) Watch(ctx context.Context) (<-chan Membership, error) {
	out := make(chan Membership)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-s.ch:
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

func sortBackends(bs []Backend) []Backend {
	bs = slices.Clone(bs)
	slices.SortFunc(bs, func(a, b Backend) int { return strings.Compare(a.ID, b.ID) })
	return bs
}
