package descriptor

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkBillionLaughs measures how fast an alias bomb is refused (goal: a few
// milliseconds per document).
func BenchmarkBillionLaughs(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "bad", "infra", "billion_laughs.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := ParseInfra("laughs.yaml", data); err == nil {
			b.Fatal("alias bomb accepted")
		}
	}
}

// BenchmarkParseNodeDefs measures parsing a realistic node definition file with imports.
func BenchmarkParseNodeDefs(b *testing.B) {
	for b.Loop() {
		if _, _, err := LoadNodeDefsFile(filepath.Join("testdata", "good", "dataavenue", "nodes", "node_definitions.yaml")); err != nil {
			b.Fatal(err)
		}
	}
}
