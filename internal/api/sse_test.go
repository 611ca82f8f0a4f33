package api

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/store"
)

// frame is one parsed server-sent event (or comment).
type frame struct {
	id, event, data, comment string
}

// sseConn is an open event stream read frame by frame.
type sseConn struct {
	t      testing.TB
	resp   *http.Response
	frames chan frame
	cancel context.CancelFunc
	done   chan struct{}
}

func (h *harness) openStream(path string, headers ...string) *sseConn {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", h.ts.URL+path, nil)
	for _, hd := range headers {
		k, v, _ := strings.Cut(hd, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		h.t.Fatalf("open stream: %v", err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		resp.Body.Close()
		h.t.Fatalf("open stream: status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c := &sseConn{t: h.t, resp: resp, frames: make(chan frame, 1024), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer close(c.frames)
		sc := bufio.NewScanner(resp.Body)
		var f frame
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				c.frames <- f
				f = frame{}
			case strings.HasPrefix(line, ":"):
				f.comment = strings.TrimSpace(line[1:])
			default:
				k, v, _ := strings.Cut(line, ": ")
				switch k {
				case "id":
					f.id = v
				case "event":
					f.event = v
				case "data":
					f.data = v
				}
			}
		}
	}()
	return c
}

func (c *sseConn) close() {
	c.cancel()
	c.resp.Body.Close()
	<-c.done
}

// next returns the next event frame (skipping comments unless wantComment).
func (c *sseConn) next(wantComment bool) (frame, bool) {
	c.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return frame{}, false
			}
			if f.comment != "" && !wantComment {
				continue
			}
			return f, true
		case <-deadline:
			c.t.Fatalf("no event within 10s")
			return frame{}, false
		}
	}
}

// expectSeqs reads events and checks their sequence numbers.
func (c *sseConn) expectSeqs(want ...uint64) {
	c.t.Helper()
	for _, w := range want {
		f, ok := c.next(false)
		if !ok {
			c.t.Fatalf("stream ended, want event %d", w)
		}
		if f.id != strconv.FormatUint(w, 10) {
			c.t.Fatalf("event id %q (%s), want %d", f.id, f.event, w)
		}
		var e Event
		if err := json.Unmarshal([]byte(f.data), &e); err != nil || e.Seq != w || e.Type != f.event {
			c.t.Fatalf("event data %q does not match id %s / type %s (%v)", f.data, f.id, f.event, err)
		}
	}
}

func TestEventStreamResumes(t *testing.T) {
	h := newHarness(t, nil)
	id := h.createInfra() // event 1: infrastart
	h.addEvents(id, 2, "nodecreating")

	s := h.openStream("/v1/infrastructures/" + id + "/events?watch=1")
	s.expectSeqs(1, 2, 3)
	h.addEvents(id, 2, "nodecreated")
	s.expectSeqs(4, 5)
	s.close()

	// Events while disconnected, then resume with Last-Event-ID: no gap, no duplicate.
	h.addEvents(id, 3, "nodedropped")
	s = h.openStream("/v1/infrastructures/"+id+"/events?watch=1&after=1", "Last-Event-ID: 5")
	s.expectSeqs(6, 7, 8)
	h.addEvents(id, 1, "infraready")
	s.expectSeqs(9)

	// An event already sent, published again, is not repeated; one published after a gap
	// brings the missing ones from the store first.
	err := h.st.Update(context.Background(), func(tx store.Tx) error {
		for range 3 {
			if err := tx.AddEvent(&store.Event{InfraID: id, At: now, Type: "scaling_applied"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h.hub.Publish(store.Event{InfraID: id, Seq: 9, Type: "infraready"})
	h.hub.Publish(store.Event{InfraID: id, Seq: 12, Type: "scaling_applied"})
	s.expectSeqs(10, 11, 12)
	h.addEvents(id, 1, "nodecreated")
	s.expectSeqs(13)
	s.close()
}

func TestEventStreamHeartbeatAndGone(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.HeartbeatInterval = 20 * time.Millisecond })
	id := h.createInfra()
	s := h.openStream("/v1/infrastructures/" + id + "/events?watch=1&after=1")
	defer s.close()
	f, ok := s.next(true)
	if !ok || f.comment != "heartbeat" {
		t.Fatalf("first frame %+v, want a heartbeat comment", f)
	}
	resp, body := h.do("DELETE", "/v1/infrastructures/"+id+"?wait=1", "")
	mustStatus(t, resp, body, 200)
	for {
		f, ok := s.next(false)
		if !ok {
			t.Fatal("stream ended without a gone event")
		}
		if f.event == EventGone {
			break
		}
	}
	if _, ok := s.next(false); ok {
		t.Error("stream continued after the gone event")
	}
}

func TestEventStreamEndsOnClose(t *testing.T) {
	h := newHarness(t, nil)
	id := h.createInfra()
	s := h.openStream("/v1/infrastructures/" + id + "/events?watch=1")
	s.expectSeqs(1)
	h.srv.Close()
	if _, ok := s.next(false); ok {
		t.Error("stream continued after Server.Close")
	}
	s.close()
	resp, body := h.do("GET", "/v1/infrastructures/"+id+"/events?watch=1", "")
	mustStatus(t, resp, body, http.StatusServiceUnavailable)
}

func TestEventStreamBadLastEventID(t *testing.T) {
	h := newHarness(t, nil)
	id := h.createInfra()
	resp, body := h.do("GET", "/v1/infrastructures/"+id+"/events?watch=1", "", "Last-Event-ID: abc")
	mustStatus(t, resp, body, 400)
}
