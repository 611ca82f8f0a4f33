package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Environment variables that name the auth_data.yaml file.
const (
	// EnvSkyfleet is skyfleet's own variable; it wins over EnvOccopus.
	EnvSkyfleet = "SKYFLEET_AUTH_DATA"
	// EnvOccopus is honoured so that an existing Occopus set-up keeps working.
	EnvOccopus = "OCCOPUS_AUTH_DATA_PATH"
)

// ErrNoAuthFile means that no auth_data.yaml was named and none exists in the default
// locations. Callers whose resources need no credentials (local, sim, docker) may ignore it.
var ErrNoAuthFile = errors.New("no auth_data.yaml found")

// Find returns the path of the auth_data.yaml to use. The search order is: explicit (a
// command-line flag), $SKYFLEET_AUTH_DATA, $OCCOPUS_AUTH_DATA_PATH, ~/.occopus/auth_data.yaml,
// ./auth_data.yaml, /etc/occopus/auth_data.yaml. A file named by the flag or an environment
// variable must exist (a typo should not silently fall through to another file); the
// default locations are tried in order and the first existing one wins. When none exists,
// the error wraps ErrNoAuthFile and lists the places searched.
func Find(explicit string) (string, error) {
	named := []struct{ source, path string }{
		{"the --auth-data flag", explicit},
		{"$" + EnvSkyfleet, os.Getenv(EnvSkyfleet)},
		{"$" + EnvOccopus, os.Getenv(EnvOccopus)},
	}
	for _, n := range named {
		if n.path == "" {
			continue
		}
		fi, err := os.Stat(n.path)
		if err != nil {
			return "", fmt.Errorf("find auth data: %s names %s: %w", n.source, n.path, err)
		}
		if fi.IsDir() {
			return "", fmt.Errorf("find auth data: %s names %s, which is a directory", n.source, n.path)
		}
		return n.path, nil
	}
	var candidates []string
	if home, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(home, ".occopus", "auth_data.yaml"))
	}
	candidates = append(candidates, "auth_data.yaml", "/etc/occopus/auth_data.yaml")
	for _, c := range candidates {
		fi, err := os.Stat(c)
		if err == nil && !fi.IsDir() {
			return c, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("find auth data: %w", err)
		}
	}
	return "", fmt.Errorf("find auth data: %w (searched %s)", ErrNoAuthFile, strings.Join(candidates, ", "))
}
