package docker

import (
	"errors"
	"fmt"
	"sync"

	"github.com/skyfleet/skyfleet/internal/cloud"
)

// Driver binds docker resource sections to providers, one per endpoint, created on first
// use and reused afterwards (the client keeps its negotiated API version and connections).
type Driver struct {
	opts Options

	mu        sync.Mutex
	providers map[string]*Provider
}

var _ cloud.Driver = (*Driver)(nil)

// NewDriver returns a driver whose providers use opts.
func NewDriver(opts Options) *Driver {
	return &Driver{opts: opts.withDefaults(), providers: map[string]*Provider{}}
}

// Bind decodes resource strictly (so that a bad section fails before anything is created)
// and returns the provider of its endpoint. It does not contact the engine. The docker
// provider uses no credentials: creds is accepted and ignored, as in Occopus.
func (d *Driver) Bind(resource map[string]any, _ *cloud.Credentials) (cloud.Provider, error) {
	r, err := DecodeResource(resource)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.providers[r.Endpoint]; ok {
		return p, nil
	}
	p, err := New(r.Endpoint, d.opts)
	if err != nil {
		return nil, fmt.Errorf("bind docker resource: %w", err)
	}
	d.providers[r.Endpoint] = p
	return p, nil
}

// Close closes the clients of every provider the driver made.
func (d *Driver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for ep, p := range d.providers {
		if err := p.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close docker client %s: %w", ep, err))
		}
		delete(d.providers, ep)
	}
	return errors.Join(errs...)
}
