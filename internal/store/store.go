package store

import (
	"context"
	"time"
)

// Store is skyfleet's state. Implementations are safe for concurrent use; an Update
// function's writes are all applied or none is.
type Store interface {
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error
	// Update runs fn in a read-write transaction; an error from fn rolls everything back.
	Update(ctx context.Context, fn func(Tx) error) error
	// Close releases the data directory.
	Close() error
}

// Tx is one transaction. Records returned from a Tx are copies: changing them changes nothing
// until they are Put back in an Update.
//
// A lookup or delete of a missing record returns an error wrapping ErrNotFound that names
// the record (`infra "x": not found`); so does any read or write filed under an
// infrastructure that does not exist (PutInstance, AddEvent, Events, …). A Tx is valid only
// inside the function it was passed to.
type Tx interface {
	// Node definitions, keyed by node type name.
	NodeDef(name string) (*NodeDefRecord, error)
	NodeDefs() ([]*NodeDefRecord, error)
	PutNodeDef(r *NodeDefRecord) error
	DeleteNodeDef(name string) error

	// Infrastructures (desired state).
	Infra(id string) (*InfraRecord, error)
	Infras() ([]*InfraRecord, error)
	PutInfra(r *InfraRecord) error
	// DeleteInfra removes the infrastructure and everything filed under it (instances,
	// requests, events, decisions, archived instances).
	DeleteInfra(id string) error

	// Instances (actual state), keyed by infra id and node id.
	Instance(infraID, nodeID string) (*InstanceRecord, error)
	Instances(infraID string) ([]*InstanceRecord, error)
	PutInstance(r *InstanceRecord) error
	DeleteInstance(infraID, nodeID string) error
	// ArchiveInstance moves the record to the infrastructure's archive (failed instances are
	// archived before they are destroyed, as Occopus keeps failed_nodes).
	ArchiveInstance(r *InstanceRecord) error
	Archived(infraID string) ([]*InstanceRecord, error)

	// Scaling requests, in arrival order. AddScalingRequest assigns Seq.
	AddScalingRequest(r *ScalingRequest) error
	ScalingRequests(infraID string) ([]*ScalingRequest, error)
	DeleteScalingRequest(infraID string, seq uint64) error

	// Events, append-only per infrastructure. AddEvent assigns Seq (increasing per infra).
	AddEvent(e *Event) error
	// Events returns events with Seq > after, oldest first, at most limit (0: all).
	Events(infraID string, after uint64, limit int) ([]*Event, error)

	// Autoscaling decisions, append-only per infrastructure. AddDecision assigns Seq.
	AddDecision(d *Decision) error
	Decisions(infraID string, after uint64, limit int) ([]*Decision, error)
}

// NodeDefRecord is one imported node definition: the resolved YAML (imports substituted) of
// its list of implementations.
type NodeDefRecord struct {
	Name string `json:"name"`
	// YAML is the resolved node definition, re-parsable with descriptor.ParseNodeDefs as the
	// document `'node_def:NAME': <list>`.
	YAML     string    `json:"yaml"`
	Source   string    `json:"source,omitempty"` // file it was imported from, for messages
	Imported time.Time `json:"imported"`
}

// InfraPhase is the lifecycle phase of an infrastructure.
type InfraPhase string

// Infrastructure phases.
const (
	InfraBuilding   InfraPhase = "building"   // not every node has reached its target yet
	InfraReady      InfraPhase = "ready"      // every node has its target of ready instances
	InfraDestroying InfraPhase = "destroying" // delete requested: instances are being dropped
	InfraDetached   InfraPhase = "detached"   // not maintained (Occopus detach)
)

// InfraRecord is one infrastructure's desired state.
type InfraRecord struct {
	ID string `json:"id"`
	// Descriptor is the descriptor text as submitted; the engine re-parses it.
	Descriptor string `json:"descriptor"`
	// NodeDefs holds the resolved node definition YAML for each node type in use, captured at
	// submission so later imports do not change a running infrastructure behind its back.
	NodeDefs map[string]string `json:"node_defs"`
	// Targets is the stored target count per node (Occopus' node-count-<name>); absent means
	// "min".
	Targets map[string]int `json:"targets"`
	Phase   InfraPhase     `json:"phase"`
	// Notification is the raw body of the last POST .../notify.
	Notification string    `json:"notification,omitempty"`
	Created      time.Time `json:"created"`
	Updated      time.Time `json:"updated"`
	// Generation increases with every re-submitted descriptor (build -i).
	Generation int `json:"generation"`
}

// InstanceState is a node instance's state; the values are Occopus' names so reports stay
// compatible, plus skyfleet's own "creating", "draining" and "destroying".
type InstanceState string

// Instance states.
const (
	// StateCreating: intent recorded, provider Create not yet confirmed.
	StateCreating InstanceState = "creating"
	StatePending  InstanceState = "pending"
	StateReady    InstanceState = "ready"
	// StateDraining: out of every registry view, still running until its connections end.
	StateDraining   InstanceState = "draining"
	StateDestroying InstanceState = "destroying"
	StateShutdown   InstanceState = "shutdown"
	StateFailed     InstanceState = "failed"
	StateTempFailed InstanceState = "temp_failed"
)

// InstanceRecord is one instance's actual state as skyfleet knows it.
type InstanceRecord struct {
	InfraID string `json:"infra_id"`
	Node    string `json:"node"`
	// NodeID is skyfleet's id of the instance (a UUID) and the provider idempotency token.
	NodeID string        `json:"node_id"`
	State  InstanceState `json:"state"`
	// ResourceType is the provider type; ProviderID the provider's id once Create returned.
	ResourceType string `json:"resource_type"`
	ProviderID   string `json:"provider_id,omitempty"`
	// Resource is the rendered resource section the instance was created with (needed to
	// bind the provider again after a restart).
	Resource map[string]any `json:"resource,omitempty"`
	// Addresses, most public first; ResourceAddress keeps Occopus' report form (a string, or a
	// list for ec2-like providers).
	Addresses       []string  `json:"addresses,omitempty"`
	PrivateAddress  string    `json:"private_address,omitempty"`
	ResourceAddress any       `json:"resource_address,omitempty"`
	Created         time.Time `json:"created"`
	// Ready is when the instance first became ready (zero until then).
	Ready time.Time `json:"ready,omitempty"`
	// FailingSince is when health checks started failing continuously (zero when healthy).
	FailingSince time.Time `json:"failing_since,omitempty"`
	// Health is the last health check result in words ("ok", "port 8080: connection refused").
	Health   string    `json:"health,omitempty"`
	HealthAt time.Time `json:"health_at,omitempty"`
	// DrainDeadline is when a draining instance is destroyed whatever its connections.
	DrainDeadline time.Time `json:"drain_deadline,omitempty"`
	// Detail is the last provider note or error.
	Detail string `json:"detail,omitempty"`
}

// ScalingKind is the kind of a scaling request.
type ScalingKind string

// Scaling request kinds (Occopus' scaleup, scaledown and scaleto).
const (
	ScaleUp   ScalingKind = "scaleup"
	ScaleDown ScalingKind = "scaledown"
	ScaleTo   ScalingKind = "scaleto"
)

// ScalingRequest is one recorded scaling request, applied by the engine at its next pass.
type ScalingRequest struct {
	InfraID string      `json:"infra_id"`
	Seq     uint64      `json:"seq"`
	Node    string      `json:"node"`
	Kind    ScalingKind `json:"kind"`
	// Count for scaleup (instances to add) and scaleto (target).
	Count int `json:"count"`
	// Victim for scaledown: a node id or an address; empty lets skyfleet choose.
	Victim string `json:"victim,omitempty"`
	// Source says who asked: "api", "cli", "autoscale", …
	Source string    `json:"source,omitempty"`
	At     time.Time `json:"at"`
}

// Event is one entry of an infrastructure's event log.
type Event struct {
	InfraID string    `json:"infra_id"`
	Seq     uint64    `json:"seq"`
	At      time.Time `json:"at"`
	// Type is one of Occopus' event names (infrastart, nodecreating, nodecreated, nodefailed,
	// nodedropping, nodedropped, infraready, infradrop) or skyfleet's own (scaling_applied,
	// scaling_ignored, nodedraining, nodeadopted, orphan_destroyed, error).
	Type    string `json:"type"`
	Node    string `json:"node,omitempty"`
	NodeID  string `json:"node_id,omitempty"`
	Message string `json:"message,omitempty"`
	// Data carries event-specific fields (addresses, counts, reasons).
	Data map[string]any `json:"data,omitempty"`
}

// Decision is one autoscaling decision, including the decisions not to act.
type Decision struct {
	InfraID string    `json:"infra_id"`
	Seq     uint64    `json:"seq"`
	At      time.Time `json:"at"`
	Node    string    `json:"node"`
	// Direction is "out", "in" or "none".
	Direction string `json:"direction"`
	// Outcome is "scaled" or a reason not to: "at_max", "at_min", "cooldown", "pending",
	// "stale", "conflict", "within_tolerance", …
	Outcome string `json:"outcome"`
	// From and To are the target counts before and after (equal when nothing changed).
	From int `json:"from"`
	To   int `json:"to"`
	// Reason is the sentence a user reads: "no: cooldown 14s left".
	Reason string `json:"reason"`
	// Cause names the alert or metric that led here (alert name and labels, query and value).
	Cause map[string]any `json:"cause,omitempty"`
}
