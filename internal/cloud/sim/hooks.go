package sim

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/skyfleet/skyfleet/internal/cloud"
)

// Phase says where in a call a fault hook fires.
type Phase int

const (
	// BeforeEffect fires before the call touches the instance table: the call has no effect.
	BeforeEffect Phase = iota
	// AfterEffect fires once the call took effect (an instance was created or destroyed) but
	// before it answers, as when a caller crashes or loses the response.
	AfterEffect
)

// hook is one pending fault for the next call of an operation.
type hook struct {
	phase Phase
	err   error
	block *Block
}

func (h *hook) apply(ctx context.Context, op Op) error {
	if h.block == nil {
		return h.err
	}
	close(h.block.entered)
	select {
	case <-h.block.release:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sim %s: blocked call abandoned: %w", op, ctx.Err())
	}
}

// Block holds one blocked call (see BlockNext).
type Block struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

// Entered is closed when the blocked call reaches its blocking point.
func (b *Block) Entered() <-chan struct{} { return b.entered }

// Release lets the blocked call continue (it then answers normally). Releasing twice is a
// no-op.
func (b *Block) Release() { b.once.Do(func() { close(b.release) }) }

// FailNext makes the next call of op return err without taking effect. Hooks queue up: each
// call consumes at most one.
func (s *Sim) FailNext(op Op, err error) {
	s.addHook(op, &hook{phase: BeforeEffect, err: err})
}

// FailNextAfter makes the next call of op take effect and then return err, simulating a crash
// or a lost response between the cloud acting and the caller recording it.
func (s *Sim) FailNextAfter(op Op, err error) {
	s.addHook(op, &hook{phase: AfterEffect, err: err})
}

// BlockNext makes the next call of op stop at phase until the returned Block is released or
// the call's context ends (then the call returns the context's error). A test uses it to stop
// its caller exactly between two steps, for example after the instance exists but before the
// engine has recorded it.
func (s *Sim) BlockNext(op Op, phase Phase) *Block {
	b := &Block{entered: make(chan struct{}), release: make(chan struct{})}
	s.addHook(op, &hook{phase: phase, block: b})
	return b
}

func (s *Sim) addHook(op Op, h *hook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks[op] = append(s.hooks[op], h)
}

func (s *Sim) popHookLocked(op Op) *hook {
	q := s.hooks[op]
	if len(q) == 0 {
		return nil
	}
	h := q[0]
	s.hooks[op] = q[1:]
	return h
}

// Kill makes the instance disappear out of band, as if terminated in the cloud console: its
// address is released and Describe reports it gone. It reports whether the instance existed.
func (s *Sim) Kill(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := s.removeLocked(id)
	if ok {
		s.log.Debug("instance killed out of band", "instance_id", id)
	}
	return ok
}

// SetState forces the state Describe and List report for an existing instance, whatever its
// boot time and failure roll say; StateGone is the same as Kill. It fails for an unknown id.
func (s *Sim) SetState(id string, st cloud.State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.instances[id]
	if !ok {
		return fmt.Errorf("sim set state of %s: no such instance", id)
	}
	if st == cloud.StateGone {
		s.removeLocked(id)
		return nil
	}
	in.forced = st
	return nil
}

// SetAPIErrorRate changes the probability that a call returns a RetryableError, for every
// provider that does not override it with `api_error_rate`.
func (s *Sim) SetAPIErrorRate(rate float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiErrorRate = rate
}

// Count returns the number of instances that exist (pending, running, stopped or failed).
func (s *Sim) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.instances)
}

// Instances returns a snapshot of every existing instance, sorted by id.
func (s *Sim) Instances() []cloud.Instance {
	s.mu.Lock()
	out := make([]cloud.Instance, 0, len(s.instances))
	for _, in := range s.instances {
		out = append(out, s.reportLocked(in))
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b cloud.Instance) int { return compareIDs(a.ID, b.ID) })
	return out
}

// Calls returns how many times each operation was called, including calls that failed.
func (s *Sim) Calls() map[Op]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[Op]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}
