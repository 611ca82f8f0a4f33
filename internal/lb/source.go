package lb

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/skyfleet/skyfleet/internal/registry"
)

// WatchSource follows a node's ready instances through the orchestrator's endpoints watch
// stream (GET {Server}/v1/infrastructures/{InfraID}/nodes/{Node}/endpoints?watch=1). It
// reconnects with exponential backoff after any failure, sending the last revision it saw as
// Last-Event-ID; the server then resends the full set only if it changed. While disconnected
// the last set stays in force.
type WatchSource struct {
	// Server is the orchestrator's base URL, e.g. http://127.0.0.1:9000.
	Server  string
	InfraID string
	Node    string
	// Port is the backend port added to every instance address.
	Port int
	// Token is sent as a bearer token when not empty.
	Token string
	// Client makes the requests; nil uses a client without a timeout (the stream is long).
	Client *http.Client
	// Logger receives connection problems; nil discards them.
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the wait between reconnections (defaults 200ms, 10s).
	MinBackoff, MaxBackoff time.Duration
	// IdleTimeout ends a stream that has been silent this long (default 45s, three of the
	// server's 15 s heartbeats), so that a connection that died without closing is replaced.
	IdleTimeout time.Duration
}

var _ Source = (*WatchSource)(nil)

// URL returns the stream's address.
func (s *WatchSource) URL() (string, error) {
	base, err := url.Parse(s.Server)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return "", fmt.Errorf("endpoints watch: server %q is not an http(s) URL", s.Server)
	}
	u := base.JoinPath("v1", "infrastructures", s.InfraID, "nodes", s.Node, "endpoints")
	u.RawQuery = "watch=1"
	return u.String(), nil
}

// Watch starts following the stream; see WatchSource.
func (s *WatchSource) Watch(ctx context.Context) (<-chan Membership, error) {
	u, err := s.URL()
	if err != nil {
		return nil, err
	}
	if s.InfraID == "" || s.Node == "" {
		return nil, errors.New("endpoints watch: infrastructure id and node name are required")
	}
	if s.Port < 1 || s.Port > 65535 {
		return nil, fmt.Errorf("endpoints watch: backend port %d is outside 1..65535", s.Port)
	}
	out := make(chan Membership)
	go s.run(ctx, u, out)
	return out, nil
}

func (s *WatchSource) run(ctx context.Context, u string, out chan<- Membership) {
	defer close(out)
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("infra_id", s.InfraID, "node", s.Node)
	client := s.Client
	if client == nil {
		client = &http.Client{}
	}
	minB, maxB := s.MinBackoff, s.MaxBackoff
	if minB <= 0 {
		minB = 200 * time.Millisecond
	}
	if maxB < minB {
		maxB = max(10*time.Second, minB)
	}
	backoff := minB
	var last uint64
	for {
		got, err := s.stream(ctx, client, u, &last, out)
		if ctx.Err() != nil {
			return
		}
		if got {
			backoff = minB
		}
		log.Warn("endpoints watch interrupted; reconnecting", "error", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, maxB)
	}
}

// stream reads one connection until it fails. got tells whether any snapshot arrived.
func (s *WatchSource) stream(ctx context.Context, client *http.Client, u string, last *uint64, out chan<- Membership) (got bool, err error) {
	idle := s.IdleTimeout
	if idle <= 0 {
		idle = 45 * time.Second
	}
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errIdle := fmt.Errorf("endpoints watch: nothing received for %s", idle)
	timer := time.AfterFunc(idle, func() { cancel(errIdle) })
	defer timer.Stop()
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, u, nil)
	if err != nil {
		return false, fmt.Errorf("endpoints watch: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if *last != 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(*last, 10))
	}
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	resp, err := client.Do(req)
	if err != nil {
		if cause := context.Cause(sctx); errors.Is(cause, errIdle) {
			return false, cause
		}
		return false, fmt.Errorf("endpoints watch: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return false, fmt.Errorf("endpoints watch: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var event, data string
	for sc.Scan() {
		timer.Reset(idle)
		line := sc.Text()
		switch {
		case line == "":
			if event == "endpoints" && data != "" {
				var snap registry.Snapshot
				if err := json.Unmarshal([]byte(data), &snap); err != nil {
					return got, fmt.Errorf("endpoints watch: bad snapshot: %w", err)
				}
				got = true
				m := Membership{Revision: snap.Revision, Backends: s.backends(snap)}
				select {
				case out <- m:
				case <-ctx.Done():
					return got, ctx.Err()
				}
				*last = snap.Revision
			}
			event, data = "", ""
		case strings.HasPrefix(line, ":"):
			// Comment (heartbeat).
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data += strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
		}
	}
	if cause := context.Cause(sctx); errors.Is(cause, errIdle) {
		return got, cause
	}
	if err := sc.Err(); err != nil {
		return got, fmt.Errorf("endpoints watch: %w", err)
	}
	return got, errors.New("endpoints watch: the server ended the stream")
}

func (s *WatchSource) backends(snap registry.Snapshot) []Backend {
	bs := make([]Backend, 0, len(snap.Endpoints))
	port := strconv.Itoa(s.Port)
	for _, ep := range snap.Endpoints {
		bs = append(bs, Backend{ID: ep.NodeID, Addr: net.JoinHostPort(ep.Address, port)})
	}
	return sortBackends(bs)
}
