// Package events fans out infrastructure events to live watchers (server-sent event streams,
// the dashboard, `skyfleet events -f`). Persistence is the store's job; the hub only delivers
// what happens while a watcher is connected, and watchers resume from the store by sequence
// number after a disconnect.
package events

import (
	"sync"

	"github.com/skyfleet/skyfleet/internal/store"
)

// Hub delivers published events to subscribers of the event's infrastructure (and to
// subscribers of all infrastructures). The zero value is not usable; use NewHub.
type Hub struct {
	mu     sync.Mutex
	subs   map[*sub]struct{}
	closed bool
}

type sub struct {
	infraID string // "" = every infrastructure
	ch      chan store.Event
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[*sub]struct{}{}} }

// Subscribe returns a channel of events for infraID ("" for all) and a cancel function that
// must be called to release it. The channel is buffered; a subscriber that falls more than
// buffer events behind is cut off (its channel is closed) and must resume from the store.
func (h *Hub) Subscribe(infraID string, buffer int) (<-chan store.Event, func()) {
	if buffer <= 0 {
		buffer = 256
	}
	s := &sub{infraID: infraID, ch: make(chan store.Event, buffer)}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		close(s.ch)
		return s.ch, func() {}
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if _, ok := h.subs[s]; ok {
				delete(h.subs, s)
				close(s.ch)
			}
		})
	}
}

// Publish delivers e to every matching subscriber without blocking.
func (h *Hub) Publish(e store.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if s.infraID != "" && s.infraID != e.InfraID {
			continue
		}
		select {
		case s.ch <- e:
		default:
			// Too slow: cut it off so it resumes from the store instead of missing events silently.
			delete(h.subs, s)
			close(s.ch)
		}
	}
}

// Close closes every subscription; later subscriptions are closed at once.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		delete(h.subs, s)
		close(s.ch)
	}
}
