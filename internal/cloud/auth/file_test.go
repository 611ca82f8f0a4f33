package auth

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/cloud"
)

func mustLoad(t *testing.T, path string, opts ...Option) *File {
	t.Helper()
	f, err := LoadFile(path, opts...)
	if err != nil {
		t.Fatalf("LoadFile(%s): %v", path, err)
	}
	return f
}

func get(t *testing.T, c *cloud.Credentials, key string) string {
	t.Helper()
	v, ok := c.Get(key)
	if !ok {
		t.Fatalf("credential %q missing (have %v)", key, c.Keys())
	}
	return v
}

func TestSelectMatchesOccopusRule(t *testing.T) {
	f := mustLoad(t, "testdata/good.yaml")
	tests := []struct {
		name     string
		section  string
		resource map[string]any
		key      string
		want     string
	}{
		{
			name:    "endpoint filter picks the region",
			section: SectionResource,
			resource: map[string]any{"type": "ec2", "endpoint": "https://ec2.us-east-1.amazonaws.com",
				"regionname": "us-east-1", "image_id": "ami-1", "instance_type": "t3.micro"},
			key: "accesskey", want: "AKIAUSEAST",
		},
		{
			name:    "number filter matches int and float resource values by value",
			section: SectionResource,
			resource: map[string]any{"type": "nova", "endpoint": "https://keystone.example:5000/v3",
				"project_id": 42.0, "image_id": "img", "flavor_name": "m1.small"},
			key: "id", want: "appcred-id",
		},
		{
			name:    "text_import resolved relative to the file",
			section: SectionResource,
			resource: map[string]any{"type": "nova", "endpoint": "https://keystone.example:5000/v3",
				"project_id": int64(42)},
			key: "secret", want: "nova-app-secret",
		},
		{
			name:    "list filter compares element-wise across slice types",
			section: SectionResource,
			resource: map[string]any{"type": "cloudsigma", "endpoint": "https://zrh.cloudsigma.com/api/2.0",
				"security_groups": []string{"web", "ssh"}},
			key: "email", want: "ops@example.org",
		},
		{
			name:     "config_management section",
			section:  SectionConfigManagement,
			resource: map[string]any{"type": "chef", "endpoint": "https://chef.example"},
			key:      "client_key", want: "-----BEGIN KEY-----\nabc\n-----END KEY-----\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := f.Select(tt.section, tt.resource)
			if err != nil {
				t.Fatalf("Select: %v", err)
			}
			if got := get(t, c, tt.key); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.key, got, tt.want)
			}
		})
	}
}

func TestSelectEmptyAuthData(t *testing.T) {
	f := mustLoad(t, "testdata/good.yaml")
	c, err := f.Select(SectionResource, map[string]any{"type": "docker", "endpoint": "unix:///var/run/docker.sock"})
	if err != nil {
		t.Fatalf("Select: %v", err)
	}
	if len(c.Keys()) != 0 {
		t.Errorf("keys = %v, want none", c.Keys())
	}
}

func TestSelectErrors(t *testing.T) {
	f := mustLoad(t, "testdata/good.yaml")
	tests := []struct {
		name     string
		section  string
		resource map[string]any
		is       error
		contains []string
	}{
		{
			name:     "no entry for the type",
			section:  SectionResource,
			resource: map[string]any{"type": "azure_vm", "endpoint": "https://management.azure.com", "location": "westeurope"},
			is:       ErrNoCredentials,
			contains: []string{"no credentials in testdata/good.yaml match resource {type: azure_vm, endpoint: https://management.azure.com, location: westeurope}"},
		},
		{
			name:     "same type, other endpoint names the differing key",
			section:  SectionResource,
			resource: map[string]any{"type": "ec2", "endpoint": "https://ec2.ap-south-1.amazonaws.com", "regionname": "ap-south-1"},
			is:       ErrNoCredentials,
			contains: []string{"regionname: ap-south-1", "line 2 differs in endpoint", "line 7 differs in endpoint"},
		},
		{
			name:     "filter key missing from the resource",
			section:  SectionResource,
			resource: map[string]any{"type": "nova", "endpoint": "https://keystone.example:5000/v3"},
			is:       ErrNoCredentials,
			contains: []string{"line 12 differs in project_id"},
		},
		{
			name:     "unknown section",
			section:  "resources",
			resource: map[string]any{"type": "ec2"},
			contains: []string{`unknown section "resources" (allowed: config_management, resource)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.Select(tt.section, tt.resource)
			if err == nil {
				t.Fatal("Select succeeded, want error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestSelectAmbiguousNamesLines(t *testing.T) {
	path := writeFile(t, "auth_data.yaml", `resource:
  - type: ec2
    auth_data: {accesskey: a1, secretkey: s3cr3t-VALUE}
  - type: nova
    auth_data: {username: u, password: p}
  - endpoint: https://ec2.eu-west-1.amazonaws.com
    auth_data: {accesskey: a2, secretkey: s3cr3t-VALUE}
`, 0o600)
	f := mustLoad(t, path)
	_, err := f.Select(SectionResource, map[string]any{"type": "ec2", "endpoint": "https://ec2.eu-west-1.amazonaws.com"})
	if !errors.Is(err, ErrAmbiguousCredentials) {
		t.Fatalf("err = %v, want ErrAmbiguousCredentials", err)
	}
	if !strings.Contains(err.Error(), "(lines 2, 6)") {
		t.Errorf("error %q does not name lines 2 and 6", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error leaks a secret: %q", err)
	}
	// An entry without filter keys matches every resource, as in Occopus.
	c, err := f.Select(SectionResource, map[string]any{"type": "nova", "endpoint": "https://k"})
	if err != nil {
		t.Fatalf("Select nova: %v", err)
	}
	if get(t, c, "username") != "u" {
		t.Errorf("selected the wrong entry")
	}
}

func TestLoadFileBadFixtures(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"not_mapping.yaml", []string{"not_mapping.yaml:1:1: top level must be a mapping"}},
		{"unknown_section.yaml", []string{`unknown_section.yaml:1:1: unknown key "resources" (allowed: config_management, resource)`}},
		{"section_not_list.yaml", []string{"section_not_list.yaml:2:3: resource: must be a list"}},
		{"missing_auth.yaml", []string{"missing_auth.yaml:2:5: resource[0]: missing auth_data"}},
		{"auth_scalar.yaml", []string{"auth_scalar.yaml:3:16: resource[0]: auth_data must be a mapping"}},
		{"import_missing.yaml", []string{"import_missing.yaml:4:15: resource[0]: auth_data: !text_import", "absent.txt", "no such file"}},
		{"import_scheme.yaml", []string{"import_scheme.yaml:4:15: resource[0]: auth_data: !text_import url \"https://example.org/secret\": only the file:// scheme is supported"}},
		{"duplicate_key.yaml", []string{`duplicate_key.yaml:3:5: resource[0]: key "type" appears twice`}},
		{"syntax.yaml", []string{"parse auth data: testdata/bad/syntax.yaml:3: did not find expected '-' indicator"}},
		{"several.yaml", []string{
			"several.yaml:2:5: resource[0]: missing auth_data",
			"several.yaml:3:16: resource[1]: auth_data must be a mapping",
			`several.yaml:4:1: unknown key "clouds"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := LoadFile(filepath.Join("testdata", "bad", tt.file))
			if err == nil {
				t.Fatal("LoadFile succeeded, want error")
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q\ndoes not contain %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t-VALUE") {
				t.Errorf("error leaks a secret: %q", err)
			}
		})
	}
}

func TestEmptyFileHasNoCredentials(t *testing.T) {
	f := mustLoad(t, writeFile(t, "auth_data.yaml", "", 0o600))
	_, err := f.Select(SectionResource, map[string]any{"type": "ec2"})
	if !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("err = %v, want ErrNoCredentials", err)
	}
}

func TestYAMLImport(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeAt(t, filepath.Join(dir, "sub", "ec2.yaml"), "accesskey: AK\nsecretkey: !text_import {url: file://key.txt}\n")
	writeAt(t, filepath.Join(dir, "sub", "key.txt"), "from-sub-dir")
	path := filepath.Join(dir, "auth_data.yaml")
	writeAt(t, path, "resource:\n  - type: ec2\n    auth_data: !yaml_import {url: file://sub/ec2.yaml}\n")
	f := mustLoad(t, path)
	c, err := f.Select(SectionResource, map[string]any{"type": "ec2"})
	if err != nil {
		t.Fatalf("Select: %v", err)
	}
	if got := get(t, c, "secretkey"); got != "from-sub-dir" {
		t.Errorf("secretkey = %q, want the text imported relative to the imported file", got)
	}
}

func TestReloadsWhenFileChanges(t *testing.T) {
	path := writeFile(t, "auth_data.yaml", "resource:\n  - type: ec2\n    auth_data: {accesskey: OLD}\n", 0o600)
	f := mustLoad(t, path)
	res := map[string]any{"type": "ec2"}
	c, err := f.Select(SectionResource, res)
	if err != nil || get(t, c, "accesskey") != "OLD" {
		t.Fatalf("first Select = %v, %v", c, err)
	}
	// Same size, new mtime: the stamp must notice it.
	writeAt(t, path, "resource:\n  - type: ec2\n    auth_data: {accesskey: NEW}\n")
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
	c, err = f.Select(SectionResource, res)
	if err != nil || get(t, c, "accesskey") != "NEW" {
		t.Fatalf("after edit Select = %v, %v; want the new key", c, err)
	}
	// A broken edit is reported, not papered over with the old content.
	writeAt(t, path, "resource: [\n")
	if _, err := f.Select(SectionResource, res); err == nil {
		t.Fatal("Select after a broken edit succeeded")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Select(SectionResource, res); err == nil {
		t.Fatal("Select after removal succeeded")
	}
}

func TestPermissionWarning(t *testing.T) {
	tests := []struct {
		name string
		mode os.FileMode
		warn bool
	}{
		{"owner only", 0o600, false},
		{"group readable", 0o640, true},
		{"world readable", 0o644, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&buf, nil))
			path := writeFile(t, "auth_data.yaml", "resource:\n  - type: ec2\n    auth_data: {secretkey: s3cr3t-VALUE}\n", tt.mode)
			f := mustLoad(t, path, WithLogger(logger))
			if _, err := f.Select(SectionResource, map[string]any{"type": "ec2"}); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			if got := strings.Contains(out, "accessible by other users"); got != tt.warn {
				t.Fatalf("warned = %v, want %v; log: %s", got, tt.warn, out)
			}
			if tt.warn {
				for _, s := range []string{"file=" + path, fmt.Sprintf("mode=%#o", uint32(tt.mode))} {
					if !strings.Contains(out, s) {
						t.Errorf("log %q does not contain %q", out, s)
					}
				}
				if strings.Count(out, "accessible by other users") != 1 {
					t.Errorf("warned more than once for an unchanged file: %s", out)
				}
			}
			if strings.Contains(out, "s3cr3t") {
				t.Errorf("log leaks a secret: %s", out)
			}
		})
	}
}

func writeFile(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask may have narrowed it
		t.Fatal(err)
	}
	return path
}

func writeAt(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestImportLoopIsAnError(t *testing.T) {
	path := writeFile(t, "auth_data.yaml", "resource:\n  - type: ec2\n    auth_data: !yaml_import {url: file://auth_data.yaml}\n", 0o600)
	_, err := LoadFile(path)
	if err == nil || !strings.Contains(err.Error(), "auth_data.yaml:3:16: resource[0]: auth_data:") || !strings.Contains(err.Error(), "an import loop?") {
		t.Fatalf("err = %v, want an import-loop error at 3:16", err)
	}
}
