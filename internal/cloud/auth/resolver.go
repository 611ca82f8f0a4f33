package auth

import (
	"errors"
	"fmt"
	"slices"

	"github.com/skyfleet/skyfleet/internal/cloud"
)

// NoCredentialTypes are the resource types whose providers use no credentials; Resolver
// lets them run without a matching entry (or without any auth_data.yaml).
var NoCredentialTypes = []string{"local", "sim", "docker"}

// Resolver returns the engine's credentials hook (engine.Options.Credentials) over f, which
// may be nil when Find found no file. For every resource it selects from the resource
// section with Occopus' rule; a resource whose type is in optional (see NoCredentialTypes)
// gets nil credentials instead of an error when no entry matches or no file exists, as in
// Occopus, where only the plugins that need credentials complain. An ambiguous match is an
// error for every type.
func Resolver(f *File, optional []string) func(resource map[string]any) (*cloud.Credentials, error) {
	return func(resource map[string]any) (*cloud.Credentials, error) {
		typ, _ := resource["type"].(string)
		opt := slices.Contains(optional, typ)
		if f == nil {
			if opt {
				return nil, nil
			}
			return nil, fmt.Errorf("select credentials: resource type %q needs credentials: %w; name a file with --auth-data or $%s", typ, ErrNoAuthFile, EnvSkyfleet)
		}
		c, err := f.Select(SectionResource, resource)
		if err != nil && opt && errors.Is(err, ErrNoCredentials) {
			return nil, nil
		}
		return c, err
	}
}
