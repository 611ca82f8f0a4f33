package demoapp

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestGrantSearchAddsOneUserOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "private")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	changed, err := grantSearch(dir, 54321)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("no ACL support here: %v", err)
	}
	if err != nil || !changed {
		t.Fatalf("grantSearch = %v, %v; want a change", changed, err)
	}
	if !aclAllows(dir, 54321) {
		t.Fatal("the ACL does not let the user in")
	}
	if aclAllows(dir, 54322) {
		t.Fatal("the ACL lets another user in")
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		t.Fatalf("mode %v gives others access; only the named user should get it", fi.Mode().Perm())
	}
	if changed, err := grantSearch(dir, 54321); err != nil || changed {
		t.Fatalf("second grantSearch = %v, %v; want no change", changed, err)
	}
	// A second user merges into the existing ACL, keeping the first.
	if changed, err := grantSearch(dir, 54300); err != nil || !changed {
		t.Fatalf("grantSearch for another user = %v, %v", changed, err)
	}
	if !aclAllows(dir, 54321) || !aclAllows(dir, 54300) {
		t.Fatal("merging a second user lost an entry")
	}
	entries, err := readACL(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(entries); i++ {
		a, b := entries[i-1], entries[i]
		if a.tag > b.tag || (a.tag == b.tag && a.id > b.id) {
			t.Fatalf("entries not in kernel order: %+v", entries)
		}
	}
}
