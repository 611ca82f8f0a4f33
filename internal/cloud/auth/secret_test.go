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

	"github.com/skyfleet/skyfleet/internal/cloud"
)

const secret = "s3cr3t-VALUE"

// TestSecretNeverLeaks loads files holding a secret and drives every error path of the
// package, asserting that the secret appears neither in an error text nor in the log.
func TestSecretNeverLeaks(t *testing.T) {
	var logBuf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := t.TempDir()
	writeAt(t, filepath.Join(dir, "secret.txt"), secret)
	good := filepath.Join(dir, "auth_data.yaml")
	writeAt(t, good, fmt.Sprintf(`resource:
  - type: ec2
    auth_data: {accesskey: AKIA-%[1]s, secretkey: %[1]s}
  - type: ec2
    endpoint: https://ec2.eu-west-1.amazonaws.com
    auth_data: {accesskey: AKIA2, secretkey: %[1]s}
  - type: nova
    project_id: p1
    auth_data:
      password: !text_import {url: file://secret.txt}
`, secret))
	if err := os.Chmod(good, 0o644); err != nil { // also exercise the permission warning
		t.Fatal(err)
	}

	var errs []error
	collect := func(err error) {
		if err == nil {
			t.Errorf("expected an error")
			return
		}
		errs = append(errs, err)
	}
	f, err := LoadFile(good, WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Select(SectionResource, map[string]any{"type": "ec2", "endpoint": "https://ec2.eu-west-1.amazonaws.com"})
	collect(err) // ambiguous
	if !errors.Is(err, ErrAmbiguousCredentials) {
		t.Errorf("want ambiguous, got %v", err)
	}
	_, err = f.Select(SectionResource, map[string]any{"type": "nova", "project_id": "p2", "password": secret})
	collect(err) // no match, near miss; the resource itself carries a key whose value is secret
	_, err = f.Select(SectionResource, map[string]any{"type": "gce"})
	collect(err) // no match at all
	_, err = f.Select("secrets", map[string]any{"type": "ec2"})
	collect(err) // unknown section

	badFiles := map[string]string{
		"scalar_auth.yaml":   "resource:\n  - type: ec2\n    auth_data: " + secret + "\n",
		"list_auth.yaml":     "resource:\n  - type: ec2\n    auth_data: [" + secret + "]\n",
		"int_keys.yaml":      "resource:\n  - type: ec2\n    auth_data: {[a]: " + secret + "}\n",
		"dup_auth_key.yaml":  "resource:\n  - type: ec2\n    auth_data: {secretkey: " + secret + ", secretkey: " + secret + "}\n",
		"syntax.yaml":        "resource:\n  - type: ec2\n    auth_data: {secretkey: " + secret + "\n",
		"tab.yaml":           "resource:\n\t- auth_data: " + secret + "\n",
		"missing_auth.yaml":  "resource:\n  - type: ec2\n    secretkey: x\n",
		"top_scalar.yaml":    secret + "\n",
		"section_str.yaml":   "resource: " + secret + "\n",
		"entry_scalar.yaml":  "resource:\n  - " + secret + "\n",
		"import_bad.yaml":    "resource:\n  - type: ec2\n    auth_data: {secretkey: !text_import {url: file://nope}}\n",
		"unknown_key.yaml":   "creds:\n  - " + secret + "\n",
		"yaml_import_x.yaml": "resource:\n  - type: ec2\n    auth_data: !yaml_import {url: file://secret.txt}\n",
	}
	for name, content := range badFiles {
		p := filepath.Join(dir, name)
		writeAt(t, p, content)
		_, err := LoadFile(p, WithLogger(logger))
		collect(err)
	}

	// A file that breaks after loading, then disappears.
	writeAt(t, good, "resource:\n  - type: ec2\n    auth_data: "+secret+"\n")
	_, err = f.Select(SectionResource, map[string]any{"type": "ec2"})
	collect(err)
	if err := os.Remove(good); err != nil {
		t.Fatal(err)
	}
	_, err = f.Select(SectionResource, map[string]any{"type": "ec2"})
	collect(err)

	t.Setenv(EnvSkyfleet, filepath.Join(dir, "absent-"+"auth.yaml"))
	_, err = Find("")
	collect(err)

	for _, err := range errs {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks the secret: %q", err)
		}
		if strings.Contains(fmt.Sprintf("%+v %#v", err, err), secret) {
			t.Errorf("formatted error leaks the secret: %v", err)
		}
	}
	if !strings.Contains(logBuf.String(), "accessible by other users") {
		t.Errorf("the permission warning was not logged: %s", logBuf.String())
	}
	if strings.Contains(logBuf.String(), secret) {
		t.Errorf("log leaks the secret: %s", logBuf.String())
	}
	if len(errs) < 15 {
		t.Errorf("only %d error paths exercised", len(errs))
	}
}

func TestCredentialsFormatRedacted(t *testing.T) {
	path := writeFile(t, "auth_data.yaml", "resource:\n  - auth_data: {secretkey: "+secret+"}\n", 0o600)
	f := mustLoad(t, path)
	c, err := f.Select(SectionResource, map[string]any{"type": "ec2"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), fmt.Errorf("wrap %v", c).Error()} {
		if strings.Contains(s, secret) {
			t.Errorf("formatted credentials leak: %q", s)
		}
	}
}

func TestRedact(t *testing.T) {
	creds := cloud.NewCredentials(map[string]any{
		"accesskey": "AKIAIOSFODNN7EXAMPLE",
		"secretkey": "wJalr/K7MDENG+bPxRfi",
		"short":     "eu1",
		"num":       123456,
	})
	other := cloud.NewCredentials(map[string]any{"password": "p@ss word"})
	tests := []struct {
		name, in, want string
	}{
		{"access key echoed", "AuthFailure: AWS was not able to validate the provided access credentials AKIAIOSFODNN7EXAMPLE",
			"AuthFailure: AWS was not able to validate the provided access credentials [redacted]"},
		{"url-encoded secret", "GET /?Signature=x&key=wJalr%2FK7MDENG%2BbPxRfi failed", "GET /?Signature=x&key=[redacted] failed"},
		{"several credentials", "user p@ss word, key AKIAIOSFODNN7EXAMPLE", "user [redacted], key [redacted]"},
		{"numbers are values too", "id 123456 refused", "id [redacted] refused"},
		{"short values left alone", "region eu1 unknown", "region eu1 unknown"},
		{"nothing to scrub", "connection refused", "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Redact(tt.in, creds, other, nil); got != tt.want {
				t.Errorf("Redact = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRedactError(t *testing.T) {
	creds := cloud.NewCredentials(map[string]any{"secretkey": secret})
	base := errors.New("signature " + secret + " rejected")
	err := RedactError(fmt.Errorf("create instance: %w", base), creds)
	if strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "signature [redacted] rejected") {
		t.Errorf("RedactError = %q", err)
	}
	if !errors.Is(err, base) {
		t.Errorf("RedactError lost the wrapped error")
	}
	if RedactError(nil, creds) != nil {
		t.Errorf("RedactError(nil) != nil")
	}
}
