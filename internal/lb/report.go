package lb

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/skyfleet/skyfleet/internal/registry"
)

// Reporter posts the load balancer's open connections per backend to the orchestrator
// (POST {Server}/v1/infrastructures/{InfraID}/nodes/{Node}/lbreport), which waits for a
// draining instance's count to reach zero before destroying it.
type Reporter struct {
	Server  string
	InfraID string
	Node    string
	// Name identifies this load balancer among the node's balancers (listen address or node id).
	Name  string
	Token string
	// Client makes the requests; nil uses a client with a 5 s timeout.
	Client *http.Client
}

// Send posts one report.
func (r *Reporter) Send(ctx context.Context, rep registry.LBReport) error {
	base, err := url.Parse(r.Server)
	if err != nil {
		return fmt.Errorf("send lb report: server %q: %w", r.Server, err)
	}
	u := base.JoinPath("v1", "infrastructures", r.InfraID, "nodes", r.Node, "lbreport")
	body, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("send lb report: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("send lb report: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	client := r.Client
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second} // shares http.DefaultTransport's connections
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("send lb report: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("send lb report: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}
