package template

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkRenderCloudInit renders the load balancer's cloud-init fixture (parse cached), as
// the engine does for every new instance.
func BenchmarkRenderCloudInit(b *testing.B) {
	src, err := os.ReadFile(filepath.Join("testdata", "cloud_init_lb.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	r := New(Options{})
	c := testContext()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := r.CloudInit("cloud_init_lb.yaml", string(src), c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderLoop measures one loop iteration's cost (gonja's scope per item plus the
// time and depth checks).
func BenchmarkRenderLoop(b *testing.B) {
	r := New(Options{})
	const src = "{% for i in range(1000) %}{{ i }}{% endfor %}"
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.Render("loop", src, nil); err != nil {
			b.Fatal(err)
		}
	}
}
