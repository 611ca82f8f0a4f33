package descriptor

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// addFixtureSeeds adds every YAML fixture under testdata as a seed.
func addFixtureSeeds(f *testing.F) {
	f.Helper()
	err := filepath.WalkDir("testdata", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f.Add(data)
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
}

// checkErrors asserts what every failed parse must give: an Errors, sorted, each with a
// file name and a message.
func checkErrors(t *testing.T, err error) {
	t.Helper()
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error %v is %T, want Errors", err, err)
	}
	if len(es) == 0 {
		t.Fatal("empty Errors")
	}
	for _, e := range es {
		if e.Pos.File == "" || e.Msg == "" {
			t.Fatalf("incomplete error %+v", e)
		}
	}
	if !slices.IsSortedFunc(es, func(a, b *Error) int { return strings.Compare(a.Pos.File, b.Pos.File) }) {
		t.Fatalf("errors not sorted by file:\n%v", err)
	}
}

func FuzzParseInfra(f *testing.F) {
	addFixtureSeeds(f)
	f.Add([]byte("user_id: u\ninfra_name: x\nnodes: [&a {name: a, type: t}, &b {name: b, type: t}]\ndependencies: [[*a, *b], [*b, *a]]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, _, err := ParseInfra("fuzz.yaml", data)
		if err != nil {
			checkErrors(t, err)
			return
		}
		placed := 0
		for _, l := range in.Levels {
			placed += len(l)
		}
		if placed != len(in.Nodes) {
			t.Fatalf("levels %v hold %d nodes, want %d", in.Levels, placed, len(in.Nodes))
		}
		for _, n := range in.Nodes {
			if n.Scaling.Max < n.Scaling.Min || n.Scaling.Min < 0 {
				t.Fatalf("node %s: scaling %+v", n.Name, n.Scaling)
			}
			for _, dep := range n.DependsOn {
				d, ok := in.Node(dep)
				if !ok || d.Level >= n.Level {
					t.Fatalf("node %s (level %d) depends on %s, which is not in an earlier level", n.Name, n.Level, dep)
				}
			}
		}
	})
}

func FuzzParseNodeDefs(f *testing.F) {
	addFixtureSeeds(f)
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("runcmd: [echo a]\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "t.txt"), []byte("text {{name}}\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("'node_def:a':\n  - resource: {type: sim}\n    contextualisation: {type: cloudinit, context_template: !yaml_import {url: file://a.yaml}}\n"))
	f.Add([]byte("'node_def:a':\n  - resource: {type: sim}\n    contextualisation: {type: cloudinit, context_template: !text_import {url: file://t.txt}}\n"))
	opts := ImportOptions{BaseDir: dir, AllowImports: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		defs, _, err := ParseNodeDefs(filepath.Join(dir, "fuzz.yaml"), data, opts)
		if err != nil {
			checkErrors(t, err)
			return
		}
		// Whatever parses must survive a store-and-reload through MarshalYAML unchanged.
		for name, def := range defs {
			out, err := def.MarshalYAML()
			if err != nil {
				t.Fatalf("marshal %s: %v", name, err)
			}
			back, _, err := ParseNodeDefs("stored.yaml", out, ImportOptions{})
			if err != nil {
				t.Fatalf("re-parse %s:\n%v\n%s", name, err, out)
			}
			if len(back) != 1 || back[name] == nil || len(back[name].Impls) != len(def.Impls) {
				t.Fatalf("re-parse %s gave %v", name, back)
			}
			for i, im := range def.Impls {
				b := back[name].Impls[i]
				if !reflect.DeepEqual(im.Resource, b.Resource) || !reflect.DeepEqual(im.Contextualisation, b.Contextualisation) ||
					!reflect.DeepEqual(im.HealthCheck, b.HealthCheck) || !reflect.DeepEqual(im.ConfigManagement, b.ConfigManagement) {
					t.Fatalf("round trip of %s changed implementation %d:\n%s", name, i, out)
				}
			}
		}
	})
}
