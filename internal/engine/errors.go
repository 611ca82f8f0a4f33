package engine

import (
	"errors"
	"fmt"
)

// NotFoundError says that a named infrastructure, node, node definition or instance does not
// exist.
type NotFoundError struct {
	// Kind is "infrastructure", "node", "nodedef" or "instance".
	Kind string
	// Name is the id or name that was looked up.
	Name string
	// InfraID is the infrastructure the lookup was made in (empty for infrastructures and
	// node definitions).
	InfraID string
}

// Error names the kind and the name, and the infrastructure when there is one.
func (e *NotFoundError) Error() string {
	if e.InfraID != "" && e.Kind != "infrastructure" {
		return fmt.Sprintf("%s %q not found in infrastructure %q", e.Kind, e.Name, e.InfraID)
	}
	return fmt.Sprintf("%s %q not found", e.Kind, e.Name)
}

// ErrAlreadyAttached is returned by Attach for an infrastructure that is already maintained.
var ErrAlreadyAttached = errors.New("infrastructure is already attached")

// ErrNotAttached is returned by Detach for an infrastructure that is not maintained.
var ErrNotAttached = errors.New("infrastructure is not attached")

// ErrDestroying is returned by Submit and Scale for an infrastructure that is being destroyed.
var ErrDestroying = errors.New("infrastructure is being destroyed")
