package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/skyfleet/skyfleet/internal/api"
)

// ErrGone is returned by Watch when the infrastructure no longer exists (the server ended
// the stream with a "gone" event, or answers 404 on reconnecting after events were seen).
var ErrGone = errors.New("infrastructure no longer exists")

// WatchOptions tunes Watch's reconnection.
type WatchOptions struct {
	// MinBackoff and MaxBackoff bound the wait before a reconnection (defaults 250 ms, 5 s);
	// the wait doubles after each failed attempt and resets once events flow again.
	MinBackoff, MaxBackoff time.Duration
	// OnReconnect, when set, is called before each reconnection with the error that ended
	// the previous connection.
	OnReconnect func(err error)
}

// Watch streams the infrastructure's events with a sequence number above after and calls fn
// for each, in order. When the connection drops it reconnects with Last-Event-ID set to the
// last event delivered, so fn sees every event exactly once. It returns ctx's error when ctx
// ends, fn's error when fn fails, ErrGone when the infrastructure is destroyed, and any
// answer the server gives before streaming (401, 404, …) as an *Error.
func (c *Client) Watch(ctx context.Context, id string, after uint64, fn func(api.Event) error, opts WatchOptions) error {
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 250 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	last := after
	backoff := opts.MinBackoff
	seen := false
	for {
		progressed, err := c.watchOnce(ctx, id, &last, fn)
		if progressed {
			seen = true
			backoff = opts.MinBackoff
		}
		var (
			se  *Error
			cbe *callbackError
		)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrGone):
			return ErrGone
		case errors.As(err, &se) && se.Status == http.StatusNotFound && seen:
			return ErrGone
		case errors.As(err, &se) && se.Status < 500:
			return err
		case errors.As(err, &cbe):
			return cbe.err
		}
		if opts.OnReconnect != nil {
			opts.OnReconnect(err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, opts.MaxBackoff)
	}
}

// callbackError carries an error returned by the caller's function out of watchOnce.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }
func (e *callbackError) Unwrap() error { return e.err }

// watchOnce runs one connection until it ends. progressed tells whether any event arrived.
func (c *Client) watchOnce(ctx context.Context, id string, last *uint64, fn func(api.Event) error) (progressed bool, err error) {
	q := url.Values{"watch": {"1"}}
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/infrastructures/"+url.PathEscape(id)+"/events", q, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", strconv.FormatUint(*last, 10))
	resp, err := c.hc.Do(req)
	if err != nil {
		return false, fmt.Errorf("watch events of %s: %w", id, c.transportError(err))
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return false, decodeError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var typ, data string
	for sc.Scan() {
		line := sc.Text()
		if line != "" {
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				typ = value
			case "data":
				if data != "" {
					data += "\n"
				}
				data += value
			}
			continue
		}
		// A blank line ends a frame.
		switch {
		case typ == api.EventGone:
			return progressed, ErrGone
		case data != "":
			var e api.Event
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				return progressed, fmt.Errorf("watch events of %s: bad event %q: %w", id, data, err)
			}
			if e.Seq > *last {
				if err := fn(e); err != nil {
					return progressed, &callbackError{err}
				}
				*last = e.Seq
				progressed = true
			}
		}
		typ, data = "", ""
	}
	if err := sc.Err(); err != nil {
		return progressed, fmt.Errorf("watch events of %s: %w", id, err)
	}
	return progressed, fmt.Errorf("watch events of %s: connection closed by the server", id)
}
