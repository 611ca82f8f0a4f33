package cloud

import (
	"fmt"
	"strings"
)

// SupportedTypes lists the resource types skyfleet has a provider for, in the order messages
// name them.
var SupportedTypes = []string{"local", "sim", "docker", "ec2", "nova"}

// UnsupportedTypes lists the resource types Occopus has plugins for and skyfleet recognises
// (their node definitions validate) but cannot create instances of yet.
var UnsupportedTypes = []string{"azure_vm", "azure_aci", "cloudbroker", "cloudsigma"}

// Unsupported is the driver of a recognised resource type that skyfleet has no provider
// for. Bind always fails with an error wrapping ErrUnsupported that says so plainly, so that
// `build` stops before anything is created instead of reporting an unknown type.
type Unsupported struct {
	// Type is the resource type, e.g. "azure_vm".
	Type string
}

var _ Driver = Unsupported{}

// Bind returns an *UnsupportedError (which wraps ErrUnsupported) naming the type and the
// supported ones.
func (u Unsupported) Bind(map[string]any, *Credentials) (Provider, error) {
	return nil, &UnsupportedError{Type: u.Type}
}

// UnsupportedError says that a recognised resource type has no provider yet. It matches
// ErrUnsupported with errors.Is.
type UnsupportedError struct {
	// Type is the resource type, e.g. "azure_vm".
	Type string
}

// Error says which type is unsupported and lists the supported ones.
func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("resource type %q is recognised but skyfleet does not support it yet (supported: %s)",
		e.Type, strings.Join(SupportedTypes, ", "))
}

// Unwrap returns ErrUnsupported.
func (e *UnsupportedError) Unwrap() error { return ErrUnsupported }

// RegisterUnsupported registers an Unsupported driver for each of UnsupportedTypes
// (azure_vm, azure_aci, cloudbroker, cloudsigma) on r.
func RegisterUnsupported(r *Registry) error {
	for _, t := range UnsupportedTypes {
		if err := r.Register(t, Unsupported{Type: t}); err != nil {
			return err
		}
	}
	return nil
}
