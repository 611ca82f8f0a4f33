package descriptor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func goodPath(p string) string { return filepath.Join("testdata", "good", p) }

func mustNodeDefs(t *testing.T, path string) NodeDefs {
	t.Helper()
	defs, _, err := LoadNodeDefsFile(path)
	if err != nil {
		t.Fatalf("load %s:\n%v", path, err)
	}
	return defs
}

func mustInfra(t *testing.T, path string) (*Infra, []Warning) {
	t.Helper()
	in, warns, err := LoadInfraFile(path)
	if err != nil {
		t.Fatalf("load %s:\n%v", path, err)
	}
	return in, warns
}

// TestGoodFixtures loads each pair of good fixtures, checks them against each other and
// asserts what a user relies on: levels, merged variables, resolved imports and anchors.
func TestGoodFixtures(t *testing.T) {
	tests := []struct {
		name   string
		nodes  string
		infra  string
		levels [][]string
		check  func(t *testing.T, defs NodeDefs, in *Infra)
	}{
		{
			name:   "dataavenue ec2 cloudinit imports anchors",
			nodes:  "dataavenue/nodes/node_definitions.yaml",
			infra:  "dataavenue/infra_as_dataavenue.yaml",
			levels: [][]string{{"db"}, {"prometheus", "da"}, {"lb"}},
			check: func(t *testing.T, defs NodeDefs, in *Infra) {
				prom := defs["prometheus"].Impls[0]
				if got := prom.Resource["instance_type"]; got != "t2.medium" {
					t.Errorf("merge key: prometheus instance_type = %v, want t2.medium", got)
				}
				if got := prom.Resource["image_id"]; got != "ami-12345678" {
					t.Errorf("merge key: prometheus image_id = %v, want the anchored ami-12345678", got)
				}
				tmpl, ok := defs["da"].Impls[0].Contextualisation["context_template"].(map[string]any)
				if !ok {
					t.Fatalf("da context_template = %T, want the imported mapping", defs["da"].Impls[0].Contextualisation["context_template"])
				}
				if got := tmpl["packages"]; !reflect.DeepEqual(got, []any{"tomcat7"}) {
					t.Errorf("da packages = %v", got)
				}
				lb, _ := in.Node("lb")
				if lb.Scaling.Min != 1 || lb.Scaling.Max != 5 || lb.Level != 2 || !slices.Equal(lb.DependsOn, []string{"da"}) {
					t.Errorf("lb = %+v", lb)
				}
				db, _ := in.Node("db")
				if db.Scaling.Min != 1 || db.Scaling.Max != 1 || db.Scaling.MinSet {
					t.Errorf("db scaling = %+v, want the default 1..1", db.Scaling)
				}
				want := []Dependency{{"da", "db"}, {"lb", "da"}, {"prometheus", "db"}}
				if !reflect.DeepEqual(in.Dependencies, want) {
					t.Errorf("dependencies = %v, want %v", in.Dependencies, want)
				}
				if in.UserID != "someone@example.com" || in.Name != "autoscale-dataavenue" {
					t.Errorf("user_id, infra_name = %q, %q", in.UserID, in.Name)
				}
				if got := db.Variables["consul_host"]; got != "db" {
					t.Errorf("db variables consul_host = %v", got)
				}
			},
		},
		{
			name:   "nova with health_check",
			nodes:  "nova/node_definitions.yaml",
			infra:  "nova/infra.yaml",
			levels: [][]string{{"jupyter"}},
			check: func(t *testing.T, defs NodeDefs, _ *Infra) {
				im := defs["jupyter"].Impls[0]
				if got := im.HealthCheck["ports"]; !reflect.DeepEqual(got, []any{8888}) {
					t.Errorf("ports = %#v", got)
				}
				if got := im.Resource["server_name"]; got != "jupyterlab-{{cut(infra_id,0,4)}}" {
					t.Errorf("server_name = %v: templates must be kept as written", got)
				}
			},
		},
		{
			name:   "docker",
			nodes:  "docker/node_definitions.yaml",
			infra:  "docker/infra.yaml",
			levels: [][]string{{"helloworld"}},
			check: func(t *testing.T, defs NodeDefs, in *Infra) {
				im := defs["helloworld_node"].Impls[0]
				if im.ResourceType() != "docker" || im.ContextType() != "docker" {
					t.Errorf("types = %s/%s", im.ResourceType(), im.ContextType())
				}
				if s := in.Nodes[0].Scaling; s.Min != 0 || s.Max != 3 || !s.MinSet {
					t.Errorf("scaling = %+v, want an explicit 0..3", s)
				}
			},
		},
		{
			name:   "hadoop text imports",
			nodes:  "hadoop/nodes/node_definitions.yaml",
			infra:  "hadoop/infra_as_hadoop.yaml",
			levels: [][]string{{"hadoop-master", "hadoop-slave"}},
			check: func(t *testing.T, defs NodeDefs, _ *Infra) {
				tmpl, _ := defs["hadoop_master_node"].Impls[0].Contextualisation["context_template"].(string)
				if !strings.HasPrefix(tmpl, "#cloud-config\n") || !strings.Contains(tmpl, "{% raw %}") {
					t.Errorf("text import = %q, want the file's text as is", tmpl)
				}
				if got := defs["hadoop_master_node"].Impls[0].HealthCheck["ping"]; got != true {
					t.Errorf("ping = %#v, want true", got)
				}
			},
		},
		{
			name:   "filters",
			nodes:  "filters/node_definitions.yaml",
			infra:  "filters/infra.yaml",
			levels: [][]string{{"small", "any-ec2"}, {"large"}},
		},
		{
			name:   "skyfleet extensions",
			nodes:  "skyfleet/node_definitions.yaml",
			infra:  "skyfleet/infra.yaml",
			levels: [][]string{{"db"}, {"web"}},
			check: func(t *testing.T, _ NodeDefs, in *Infra) {
				web, _ := in.Node("web")
				want := Scaling{
					Min: 2, Max: 8, MinSet: true, MaxSet: true, Step: 2,
					Cooldown: time.Minute, ScaleOutCooldown: 30 * time.Second, ScaleInCooldown: 5 * time.Minute,
					DrainTimeout: 90 * time.Second,
					Target: &TargetTracking{
						Query: `sum(rate(http_requests_total{infra_id="{{infra_id}}"}[1m]))`, Value: 100,
						Source: "http://127.0.0.1:9090", Interval: 15 * time.Second, Tolerance: 0.1, MaxStep: 3,
						ScaleInStabilization: 5 * time.Minute,
					},
				}
				if !reflect.DeepEqual(web.Scaling, want) {
					t.Errorf("scaling =\n%+v\nwant\n%+v", web.Scaling, want)
				}
				wantVars := map[string]any{
					"app_port": 8080,
					"role":     "frontend",
					"db":       map[string]any{"name": "app", "options": map[string]any{"pool": 20, "tls": false}},
				}
				if !reflect.DeepEqual(web.Variables, wantVars) {
					t.Errorf("merged variables = %v, want %v", web.Variables, wantVars)
				}
				if pool := in.Variables["db"].(map[string]any)["options"].(map[string]any)["pool"]; pool != 5 {
					t.Errorf("infra variables were modified by the merge: pool = %v", pool)
				}
				if len(in.Dependencies) != 1 {
					t.Errorf("the alias and the name form of the same edge must count once: %v", in.Dependencies)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defs := mustNodeDefs(t, goodPath(tc.nodes))
			in, _ := mustInfra(t, goodPath(tc.infra))
			if err := defs.CheckInfra(in); err != nil {
				t.Fatalf("CheckInfra:\n%v", err)
			}
			if !reflect.DeepEqual(in.Levels, tc.levels) {
				t.Errorf("levels = %v, want %v", in.Levels, tc.levels)
			}
			for _, n := range in.Nodes {
				if !slices.Contains(in.Levels[n.Level], n.Name) {
					t.Errorf("node %s: Level %d does not hold it", n.Name, n.Level)
				}
			}
			if tc.check != nil {
				tc.check(t, defs, in)
			}
		})
	}
}

func TestNestedImportsResolveRelativeToTheirFile(t *testing.T) {
	defs := mustNodeDefs(t, goodPath("imports/node_definitions.yaml"))
	ctx := defs["nested"].Impls[0].Contextualisation
	want := map[string]any{
		"type":             "cloudinit",
		"context_template": map[string]any{"runcmd": []any{"echo nested"}},
		"attributes":       map[string]any{"motd": "Welcome to {{name}}\n"},
	}
	if !reflect.DeepEqual(ctx, want) {
		t.Errorf("contextualisation = %#v\nwant %#v", ctx, want)
	}
}

func TestSelect(t *testing.T) {
	defs := mustNodeDefs(t, goodPath("filters/node_definitions.yaml"))
	def := defs["worker"]
	tests := []struct {
		filter map[string]any
		pick   int
		want   string // instance_type or flavor_name of the chosen implementation
		n      int    // how many match
	}{
		{nil, 2, "m1.large", 3},
		{map[string]any{"instance_type": "t3.small"}, 0, "t3.small", 1},
		{map[string]any{"type": "ec2"}, 1, "t3.large", 2},
		{map[string]any{"tags": map[string]any{"tier": "large"}}, 0, "t3.large", 1},
		{map[string]any{"type": "nova"}, 0, "m1.large", 1},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.filter), func(t *testing.T) {
			var gotN int
			im, err := def.Select(tc.filter, func(n int) int { gotN = n; return tc.pick })
			if err != nil {
				t.Fatal(err)
			}
			if gotN != tc.n {
				t.Errorf("pick saw %d candidates, want %d", gotN, tc.n)
			}
			got, _ := im.Resource["instance_type"].(string)
			if got == "" {
				got, _ = im.Resource["flavor_name"].(string)
			}
			if got != tc.want {
				t.Errorf("selected %s, want %s", got, tc.want)
			}
		})
	}
	if _, err := def.Select(map[string]any{"instance_type": "t3.huge"}, nil); err == nil ||
		!strings.Contains(err.Error(), `filter {instance_type: "t3.huge"} matches none of its 3 implementations`) {
		t.Errorf("no match: err = %v", err)
	}
	if _, err := def.Select(nil, func(int) int { return 7 }); err == nil {
		t.Error("an out-of-range pick must be an error")
	}
	// Numbers compare by value, as in Occopus (Python): 2 == 2.0.
	if !isSubdict(map[string]any{"n": 2.0}, map[string]any{"n": 2}) {
		t.Error("2.0 must match 2")
	}
}

func TestCheckInfra(t *testing.T) {
	defs := mustNodeDefs(t, goodPath("filters/node_definitions.yaml"))
	in, _, err := ParseInfra("infra.yaml", []byte(`user_id: u
infra_name: x
nodes:
  - name: a
    type: worker
    filter: {instance_type: t3.huge}
  - name: b
    type: nosuch
  - name: c
    type: worker
dependencies: []
`))
	if err != nil {
		t.Fatal(err)
	}
	want := `infra.yaml:6:13: nodes[0].filter: {instance_type: "t3.huge"} matches none of the 3 implementations of node type "worker" (they have: {instance_type: "t3.small"}, {instance_type: "t3.large"}, {})
infra.yaml:8:11: nodes[1].type: unknown node type "nosuch" (defined: worker)`
	err = defs.CheckInfra(in)
	var es Errors
	if !errors.As(err, &es) || es.Error() != want {
		t.Errorf("CheckInfra =\n%v\nwant\n%s", err, want)
	}
}

// TestMarshalRoundTrip checks that a resolved definition written by MarshalYAML parses back,
// without the original files, to an equal definition.
func TestMarshalRoundTrip(t *testing.T) {
	files := []string{
		"dataavenue/nodes/node_definitions.yaml", "nova/node_definitions.yaml", "docker/node_definitions.yaml",
		"hadoop/nodes/node_definitions.yaml", "filters/node_definitions.yaml", "skyfleet/node_definitions.yaml",
		"imports/node_definitions.yaml",
	}
	for _, f := range files {
		defs := mustNodeDefs(t, goodPath(f))
		for name, def := range defs {
			t.Run(f+"/"+name, func(t *testing.T) {
				out, err := def.MarshalYAML()
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(out), "_import") {
					t.Errorf("output still has an import tag:\n%s", out)
				}
				back, _, err := ParseNodeDefs("stored.yaml", out, ImportOptions{})
				if err != nil {
					t.Fatalf("re-parse:\n%v\n%s", err, out)
				}
				assertSameDef(t, def, back[name])
			})
		}
	}
}

func assertSameDef(t *testing.T, want, got *NodeDef) {
	t.Helper()
	if got == nil || got.Name != want.Name || len(got.Impls) != len(want.Impls) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want.Impls {
		w, g := want.Impls[i], got.Impls[i]
		for _, p := range [][2]map[string]any{
			{w.Resource, g.Resource}, {w.Contextualisation, g.Contextualisation},
			{w.HealthCheck, g.HealthCheck}, {w.ConfigManagement, g.ConfigManagement},
		} {
			if !reflect.DeepEqual(p[0], p[1]) {
				t.Errorf("implementation %d: got %#v, want %#v", i, p[1], p[0])
			}
		}
	}
}

func TestMarshalKeepsTypes(t *testing.T) {
	def := &NodeDef{Name: "t", Impls: []*Impl{{Resource: map[string]any{"type": "sim"}, Contextualisation: map[string]any{"type": "basic", "attributes": map[string]any{
		"f": 1.0, "big": 1e21, "s1": "1", "s2": "true", "s3": "null", "s4": "a: b",
		"s5": "line1\nline2\n", "s6": " padded ", "s7": "", "n": nil, "b": false, "i": -3,
		"l": []any{}, "m": map[string]any{}, "x": "{{ '{{' }}", "u": "ünï\tcode\x00", "neg": -0.5,
	}}}}}
	out, err := def.MarshalYAML()
	if err != nil {
		t.Fatal(err)
	}
	back, _, err := ParseNodeDefs("stored.yaml", out, ImportOptions{})
	if err != nil {
		t.Fatalf("re-parse:\n%v\n%s", err, out)
	}
	assertSameDef(t, def, back["t"])
}

func TestParseInfraRefusesImports(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "bad", "infra", "import_tag.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = ParseInfra("posted.yaml", data)
	want := "posted.yaml:6:16: !yaml_import is not allowed here"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %v, want it to start with %q", err, want)
	}
	_, _, err = ParseNodeDefs("posted.yaml", []byte("'node_def:a':\n  - resource: {type: sim}\n    contextualisation: !yaml_import {url: file:///etc/hostname}\n"), ImportOptions{})
	if err == nil || !strings.Contains(err.Error(), "posted.yaml:3:24: !yaml_import is not allowed here") {
		t.Errorf("node defs without AllowImports: err = %v", err)
	}
}

func TestImportBaseDir(t *testing.T) {
	data := []byte("'node_def:a':\n  - resource: {type: sim}\n    contextualisation: !yaml_import {url: file://sub/context.yaml}\n")
	defs, _, err := ParseNodeDefs("memory.yaml", data, ImportOptions{BaseDir: goodPath("imports"), AllowImports: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := defs["a"].Impls[0].ContextType(); got != "cloudinit" {
		t.Errorf("context type = %q", got)
	}
}

func TestLimits(t *testing.T) {
	big := make([]byte, MaxFileSize+1)
	for i := range big {
		big[i] = '#'
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"size", big, "big.yaml: file is 4194305 bytes; the limit is 4194304 bytes (4 MiB)"},
		{"depth", []byte("nodes: " + strings.Repeat("[", 5000) + strings.Repeat("]", 5000)),
			"big.yaml:1:108: nesting depth limit exceeded: more than 100 levels of mappings and lists"},
		{"parser depth", []byte(strings.Repeat("[", 20000)), "big.yaml: invalid YAML: exceeded max depth of 10000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseInfra("big.yaml", tc.data)
			if err == nil || err.Error() != tc.want {
				t.Errorf("err = %v\nwant %s", err, tc.want)
			}
		})
	}
	t.Run("file too big", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "big.yaml")
		if err := os.WriteFile(p, big, 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadNodeDefsFile(p)
		if err == nil || !strings.HasSuffix(err.Error(), "cannot read file: file is 4194305 bytes; the limit is 4194304 bytes (4 MiB)") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("import count", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "t.txt"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		b.WriteString("'node_def:a':\n  - resource: {type: sim}\n    contextualisation:\n      type: basic\n      attributes:\n")
		for i := range MaxImports + 1 {
			fmt.Fprintf(&b, "        k%d: !text_import {url: file://t.txt}\n", i)
		}
		_, _, err := ParseNodeDefs(filepath.Join(dir, "n.yaml"), []byte(b.String()), ImportOptions{AllowImports: true})
		if err == nil || !strings.HasSuffix(err.Error(), "import limit exceeded: more than 64 imports") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("import depth", func(t *testing.T) {
		dir := t.TempDir()
		for i := range MaxImportDepth + 2 {
			body := fmt.Sprintf("x: !yaml_import {url: file://f%d.yaml}\n", i+1)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d.yaml", i)), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		data := []byte("'node_def:a':\n  - resource: {type: sim}\n    contextualisation: {type: basic, attributes: !yaml_import {url: file://f0.yaml}}\n")
		_, _, err := ParseNodeDefs(filepath.Join(dir, "n.yaml"), data, ImportOptions{AllowImports: true})
		if err == nil || !strings.HasSuffix(err.Error(), "import depth limit exceeded: imports nested more than 8 files deep") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestWarnings(t *testing.T) {
	_, warns, err := ParseNodeDefs("n.yaml", []byte(`'node_def:a':
  - resource:
      type: cloudsigma
      endpoint: https://zrh.cloudsigma.com/api/2.0
      libdrive_id: x
      description: {cpu: 1000, mem: 1073741824, vnc_password: secret}
`), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`n.yaml:3:13: warning: node_def:a[0].resource.type: resource type "cloudsigma" is recognised but skyfleet does not support it yet (supported: ec2, nova, docker, local, sim)`}
	if got := warningStrings(warns); !slices.Equal(got, want) {
		t.Errorf("warnings = %q, want %q", got, want)
	}
	_, warns, err = ParseInfra("i.yaml", []byte("user_id: u\ninfra_name: x\nnodes:\n  - {name: a, type: t}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		"i.yaml:1:1: warning: no dependencies: all nodes are in one level and start without waiting for each other",
		`i.yaml:4:5: warning: nodes[0]: node "a" has no scaling section: it runs exactly one instance`,
	}
	if got := warningStrings(warns); !slices.Equal(got, want) {
		t.Errorf("warnings = %q, want %q", got, want)
	}
}

func warningStrings(ws []Warning) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.String()
	}
	return out
}

func TestResourceKeys(t *testing.T) {
	req, opt, ok := ResourceKeys("ec2")
	if !ok || !slices.Equal(req, []string{"type", "endpoint", "regionname", "image_id", "instance_type"}) ||
		!slices.Equal(opt, []string{"key_name", "security_group_ids", "subnet_id", "name", "tags"}) {
		t.Errorf("ec2 = %v %v %v", req, opt, ok)
	}
	req[0] = "changed"
	if again, _, _ := ResourceKeys("ec2"); again[0] != "type" {
		t.Error("ResourceKeys must return copies")
	}
	if _, _, ok := ResourceKeys("occi"); ok {
		t.Error("occi was removed from Occopus and is unknown")
	}
	for typ, want := range map[string]bool{"ec2": true, "nova": true, "docker": true, "local": true, "sim": true,
		"azure_vm": false, "azure_aci": false, "cloudbroker": false, "cloudsigma": false, "nosuch": false} {
		if got := SupportedResourceType(typ); got != want {
			t.Errorf("SupportedResourceType(%s) = %v, want %v", typ, got, want)
		}
	}
}

func TestParseDurationAndSize(t *testing.T) {
	for in, want := range map[any]time.Duration{"30s": 30 * time.Second, "2m": 2 * time.Minute, "1h30m": 90 * time.Minute,
		"1d": 24 * time.Hour, 45: 45 * time.Second, "500ms": 500 * time.Millisecond} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%v) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []any{"-1s", -3, "soon", 1.5, nil} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%v) succeeded", in)
		}
	}
	for in, want := range map[any]int64{"512M": 512e6, "256Mi": 256 << 20, "2G": 2e9, "1Ti": 1 << 40, 1000: 1000} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%v) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []any{"lots", "0", -1, "99999999999999T", "1.5G", "2gb"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%v) succeeded", in)
		}
	}
}

func TestDetectKind(t *testing.T) {
	for data, want := range map[string]Kind{
		"'node_def:a': []":          KindNodeDefs,
		"infra_name: x":             KindInfra,
		"user_id: u\nnodes: []":     KindInfra,
		"#cloud-config\nruncmd: []": KindUnknown,
		"[1, 2]":                    KindUnknown,
		"{":                         KindUnknown,
		"":                          KindUnknown,
	} {
		if got := DetectKind([]byte(data)); got != want {
			t.Errorf("DetectKind(%q) = %v, want %v", data, got, want)
		}
	}
}

// TestYAMLFeatures covers YAML details that real Occopus files rely on.
func TestYAMLFeatures(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want map[string]any // the health_check section
	}{
		{"YAML 1.1 booleans as PyYAML reads them", "ping: yes\n", map[string]any{"ping": true}},
		{"off", "ping: Off\n", map[string]any{"ping": false}},
		{"merge key with a list of mappings", "<<: [*a, *b]\nports: [22]\n", map[string]any{"ports": []any{22}, "ping": false, "timeout": 60}},
		{"explicit keys win over merged ones", "<<: *b\ntimeout: 5\n", map[string]any{"timeout": 5, "ping": false}},
		{"hexadecimal and underscores", "timeout: 0x3C\nports: [8_080]\n", map[string]any{"timeout": 60, "ports": []any{8080}}},
	}
	// The first node type holds the anchors that the tests merge from.
	const base = "'node_def:base':\n" +
		"  - resource: {type: sim}\n    health_check: &a {ping: false}\n" +
		"  - resource: {type: sim}\n    health_check: &b {ping: false, timeout: 60}\n" +
		"'node_def:a':\n  - resource: {type: sim}\n    health_check:\n"
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := base + indent(tc.yaml, "      ")
			defs, _, err := ParseNodeDefs("f.yaml", []byte(src), ImportOptions{})
			if err != nil {
				t.Fatalf("%v\n%s", err, src)
			}
			if got := defs["a"].Impls[0].HealthCheck; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("health_check = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}
