package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAutoscalingDocker runs the same scenario with the application cluster and the object
// store as containers on the Docker engine (examples/autoscaling-docker), from an image built
// FROM scratch with the static binary under test.
func TestAutoscalingDocker(t *testing.T) {
	requirePrograms(t, "go", "docker")
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		if os.Getenv("SKYFLEET_REQUIRE_INTEGRATION") != "" {
			t.Fatalf("the Docker engine does not answer: %v: %s", err, out)
		}
		t.Skipf("the Docker engine does not answer (%v); set SKYFLEET_REQUIRE_INTEGRATION to make this a failure", err)
	}
	scenario{
		dir:            "examples/autoscaling-docker",
		readyWithin:    3 * time.Minute,
		scaleOutWithin: 3 * time.Minute,
		scaleInWithin:  3 * time.Minute,
		concurrency:    8,
		objectSize:     "32M",
		minLocal:       2, // lb and monitor
		before: func(t *testing.T, bin string) {
			cmd := exec.Command(filepath.Join(repoRoot(), "examples", "autoscaling-docker", "build-image.sh"))
			cmd.Env = append(os.Environ(), "SKYFLEET_BIN="+bin)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("build-image.sh: %v\n%s", err, out)
			}
		},
		after: func(t *testing.T, infraID string) {
			out, err := exec.Command("docker", "ps", "-a", "-q", "--filter", "label=skyfleet-infra-id="+infraID).CombinedOutput()
			if err != nil {
				t.Fatalf("docker ps: %v: %s", err, out)
			}
			if s := strings.TrimSpace(string(out)); s != "" {
				t.Errorf("containers of the infrastructure left after up exited: %s", s)
			}
		},
	}.run(t)
}
