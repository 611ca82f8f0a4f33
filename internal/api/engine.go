package api

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/store"
)

// Engine is what the API needs from the orchestration engine. Every method may be called
// concurrently. The daemon adapts the real engine to it (translating the engine's errors into
// this package's NotFoundError, ErrAlreadyAttached, ErrNotAttached and InvalidError); tests
// use fakes.
type Engine interface {
	// ImportNodeDefs stores parsed node definitions, replacing ones of the same name, and
	// returns the names stored, sorted.
	ImportNodeDefs(ctx context.Context, defs descriptor.NodeDefs, source string) ([]string, error)
	// Submit compiles and stores a descriptor under id ("" assigns a new id) and returns the
	// id and warnings. Invalid descriptors give an *InvalidError.
	Submit(ctx context.Context, id, file string, data []byte) (string, []Warning, error)
	// Scale applies a scaling request at once. Unknown infrastructure or node gives a
	// *NotFoundError; a request that changes nothing is reported with Applied false.
	Scale(ctx context.Context, req store.ScalingRequest) (ScaleResult, error)
	// Destroy marks the infrastructure for destruction and returns at once.
	Destroy(ctx context.Context, id string) error
	// WaitGone blocks until the infrastructure's record is gone or ctx ends.
	WaitGone(ctx context.Context, id string) error
	// Attach and Detach start and stop maintenance of a stored infrastructure.
	Attach(ctx context.Context, id string) error
	Detach(ctx context.Context, id string) error
	// Maintained reports whether a loop maintains the infrastructure.
	Maintained(id string) bool
}

// NotFoundError says that an infrastructure, node, node definition or instance does not
// exist.
type NotFoundError struct {
	// Kind is "infrastructure", "node", "nodedef" or "instance".
	Kind    string
	Name    string
	InfraID string
}

func (e *NotFoundError) Error() string {
	switch e.Kind {
	case "node":
		return fmt.Sprintf("node %q does not exist in infrastructure %q", e.Name, e.InfraID)
	case "nodedef":
		return fmt.Sprintf("node definition %q does not exist", e.Name)
	case "instance":
		return fmt.Sprintf("instance %q does not exist in infrastructure %q", e.Name, e.InfraID)
	default:
		return fmt.Sprintf("infrastructure %q does not exist", e.Name)
	}
}

// Engine conflicts on attach and detach.
var (
	// ErrAlreadyAttached: attach of an infrastructure that is already maintained.
	ErrAlreadyAttached = errors.New("infrastructure is already maintained")
	// ErrNotAttached: detach of an infrastructure that is not maintained.
	ErrNotAttached = errors.New("infrastructure is not maintained")
	// ErrDestroying: a change to an infrastructure that is being destroyed.
	ErrDestroying = errors.New("infrastructure is being destroyed")
)

// InvalidError says a descriptor or node definition is invalid. Messages holds one line per
// problem, each starting with file:line:col where the position is known.
type InvalidError struct {
	Messages []string
}

func (e *InvalidError) Error() string {
	if len(e.Messages) == 1 {
		return e.Messages[0]
	}
	return fmt.Sprintf("%d problems:\n%s", len(e.Messages), strings.Join(e.Messages, "\n"))
}
