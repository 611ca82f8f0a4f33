package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/skyfleet/skyfleet/internal/store"
)

// replayPage bounds how many events one store read returns while catching up.
const replayPage = 500

// goneCheckInterval is how often a stream checks that its infrastructure still exists.
const goneCheckInterval = time.Second

// stream serves an infrastructure's events as server-sent events: first every stored event
// after `after` (or after the Last-Event-ID header, which a reconnecting EventSource sends),
// then live ones from the hub, without gaps or duplicates. The hub subscription is opened
// before the store is read, so an event persisted while catching up arrives on the channel
// and is skipped by sequence number if the store already gave it. A subscriber the hub cuts
// off for being slow re-subscribes and catches up from the store again. A comment line goes
// out every HeartbeatInterval so proxies keep the connection open; within a second of the
// infrastructure's removal the stream ends with an event of type "gone".
func (s *Server) stream(w http.ResponseWriter, r *http.Request, id string, after uint64) error {
	if s.opts.Hub == nil {
		return &httpError{status: http.StatusServiceUnavailable, code: CodeUnavailable, msg: "live events are not enabled on this server"}
	}
	if lei := strings.TrimSpace(r.Header.Get("Last-Event-ID")); lei != "" {
		n, err := strconv.ParseUint(lei, 10, 64)
		if err != nil {
			return badRequest("header Last-Event-ID: %q is not an event sequence number", lei)
		}
		after = n
	}
	if s.life.Err() != nil {
		return errShuttingDown
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.life, cancel)
	defer stop()

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return nil // the connection cannot stream; nothing more can be said to the client
	}
	st := &sseState{w: w, rc: rc, s: s, id: id, last: after}
	heartbeat := time.NewTicker(s.opts.HeartbeatInterval)
	defer heartbeat.Stop()
	// The record's deletion publishes no event, so the stream looks for it now and then.
	goneCheck := time.NewTicker(goneCheckInterval)
	defer goneCheck.Stop()
	for {
		ch, unsubscribe := s.opts.Hub.Subscribe(id, 256)
		done, err := st.catchUp(ctx)
		if err != nil || done {
			unsubscribe()
			return nil
		}
		received, done := st.follow(ctx, ch, heartbeat.C, goneCheck.C)
		unsubscribe()
		if done || !received {
			// Closed without delivering anything: the hub itself was closed (shutdown).
			return nil
		}
	}
}

// sseState is one stream's position and output.
type sseState struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	s    *Server
	id   string
	last uint64
}

// catchUp sends every stored event after st.last. done is true when the infrastructure is
// gone (the "gone" event has been sent).
func (st *sseState) catchUp(ctx context.Context) (done bool, err error) {
	for {
		var evs []*store.Event
		err := st.s.opts.Store.View(ctx, func(tx store.Tx) error {
			var err error
			evs, err = tx.Events(st.id, st.last, replayPage)
			return err
		})
		if errors.Is(err, store.ErrNotFound) {
			return true, st.gone()
		}
		if err != nil {
			st.s.logger.Warn("event stream: read events", "infra_id", st.id, "err", err)
			return false, err
		}
		for _, e := range evs {
			if e.Seq <= st.last {
				continue
			}
			if err := st.send(wireEvent(e)); err != nil {
				return false, err
			}
		}
		if err := st.rc.Flush(); err != nil {
			return false, err
		}
		if len(evs) < replayPage {
			return false, nil
		}
	}
}

// follow relays live events until ctx ends (done), the channel closes (received tells
// whether it delivered anything first), or the infrastructure disappears (done).
func (st *sseState) follow(ctx context.Context, ch <-chan store.Event, heartbeat, goneCheck <-chan time.Time) (received, done bool) {
	for {
		select {
		case <-ctx.Done():
			return received, true
		case <-heartbeat:
			if _, err := fmt.Fprint(st.w, ": heartbeat\n\n"); err != nil {
				return received, true
			}
			if err := st.rc.Flush(); err != nil {
				return received, true
			}
		case <-goneCheck:
			if gone, _ := st.infraGone(ctx); gone {
				_ = st.gone()
				return received, true
			}
		case e, ok := <-ch:
			if !ok {
				return received, false
			}
			received = true
			if e.Seq <= st.last {
				continue // already sent while catching up
			}
			if e.Seq > st.last+1 {
				// Something between was missed (published before we subscribed but stored
				// after our read): fill the gap from the store first.
				if done, err := st.catchUp(ctx); done || err != nil {
					return received, true
				}
				if e.Seq <= st.last {
					continue
				}
			}
			if err := st.send(wireEvent(&e)); err != nil {
				return received, true
			}
			if err := st.rc.Flush(); err != nil {
				return received, true
			}
		}
	}
}

// send writes one event in the text/event-stream format and advances the position.
func (st *sseState) send(e Event) error {
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event %d: %w", e.Seq, err)
	}
	if _, err := fmt.Fprintf(st.w, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, sseField(e.Type), data); err != nil {
		return err
	}
	st.last = e.Seq
	return nil
}

// gone tells the client the infrastructure no longer exists, so it stops reconnecting.
func (st *sseState) gone() error {
	data, _ := json.Marshal(map[string]string{"infra_id": st.id})
	if _, err := fmt.Fprintf(st.w, "event: %s\ndata: %s\n\n", EventGone, data); err != nil {
		return err
	}
	return st.rc.Flush()
}

func (st *sseState) infraGone(ctx context.Context) (bool, error) {
	err := st.s.opts.Store.View(ctx, func(tx store.Tx) error {
		_, err := tx.Infra(st.id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	return false, err
}

// sseField keeps a value on one line, as the event-stream format requires.
func sseField(v string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(v)
}
