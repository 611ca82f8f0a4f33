package auth

import (
	"errors"
	"testing"
)

func TestResolver(t *testing.T) {
	f := mustLoad(t, writeFile(t, "auth_data.yaml", `resource:
  - type: ec2
    auth_data: {accesskey: AK}
  - type: docker
    endpoint: tcp://127.0.0.1:2375
    auth_data: {}
  - type: docker
    endpoint: tcp://127.0.0.1:2375
    auth_data: {}
`, 0o600))
	tests := []struct {
		name     string
		f        *File
		resource map[string]any
		wantKey  string
		wantNil  bool
		wantErr  error
	}{
		{name: "selected", f: f, resource: map[string]any{"type": "ec2"}, wantKey: "accesskey"},
		{name: "optional type without an entry", f: f, resource: map[string]any{"type": "local"}, wantNil: true},
		{name: "required type without an entry", f: f, resource: map[string]any{"type": "nova"}, wantErr: ErrNoCredentials},
		{name: "ambiguous is an error even when optional", f: f, resource: map[string]any{"type": "docker", "endpoint": "tcp://127.0.0.1:2375"}, wantErr: ErrAmbiguousCredentials},
		{name: "no file, optional type", f: nil, resource: map[string]any{"type": "docker"}, wantNil: true},
		{name: "no file, required type", f: nil, resource: map[string]any{"type": "ec2"}, wantErr: ErrNoAuthFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Resolver(tt.f, NoCredentialTypes)(tt.resource)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			case err != nil:
				t.Fatalf("err = %v", err)
			case tt.wantNil:
				if c != nil {
					t.Fatalf("credentials = %v, want nil", c)
				}
			default:
				if _, ok := c.Get(tt.wantKey); !ok {
					t.Fatalf("credentials lack %q", tt.wantKey)
				}
			}
		})
	}
}
