package e2e

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skyfleet/skyfleet/internal/cli"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestCloudExamplesRender")

// TestCloudExamplesRender validates the cloud examples and renders every node's instance
// with `skyfleet render`, comparing the resource, the cloud-init user data and the
// health-check URLs with golden files (go test ./internal/e2e -run Render -update rewrites
// them). Every dependency's address is given with --ip, and undefined variables are errors.
func TestCloudExamplesRender(t *testing.T) {
	ips := []string{"--ip", "db=192.168.0.10", "--ip", "prometheus=192.168.0.11",
		"--ip", "app=192.168.0.20", "--ip", "app=192.168.0.21", "--ip", "lb=192.168.0.30"}
	for _, ex := range []struct {
		dir   string
		nodes []string
	}{
		{"autoscaling-ec2", []string{"db", "prometheus", "app", "lb"}},
		{"autoscaling-nova", []string{"db", "prometheus", "app", "lb"}},
	} {
		dir := filepath.Join("..", "..", "examples", ex.dir)
		defs := filepath.Join(dir, "nodes", "node_definitions.yaml")
		infra := filepath.Join(dir, "infra.yaml")
		t.Run(ex.dir+"/validate", func(t *testing.T) {
			out, errOut, code := runMain(t, "validate", infra, "--nodes", defs)
			if code != 0 || !strings.Contains(out, "every filter matches an implementation") {
				t.Fatalf("validate: exit %d\n%s\n%s", code, out, errOut)
			}
			if strings.Contains(errOut, "template") || strings.Contains(errOut, "unknown key") {
				t.Errorf("validate warns:\n%s", errOut)
			}
		})
		for _, n := range ex.nodes {
			t.Run(ex.dir+"/"+n, func(t *testing.T) {
				args := append([]string{"render", "--nodes", defs, "--infra", infra, "--node", n,
					"--strict", "--infra-id", "0badcafe-0000-4000-8000-000000000001",
					"--node-id", "0badcafe-0000-4000-8000-0000000000" + nodeSuffix(n), "--self-ip", "192.168.0.99"}, ips...)
				out, errOut, code := runMain(t, args...)
				if code != 0 {
					t.Fatalf("render: exit %d\n%s", code, errOut)
				}
				// Descriptor warnings (a node without a scaling section) may appear; a
				// template warning may not.
				if strings.Contains(errOut, "template") {
					t.Errorf("render warned about a template:\n%s", errOut)
				}
				golden := filepath.Join("testdata", "render", ex.dir, n+".yaml")
				if *update {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if out != string(want) {
					t.Errorf("render of %s differs from %s (run with -update after checking):\n%s", n, golden, out)
				}
			})
		}
	}
}

// nodeSuffix gives each node a distinct, fixed node id.
func nodeSuffix(n string) string {
	return map[string]string{"db": "01", "prometheus": "02", "app": "03", "lb": "04"}[n]
}

// runMain runs the skyfleet command line in this process.
func runMain(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}
