package api

import "time"

// This file holds the request and response bodies of the native /v1 API. The server encodes
// them and internal/client decodes them, so both sides always agree.

// ErrorEnvelope is the body of every /v1 error response.
type ErrorEnvelope struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody describes one failed request. Code is a stable machine-readable word (see the
// Code* constants); Details lists individual problems, for example one "file:line:col: …"
// line per descriptor error.
type ErrorBody struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Details []string `json:"details,omitempty"`
}

// Error codes of the /v1 error envelope.
const (
	CodeBadRequest   = "bad_request"  // 400: malformed request (bad JSON, bad parameter)
	CodeInvalid      = "invalid"      // 400: the descriptor or node definition is invalid
	CodeUnauthorized = "unauthorized" // 401: missing or wrong bearer token
	CodeNotFound     = "not_found"    // 404: unknown infrastructure, node, node definition
	CodeConflict     = "conflict"     // 409: the request contradicts the current state
	CodeTooLarge     = "too_large"    // 413: request body over the limit
	CodeTimeout      = "timeout"      // 504: a waited-for operation did not finish in time
	CodeInternal     = "internal"     // 500: anything else
	CodeUnavailable  = "unavailable"  // 503: the server is shutting down
)

// ImportResult answers POST /v1/nodedefs.
type ImportResult struct {
	// Imported lists the node definition names stored, sorted.
	Imported []string `json:"imported"`
}

// NodeDefSummary is one entry of GET /v1/nodedefs.
type NodeDefSummary struct {
	Name string `json:"name"`
	// Source is the file the definition was imported from, when known.
	Source   string    `json:"source,omitempty"`
	Imported time.Time `json:"imported"`
	// Implementations is the number of alternative implementations.
	Implementations int `json:"implementations"`
	// ResourceTypes lists the provider types of the implementations, in order.
	ResourceTypes []string `json:"resource_types"`
}

// NodeDefList answers GET /v1/nodedefs.
type NodeDefList struct {
	NodeDefs []NodeDefSummary `json:"nodedefs"`
}

// NodeDefDetail answers GET /v1/nodedefs/{name}.
type NodeDefDetail struct {
	NodeDefSummary
	// YAML is the stored, resolved definition (imports already substituted).
	YAML string `json:"yaml"`
}

// Warning is a non-fatal remark on a submitted descriptor.
type Warning struct {
	// Position is "file:line:col" when known.
	Position string `json:"position,omitempty"`
	Message  string `json:"message"`
}

// SubmitResult answers POST /v1/infrastructures and PUT /v1/infrastructures/{id}.
type SubmitResult struct {
	ID       string    `json:"id"`
	Warnings []Warning `json:"warnings"`
	// Created is true when the request created the infrastructure, false when it replaced
	// the descriptor of an existing one.
	Created bool `json:"created"`
}

// NodeCounts summarises one node of an infrastructure in the list view.
type NodeCounts struct {
	Target int `json:"target"`
	// Ready counts instances in state ready; Total every instance not being removed.
	Ready int `json:"ready"`
	Total int `json:"total"`
}

// InfraSummary is one entry of GET /v1/infrastructures.
type InfraSummary struct {
	ID         string                `json:"id"`
	Name       string                `json:"name"`
	Phase      string                `json:"phase"`
	Maintained bool                  `json:"maintained"`
	Generation int                   `json:"generation"`
	Created    time.Time             `json:"created"`
	Updated    time.Time             `json:"updated"`
	Nodes      map[string]NodeCounts `json:"nodes"`
}

// InfraList answers GET /v1/infrastructures.
type InfraList struct {
	Infrastructures []InfraSummary `json:"infrastructures"`
}

// InfraDetail answers GET /v1/infrastructures/{id}.
type InfraDetail struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	UserID     string    `json:"user_id,omitempty"`
	Phase      string    `json:"phase"`
	Maintained bool      `json:"maintained"`
	Generation int       `json:"generation"`
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
	// Notification is the body of the last compat POST .../notify, if any.
	Notification string `json:"notification,omitempty"`
	// Nodes in descriptor order.
	Nodes []NodeDetail `json:"nodes"`
}

// NodeDetail is one node of an infrastructure with its instances.
type NodeDetail struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Min  int    `json:"min"`
	Max  int    `json:"max"`
	// Target is the stored target count clamped to [min, max]; Actual counts the instances
	// not being removed; Ready those in state ready.
	Target int `json:"target"`
	Actual int `json:"actual"`
	Ready  int `json:"ready"`
	// Dependencies lists the nodes this node waits for.
	Dependencies []string         `json:"dependencies"`
	Instances    []InstanceDetail `json:"instances"`
}

// InstanceDetail is one instance of a node.
type InstanceDetail struct {
	NodeID       string   `json:"node_id"`
	ProviderID   string   `json:"provider_id,omitempty"`
	ResourceType string   `json:"resource_type"`
	State        string   `json:"state"`
	Addresses    []string `json:"addresses"`
	// PrivateAddress is what templates' getprivip returns.
	PrivateAddress string `json:"private_address,omitempty"`
	// AgeSeconds is the time since Created, by the server's clock.
	AgeSeconds float64   `json:"age_seconds"`
	Created    time.Time `json:"created"`
	// Ready is when the instance first became ready; absent until then.
	Ready *time.Time `json:"ready,omitempty"`
	// Health is the last health check result in words and HealthAt when it was taken.
	Health   string     `json:"health,omitempty"`
	HealthAt *time.Time `json:"health_at,omitempty"`
	// FailingSince is when health checks started failing continuously.
	FailingSince *time.Time `json:"failing_since,omitempty"`
	// Detail is the last provider note or error.
	Detail string `json:"detail,omitempty"`
}

// ScaleRequest is the body of POST /v1/infrastructures/{id}/nodes/{node}/scale. Exactly one
// field must be set: Delta adds (>0) or removes (<0) instances, Target sets the target count,
// Victim removes the named instance (node id or any of its addresses).
type ScaleRequest struct {
	Delta  *int    `json:"delta,omitempty"`
	Target *int    `json:"target,omitempty"`
	Victim *string `json:"victim,omitempty"`
}

// ScaleResult answers a scaling request. A request that cannot change anything (at max, at
// min, unknown victim) is still answered with 200: Applied is false and Reason says why.
type ScaleResult struct {
	Applied bool   `json:"applied"`
	Reason  string `json:"reason,omitempty"`
	// From and Target are the node's target count before and after the request.
	From   int `json:"from"`
	Target int `json:"target"`
	// Pending counts instances of the node not yet ready.
	Pending int `json:"pending"`
}

// DeleteResult answers DELETE /v1/infrastructures/{id}.
type DeleteResult struct {
	ID string `json:"id"`
	// Gone is true when the request waited (?wait=1) and every instance is gone.
	Gone bool `json:"gone"`
}

// Event is one entry of an infrastructure's event log.
type Event struct {
	Seq     uint64         `json:"seq"`
	At      time.Time      `json:"at"`
	Type    string         `json:"type"`
	InfraID string         `json:"infra_id"`
	Node    string         `json:"node,omitempty"`
	NodeID  string         `json:"node_id,omitempty"`
	Message string         `json:"message,omitempty"`
	Data    map[string]any `json:"data,omitempty"`
}

// EventList answers GET /v1/infrastructures/{id}/events.
type EventList struct {
	Events []Event `json:"events"`
	// Next is the sequence number to pass as ?after= to continue (the last one returned, or
	// the request's own after when nothing was returned).
	Next uint64 `json:"next"`
}

// EventGone is the type of the last server-sent event of a stream whose infrastructure no
// longer exists (it was destroyed).
const EventGone = "gone"

// Health answers GET /healthz.
type Health struct {
	Status string `json:"status"`
}
