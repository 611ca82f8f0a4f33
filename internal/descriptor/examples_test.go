package descriptor_test

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/template"
)

const examplesDir = "../../examples"

// TestExamplesValidate checks every example: each YAML file that is a node definition file
// or an infrastructure descriptor must validate, and each infrastructure must pass
// CheckInfra against its directory's nodes/node_definitions.yaml.
func TestExamplesValidate(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(examplesDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, dir := range dirs {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			var infras []string
			err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
					return err
				}
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				switch descriptor.DetectKind(data) {
				case descriptor.KindNodeDefs:
					checked++
					if _, _, err := descriptor.LoadNodeDefsFile(path); err != nil {
						t.Errorf("%s:\n%v", path, err)
					}
				case descriptor.KindInfra:
					checked++
					infras = append(infras, path)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, path := range infras {
				in, _, err := descriptor.LoadInfraFile(path)
				if err != nil {
					t.Errorf("%s:\n%v", path, err)
					continue
				}
				nodes := filepath.Join(filepath.Dir(path), "nodes", "node_definitions.yaml")
				defs, _, err := descriptor.LoadNodeDefsFile(nodes)
				if err != nil {
					t.Errorf("%s:\n%v", nodes, err)
					continue
				}
				if err := defs.CheckInfra(in); err != nil {
					t.Errorf("%s against %s:\n%v", path, nodes, err)
				}
			}
		})
	}
	if checked == 0 {
		t.Fatal("no example descriptor found")
	}
}

type fakeLookup map[string]string

func (f fakeLookup) Instances(node string) []template.NodeAddress {
	if a, ok := f[node]; ok {
		return []template.NodeAddress{{Address: a}}
	}
	return nil
}

// TestEC2ExampleRenders renders every cloud-init template of the EC2 example strictly (an
// undefined variable fails) and checks what the VMs will actually run: literal braces meant
// for Prometheus survive, and skyfleet's values are filled in.
func TestEC2ExampleRenders(t *testing.T) {
	dir := filepath.Join(examplesDir, "autoscaling-ec2")
	in, _, err := descriptor.LoadInfraFile(filepath.Join(dir, "infra.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defs, _, err := descriptor.LoadNodeDefsFile(filepath.Join(dir, "nodes", "node_definitions.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r := template.New(template.Options{Strict: true})
	lookup := fakeLookup{"db": "127.0.0.10", "app": "127.0.0.20", "prometheus": "127.0.0.30", "lb": "127.0.0.40"}
	want := map[string][]string{
		"db": {"CREATE DATABASE app OWNER app;", "host app app 10.0.0.0/16 scram-sha-256"},
		"prometheus": {
			"url: 'http://skyfleet.example.org:8080/v1/sd/prometheus?infra_id=00000000-1111-2222-3333-444444444444'",
			`summary: "app cluster CPU at {{ $value | printf \"%.0f\" }}%"`,
			`labels: {alert: underloaded, node: app, infra_id: "00000000-1111-2222-3333-444444444444"}`,
			"url: 'http://skyfleet.example.org:8080/v1/alerts/alertmanager'",
		},
		"app": {
			"SKYFLEET_DB=postgres://app:change-me@127.0.0.10:5432/app",
			"http://skyfleet.example.org:8080/v1/binary/skyfleet",
			"skyfleet app --listen 0.0.0.0:8080",
		},
		"lb": {"skyfleet lb --engine haproxy --listen 0.0.0.0:80 --metrics-listen 0.0.0.0:9101 --server http://skyfleet.example.org:8080 --infra 00000000-1111-2222-3333-444444444444 --backend app --backend-port 8080"},
	}
	for _, n := range in.Nodes {
		t.Run(n.Name, func(t *testing.T) {
			im, err := defs[n.Type].Select(n.Filter, nil)
			if err != nil {
				t.Fatal(err)
			}
			out, warns, err := r.CloudInit(n.Name, im.Contextualisation["context_template"], &template.Context{
				InfraID: "00000000-1111-2222-3333-444444444444", InfraName: in.Name, UserID: in.UserID,
				NodeID: "55555555-6666-7777-8888-999999999999", Name: n.Name, Type: n.Type,
				Variables: n.Variables, Lookup: lookup,
			})
			if err != nil {
				var es descriptor.Errors
				if errors.As(err, &es) {
					t.Fatal(es)
				}
				t.Fatal(err)
			}
			if len(warns) > 0 {
				t.Errorf("warnings: %v", warns)
			}
			if !strings.HasPrefix(out, "#cloud-config\n") {
				t.Errorf("output does not start with #cloud-config:\n%s", out)
			}
			for _, w := range want[n.Name] {
				if !strings.Contains(out, w) {
					t.Errorf("rendered cloud-init lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "{%") || strings.Contains(out, "{{'") {
				t.Errorf("template syntax left in the output:\n%s", out)
			}
			checkWrittenFiles(t, out)
		})
	}
}

// checkWrittenFiles parses the configuration files a rendered cloud-config writes: every
// *.yml must be YAML, and Prometheus rule files must pass Prometheus' own rule checks.
func checkWrittenFiles(t *testing.T, cloudConfig string) {
	t.Helper()
	var cc struct {
		WriteFiles []struct {
			Path    string `yaml:"path"`
			Content string `yaml:"content"`
		} `yaml:"write_files"`
	}
	if err := yaml.Unmarshal([]byte(cloudConfig), &cc); err != nil {
		t.Fatalf("rendered cloud-config: %v", err)
	}
	for _, f := range cc.WriteFiles {
		if !strings.HasSuffix(f.Path, ".yml") {
			continue
		}
		var v any
		if err := yaml.Unmarshal([]byte(f.Content), &v); err != nil {
			t.Errorf("%s: %v", f.Path, err)
		}
		if strings.Contains(f.Path, "rules") {
			_, errs := rulefmt.Parse([]byte(f.Content), false, model.UTF8Validation,
				parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
			for _, err := range errs {
				t.Errorf("%s: %v", f.Path, err)
			}
		}
	}
}
