package cli

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidate runs skyfleet validate as a user would and compares its whole output (exit
// status, stdout, stderr) with golden files in testdata/validate.
func TestValidate(t *testing.T) {
	const dir = "testdata/validate"
	example := "../../examples/autoscaling-ec2"
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"nodedefs", []string{dir + "/nodes.yaml"}, 0},
		{"infra-with-nodes", []string{dir + "/infra.yaml", "--nodes", dir + "/nodes.yaml"}, 0},
		{"infra-mismatch", []string{dir + "/infra_mismatch.yaml", "--nodes", dir + "/nodes.yaml"}, 1},
		{"errors", []string{dir + "/bad_infra.yaml", dir + "/nodes.yaml"}, 1},
		{"unknown-and-missing", []string{dir + "/cloud_init.yaml", dir + "/missing.yaml"}, 1},
		{"nodes-flag-wrong-kind", []string{dir + "/infra.yaml", "--nodes", dir + "/infra.yaml"}, 1},
		{"example-ec2", []string{example + "/infra.yaml", example + "/nodes/node_definitions.yaml", "--nodes", example + "/nodes/node_definitions.yaml"}, 0},
		{"no-args", nil, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"validate"}, tc.args...)
			code := Main(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit status %d, want %d\nstderr:\n%s", code, tc.code, stderr.String())
			}
			got := fmt.Sprintf("$ skyfleet %s\n-- exit status %d --\n-- stdout --\n%s-- stderr --\n%s",
				strings.Join(args, " "), code, stdout.String(), stderr.String())
			checkGolden(t, filepath.Join(dir, tc.name+".golden"), []byte(got))
		})
	}
}
