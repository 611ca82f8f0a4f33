package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/skyfleet/skyfleet/internal/api"
	"github.com/skyfleet/skyfleet/internal/store"
)

// DefaultAddr is the server address when none is configured (occopus-rest-service's default).
const DefaultAddr = "http://127.0.0.1:5000"

// Options configures New.
type Options struct {
	// Addr is the server's base URL, e.g. http://127.0.0.1:5000; "" means DefaultAddr. A bare
	// host:port gets http:// prepended.
	Addr string
	// Token is sent as "Authorization: Bearer <token>" when not empty. It never appears in
	// errors.
	Token string
	// HTTPClient makes the requests; nil uses a client without a timeout (event streams are
	// long-lived; give each call a context deadline instead).
	HTTPClient *http.Client
}

// Client calls one skyfleet server. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
}

// New checks the address and returns a client.
func New(opts Options) (*Client, error) {
	addr := strings.TrimSpace(opts.Addr)
	if addr == "" {
		addr = DefaultAddr
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("client: server address %q: %w", opts.Addr, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: server address %q: want http://HOST:PORT or https://HOST:PORT", opts.Addr)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: u, token: opts.Token, hc: hc}, nil
}

// Addr returns the server's base URL.
func (c *Client) Addr() string { return c.base.String() }

// Error is an error answer of the server: the HTTP status and the v1 error envelope.
type Error struct {
	Status  int
	Code    string
	Message string
	// Details lists individual problems, e.g. one "file:line:col: …" line per descriptor error.
	Details []string
}

// Error gives the message followed by one detail per line.
func (e *Error) Error() string {
	if len(e.Details) == 0 {
		return e.Message
	}
	return e.Message + "\n  " + strings.Join(e.Details, "\n  ")
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// request sends one request and decodes a JSON answer into out (nil: discard).
func (c *Client) request(ctx context.Context, method, path string, query url.Values, body io.Reader, contentType string, out any) error {
	req, err := c.newRequest(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportError(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func (c *Client) newRequest(ctx context.Context, method, path string, query url.Values, body io.Reader) (*http.Request, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// transportError describes a request that got no answer, naming the server.
func (c *Client) transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("cannot reach the skyfleet server at %s (is skyfleet serve running there? --server or SKYFLEET_ADDR chooses it): %w", c.base, ue.Err)
	}
	return err
}

// decodeError reads an error answer: the v1 envelope when there is one, else the status and
// the start of the body.
func decodeError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var env api.ErrorEnvelope
	if err := json.Unmarshal(data, &env); err == nil && env.Error.Code != "" {
		return &Error{Status: resp.StatusCode, Code: env.Error.Code, Message: env.Error.Message, Details: env.Error.Details}
	}
	msg := strings.TrimSpace(string(data))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &Error{Status: resp.StatusCode, Code: "", Message: fmt.Sprintf("%s %s: %s: %s", resp.Request.Method, resp.Request.URL.Path, resp.Status, msg)}
}

// fileQuery names the submitted file so the server's messages carry it.
func fileQuery(file string) url.Values {
	q := url.Values{}
	if file != "" {
		q.Set("filename", file)
	}
	return q
}

// Health checks that the server answers /healthz.
func (c *Client) Health(ctx context.Context) error {
	return c.request(ctx, http.MethodGet, "/healthz", nil, nil, "", nil)
}

// ImportNodeDefs sends a self-contained node definition document (imports already resolved)
// and returns the names imported.
func (c *Client) ImportNodeDefs(ctx context.Context, file string, data []byte) ([]string, error) {
	var out api.ImportResult
	err := c.request(ctx, http.MethodPost, "/v1/nodedefs", fileQuery(file), bytes.NewReader(data), "application/x-yaml", &out)
	return out.Imported, err
}

// NodeDefs lists the imported node definitions.
func (c *Client) NodeDefs(ctx context.Context) ([]api.NodeDefSummary, error) {
	var out api.NodeDefList
	err := c.request(ctx, http.MethodGet, "/v1/nodedefs", nil, nil, "", &out)
	return out.NodeDefs, err
}

// NodeDef returns one node definition.
func (c *Client) NodeDef(ctx context.Context, name string) (*api.NodeDefDetail, error) {
	var out api.NodeDefDetail
	if err := c.request(ctx, http.MethodGet, "/v1/nodedefs/"+url.PathEscape(name), nil, nil, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteNodeDef deletes a node definition.
func (c *Client) DeleteNodeDef(ctx context.Context, name string) error {
	return c.request(ctx, http.MethodDelete, "/v1/nodedefs/"+url.PathEscape(name), nil, nil, "", nil)
}

// CreateInfra submits a descriptor under a new id.
func (c *Client) CreateInfra(ctx context.Context, file string, data []byte) (*api.SubmitResult, error) {
	var out api.SubmitResult
	if err := c.request(ctx, http.MethodPost, "/v1/infrastructures", fileQuery(file), bytes.NewReader(data), "application/x-yaml", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PutInfra submits a descriptor under id, replacing the stored one (as occopus-build -i) or
// creating the infrastructure under that id.
func (c *Client) PutInfra(ctx context.Context, id, file string, data []byte) (*api.SubmitResult, error) {
	var out api.SubmitResult
	if err := c.request(ctx, http.MethodPut, "/v1/infrastructures/"+url.PathEscape(id), fileQuery(file), bytes.NewReader(data), "application/x-yaml", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Infras lists the infrastructures.
func (c *Client) Infras(ctx context.Context) ([]api.InfraSummary, error) {
	var out api.InfraList
	err := c.request(ctx, http.MethodGet, "/v1/infrastructures", nil, nil, "", &out)
	return out.Infrastructures, err
}

// Infra returns the full detail of one infrastructure.
func (c *Client) Infra(ctx context.Context, id string) (*api.InfraDetail, error) {
	var out api.InfraDetail
	if err := c.request(ctx, http.MethodGet, "/v1/infrastructures/"+url.PathEscape(id), nil, nil, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteInfra starts destroying the infrastructure; with wait it returns once every instance
// is gone (bounded by the server's timeout and ctx).
func (c *Client) DeleteInfra(ctx context.Context, id string, wait bool) (*api.DeleteResult, error) {
	q := url.Values{}
	if wait {
		q.Set("wait", "1")
	}
	var out api.DeleteResult
	if err := c.request(ctx, http.MethodDelete, "/v1/infrastructures/"+url.PathEscape(id), q, nil, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Attach starts maintaining a stored infrastructure.
func (c *Client) Attach(ctx context.Context, id string) error {
	return c.request(ctx, http.MethodPost, "/v1/infrastructures/"+url.PathEscape(id)+"/attach", nil, nil, "", nil)
}

// Detach stops maintaining the infrastructure; its instances keep running.
func (c *Client) Detach(ctx context.Context, id string) error {
	return c.request(ctx, http.MethodPost, "/v1/infrastructures/"+url.PathEscape(id)+"/detach", nil, nil, "", nil)
}

// Scale sends a scaling request. A request the limits do not allow is not an error: the
// result has Applied false and the Reason.
func (c *Client) Scale(ctx context.Context, id, node string, req api.ScaleRequest) (*api.ScaleResult, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode scale request: %w", err)
	}
	var out api.ScaleResult
	path := "/v1/infrastructures/" + url.PathEscape(id) + "/nodes/" + url.PathEscape(node) + "/scale"
	if err := c.request(ctx, http.MethodPost, path, nil, bytes.NewReader(data), "application/json", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Events returns up to limit events after the sequence number after (limit 0: the server's
// default).
func (c *Client) Events(ctx context.Context, id string, after uint64, limit int) (*api.EventList, error) {
	q := url.Values{}
	if after > 0 {
		q.Set("after", strconv.FormatUint(after, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out api.EventList
	if err := c.request(ctx, http.MethodGet, "/v1/infrastructures/"+url.PathEscape(id)+"/events", q, nil, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Decisions returns the infrastructure's autoscaling decisions with a sequence number above
// after, oldest first, only those of node when node is not empty. The server answers at most
// its newest 1,000 matching decisions; pass the last Seq seen as after to get only newer ones.
func (c *Client) Decisions(ctx context.Context, infraID string, after uint64, node string) ([]store.Decision, error) {
	q := url.Values{}
	if after > 0 {
		q.Set("after", strconv.FormatUint(after, 10))
	}
	if node != "" {
		q.Set("node", node)
	}
	var out struct {
		Decisions []store.Decision `json:"decisions"`
	}
	if err := c.request(ctx, http.MethodGet, "/v1/infrastructures/"+url.PathEscape(infraID)+"/decisions", q, nil, "", &out); err != nil {
		return nil, err
	}
	return out.Decisions, nil
}
