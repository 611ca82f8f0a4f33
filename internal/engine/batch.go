package engine

import (
	"context"
	"sync"

	"github.com/skyfleet/skyfleet/internal/store"
)

// groupCommit coalesces the small store writes of concurrent provider-call completions into
// shared transactions: the first caller becomes the leader and writes everything queued
// (its own change included) in one transaction, again and again until the queue is empty;
// the others wait for their change to be written. With N creations finishing together this
// costs a handful of disk syncs instead of N.
type groupCommit struct {
	e       *Engine
	mu      sync.Mutex
	queue   []*commitItem
	leading bool
}

type commitItem struct {
	fn   func(tx store.Tx, ev *eventBuf) error
	err  error
	done chan struct{}
}

// do applies fn in a transaction shared with other concurrent callers and returns its
// outcome. fn must only touch records of its own instance: if the shared transaction fails,
// each change is retried in a transaction of its own so one bad change cannot sink the
// others.
func (g *groupCommit) do(ctx context.Context, fn func(tx store.Tx, ev *eventBuf) error) error {
	it := &commitItem{fn: fn, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, it)
	if g.leading {
		g.mu.Unlock()
		<-it.done
		return it.err
	}
	g.leading = true
	g.mu.Unlock()
	for {
		g.mu.Lock()
		batch := g.queue
		g.queue = nil
		if len(batch) == 0 {
			g.leading = false
			g.mu.Unlock()
			break
		}
		g.mu.Unlock()
		g.commit(ctx, batch)
	}
	<-it.done
	return it.err
}

func (g *groupCommit) commit(ctx context.Context, batch []*commitItem) {
	err := g.e.update(ctx, func(tx store.Tx, ev *eventBuf) error {
		for _, it := range batch {
			if err := it.fn(tx, ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && len(batch) > 1 {
		for _, it := range batch {
			it.err = g.e.update(ctx, it.fn)
			close(it.done)
		}
		return
	}
	for _, it := range batch {
		it.err = err
		close(it.done)
	}
}
