package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindSearchOrder(t *testing.T) {
	root := t.TempDir()
	home := filepath.Join(root, "home")
	cwd := filepath.Join(root, "cwd")
	flag := filepath.Join(root, "flag.yaml")
	skyEnv := filepath.Join(root, "sky.yaml")
	occEnv := filepath.Join(root, "occ.yaml")
	homeFile := filepath.Join(home, ".occopus", "auth_data.yaml")
	for _, d := range []string{filepath.Dir(homeFile), cwd} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{flag, skyEnv, occEnv, homeFile, filepath.Join(cwd, "auth_data.yaml")} {
		writeAt(t, p, "resource: []\n")
	}
	t.Chdir(cwd)
	t.Setenv("HOME", home)

	tests := []struct {
		name      string
		explicit  string
		sky, occ  string
		rmHome    bool
		want      string
		wantErrIs error
		wantErr   string
	}{
		{name: "flag wins", explicit: flag, sky: skyEnv, occ: occEnv, want: flag},
		{name: "skyfleet env next", sky: skyEnv, occ: occEnv, want: skyEnv},
		{name: "occopus env next", occ: occEnv, want: occEnv},
		{name: "home default", want: homeFile},
		{name: "working directory after home", rmHome: true, want: "auth_data.yaml"},
		{name: "named file must exist", explicit: filepath.Join(root, "typo.yaml"), sky: skyEnv,
			wantErr: "the --auth-data flag names " + filepath.Join(root, "typo.yaml")},
		{name: "env file must exist", sky: filepath.Join(root, "nope.yaml"),
			wantErr: "$SKYFLEET_AUTH_DATA names " + filepath.Join(root, "nope.yaml")},
		{name: "directory is refused", occ: root, wantErr: "which is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvSkyfleet, tt.sky)
			t.Setenv(EnvOccopus, tt.occ)
			if tt.rmHome {
				if err := os.Rename(homeFile, homeFile+".off"); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = os.Rename(homeFile+".off", homeFile) })
			}
			got, err := Find(tt.explicit)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Find = %q, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Find = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestFindNothing(t *testing.T) {
	if _, err := os.Stat("/etc/occopus/auth_data.yaml"); err == nil {
		t.Skip("/etc/occopus/auth_data.yaml exists on this machine")
	}
	t.Chdir(t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Setenv(EnvSkyfleet, "")
	t.Setenv(EnvOccopus, "")
	_, err := Find("")
	if !errors.Is(err, ErrNoAuthFile) {
		t.Fatalf("err = %v, want ErrNoAuthFile", err)
	}
	if !strings.Contains(err.Error(), "/etc/occopus/auth_data.yaml") {
		t.Errorf("error %q does not list the places searched", err)
	}
}
