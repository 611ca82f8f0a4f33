package cloud

import (
	"fmt"
	"sort"
	"sync"
)

// Registry maps resource types to drivers. It is filled explicitly from main (or by a test);
// there is no global registry.
type Registry struct {
	mu      sync.RWMutex
	drivers map[string]Driver
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{drivers: map[string]Driver{}} }

// Register adds a driver for resource type name. Registering a name twice is an error.
func (r *Registry) Register(name string, d Driver) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if name == "" || d == nil {
		return fmt.Errorf("register driver: empty name or nil driver")
	}
	if _, dup := r.drivers[name]; dup {
		return fmt.Errorf("register driver %q: already registered", name)
	}
	r.drivers[name] = d
	return nil
}

// Driver returns the driver for resource type name.
func (r *Registry) Driver(name string) (Driver, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	d, ok := r.drivers[name]
	if !ok {
		return nil, fmt.Errorf("resource type %q: no provider registered (available: %v)", name, r.namesLocked())
	}
	return d, nil
}

// Bind looks up the driver for resource["type"] and binds it.
func (r *Registry) Bind(resource map[string]any, creds *Credentials) (Provider, error) {
	t, _ := resource["type"].(string)
	d, err := r.Driver(t)
	if err != nil {
		return nil, err
	}
	return d.Bind(resource, creds)
}

// Names returns the registered resource types, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.namesLocked()
}

func (r *Registry) namesLocked() []string {
	names := make([]string, 0, len(r.drivers))
	for n := range r.drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
