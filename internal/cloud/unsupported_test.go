package cloud

import (
	"errors"
	"testing"
)

func TestUnsupportedTypes(t *testing.T) {
	r := NewRegistry()
	if err := RegisterUnsupported(r); err != nil {
		t.Fatalf("RegisterUnsupported: %v", err)
	}
	for _, typ := range []string{"azure_vm", "azure_aci", "cloudbroker", "cloudsigma"} {
		t.Run(typ, func(t *testing.T) {
			creds := NewCredentials(map[string]any{"client_secret": "s3cr3t-value"})
			p, err := r.Bind(map[string]any{"type": typ, "endpoint": "https://example.invalid"}, creds)
			if p != nil {
				t.Errorf("Bind returned a provider for %s", typ)
			}
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Bind error %v does not wrap ErrUnsupported", err)
			}
			want := `resource type "` + typ + `" is recognised but skyfleet does not support it yet (supported: local, sim, docker, ec2, nova)`
			if err.Error() != want {
				t.Errorf("Bind error =\n%s\nwant\n%s", err, want)
			}
		})
	}
	// The supported types stay free for their own drivers, and a second registration of
	// the unsupported ones is refused rather than silently replacing them.
	if err := r.Register("ec2", Unsupported{Type: "ec2"}); err != nil {
		t.Errorf("register ec2 after RegisterUnsupported: %v", err)
	}
	if err := RegisterUnsupported(r); err == nil {
		t.Error("second RegisterUnsupported succeeded; want a duplicate registration error")
	}
	if _, err := r.Driver("azure_vm"); err != nil {
		t.Errorf("Driver(azure_vm): %v", err)
	}
}
