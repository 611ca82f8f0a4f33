package cloud

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// State is the provider-side state of an instance, before health checks are applied.
type State string

// Provider-side instance states. The engine maps them to node states (pending, ready, …)
// together with the health checks.
const (
	// StatePending: the instance is being created or is booting.
	StatePending State = "pending"
	// StateRunning: the cloud reports the instance as running; health checks decide readiness.
	StateRunning State = "running"
	// StateStopped: the instance exists but is stopped (Occopus maps this to temp_failed).
	StateStopped State = "stopped"
	// StateFailed: the cloud reports the instance as broken (for example nova ERROR).
	StateFailed State = "failed"
	// StateGone: the instance no longer exists (terminated, deleted, or never created).
	StateGone State = "gone"
)

// Tag keys skyfleet puts on every instance it creates, so that instances can be listed,
// adopted after a restart, and cleaned up when no state claims them.
const (
	TagManaged   = "skyfleet"          // value "1"
	TagInfraID   = "skyfleet-infra-id" // infrastructure id
	TagNode      = "skyfleet-node"     // node name within the infrastructure
	TagNodeID    = "skyfleet-node-id"  // the instance's node id (also its idempotency token)
	TagInfraName = "skyfleet-infra-name"
)

// InstanceSpec is everything a provider needs to start one instance. It is fully rendered:
// templates in the resource and contextualisation sections have already been evaluated for
// this instance.
type InstanceSpec struct {
	// Token is the idempotency token: a repeated Create with the same token returns the
	// instance created by the first call and never starts a second one. skyfleet uses the
	// node id (a UUID) as the token.
	Token string
	// InfraID, InfraName and Node identify where the instance belongs.
	InfraID   string
	InfraName string
	Node      string
	// Resource is the rendered resource section of the chosen implementation, including its
	// `type` key. Each provider decodes it strictly into its own typed struct.
	Resource map[string]any
	// Context is the rendered contextualisation section (for example `type: process` with
	// command, env and files, or `type: docker` with env and command). Nil when the node
	// definition has none.
	Context map[string]any
	// UserData is the rendered cloud-init text for `type: cloudinit` contextualisation.
	UserData string
	// Tags are the skyfleet tags (Tag* keys) plus any user tags; providers attach them to the
	// instance so List can find it again.
	Tags map[string]string
	// Auth is the credential section selected from auth_data.yaml for this resource, or nil.
	Auth *Credentials
}

// Instance is what a provider reports about one instance.
type Instance struct {
	// ID is the provider's own id (cloud instance id, container id, pid-based id, …).
	ID string
	// Token is the idempotency token the instance was created with, when the provider can
	// report it (through tags or labels).
	Token string
	State State
	// Addresses lists the instance's addresses, most public first. The first one is the
	// node's address for health checks, templates (getip) and the registry.
	Addresses []string
	// PrivateAddress is what getprivip returns; empty when the provider has none.
	PrivateAddress string
	// Tags are the tags or labels found on the instance.
	Tags map[string]string
	// Created is when the instance was started, zero if unknown.
	Created time.Time
	// Detail is a short human-readable note on the state (for example a cloud's error text).
	Detail string
}

// Address returns the instance's primary address, or "" when it has none yet.
func (i Instance) Address() string {
	if len(i.Addresses) == 0 {
		return ""
	}
	return i.Addresses[0]
}

// Provider creates, destroys and describes instances on one cloud endpoint.
//
// Every method may be called concurrently from several goroutines. Implementations must not
// block beyond the context's deadline.
type Provider interface {
	// Create starts an instance for spec and returns its provider id. It must be idempotent on
	// spec.Token: a repeated call with the same token returns the same instance and never
	// starts a second one (also after the first call's response was lost).
	Create(ctx context.Context, spec InstanceSpec) (string, error)
	// Destroy stops and removes the instance; destroying an instance that no longer exists
	// succeeds.
	Destroy(ctx context.Context, id string) error
	// Describe returns the provider-side state and addresses of the instance. An instance that
	// does not exist is reported with State == StateGone and a nil error.
	Describe(ctx context.Context, id string) (Instance, error)
}

// Lister is the optional capability to list instances carrying all of the given tags. The
// engine uses it to adopt instances after a restart and to destroy orphans.
type Lister interface {
	List(ctx context.Context, tags map[string]string) ([]Instance, error)
}

// Cleaner is the optional capability to remove what a provider set up for a whole
// infrastructure beyond its instances (for example the docker provider's per-infrastructure
// network). The engine calls it after destroying an infrastructure's last instance; it must
// be idempotent and must leave alone anything still in use.
type Cleaner interface {
	Cleanup(ctx context.Context, infraID string) error
}

// AddressReserver is the optional capability of a provider that picks an instance's address
// itself and can do so before the instance exists (the local provider). The engine reserves
// the address before it renders the contextualisation, so that templates see it as `ip`;
// Create with the same token then gives the instance that address.
type AddressReserver interface {
	// Reserve returns the address the instance with this token will have, allocating it on
	// the first call. It is idempotent on token.
	Reserve(ctx context.Context, token string, resource map[string]any) (string, error)
	// Unreserve releases a reservation no instance was created for; it does nothing once
	// the instance exists.
	Unreserve(ctx context.Context, token string) error
}

// Driver turns a rendered resource section into a Provider bound to the cloud endpoint that
// section names. A driver may cache providers per endpoint; Bind must be cheap and must not
// call the cloud.
type Driver interface {
	// Bind returns the provider for resource (the rendered resource section, `type`
	// included) using creds (nil when none were selected).
	Bind(resource map[string]any, creds *Credentials) (Provider, error)
}

// Credentials is one selected auth_data section. Its String and GoString methods never print
// the values, so credentials can be logged or wrapped into errors without leaking.
type Credentials struct {
	values map[string]any
}

// NewCredentials wraps an auth_data mapping.
func NewCredentials(values map[string]any) *Credentials { return &Credentials{values: values} }

// Get returns the credential value for key as a string, and whether it was present.
func (c *Credentials) Get(key string) (string, bool) {
	if c == nil {
		return "", false
	}
	v, ok := c.values[key]
	if !ok || v == nil {
		return "", false
	}
	return fmt.Sprint(v), true
}

// Keys returns the names of the credential values present (never their values).
func (c *Credentials) Keys() []string {
	if c == nil {
		return nil
	}
	keys := make([]string, 0, len(c.values))
	for k := range c.values {
		keys = append(keys, k)
	}
	return keys
}

// String never reveals the values.
func (c *Credentials) String() string { return "[credentials redacted]" }

// GoString never reveals the values.
func (c *Credentials) GoString() string { return "[credentials redacted]" }

// ErrUnsupported is returned by Bind for resource types skyfleet recognises but does not
// implement yet.
var ErrUnsupported = errors.New("resource type not supported")

// RetryableError marks a provider error as transient (throttling, a 5xx answer, a lost
// connection): the engine retries the operation later with backoff instead of failing the
// instance.
type RetryableError struct{ Err error }

func (e *RetryableError) Error() string { return e.Err.Error() }
func (e *RetryableError) Unwrap() error { return e.Err }

// IsRetryable reports whether err is marked as transient.
func IsRetryable(err error) bool {
	var r *RetryableError
	return errors.As(err, &r)
}
