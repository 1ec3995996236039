package nix_test

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixlive/nixlive/internal/boottest/nixtest"
)

// TestParse: every .nix file of the repository parses (nix-instantiate
// --parse), flake.nix included.
func TestParse(t *testing.T) {
	nixtest.HaveNix(t)
	root := repoRoot(t)
	store := nixtest.NewStore(t)
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && (strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_") || d.Name() == "vendor") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".nix") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"flake.nix", "nix/lib.nix", "nix/spec.nix", "nix/modules/iso.nix"} {
		found := false
		for _, f := range files {
			found = found || f == filepath.Join(root, want)
		}
		if !found {
			t.Errorf("%s is missing", want)
		}
	}
	for _, f := range files {
		if err := nixtest.Parse(t, store, f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
