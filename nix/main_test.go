// Package nix_test tests nix/lib.nix, nix/spec.nix, nix/modules/iso.nix and
// flake.nix with Debian's Nix 2.8 (nix-bin) in throw-away chroot stores
// (`--store DIR`, via internal/boottest/nixtest): the derivations build in
// Nix's sandbox with imagegen as their builder, and no Nix command may
// create or change the host's /nix (TestMain checks).
package nix_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/nixlive/nixlive/internal/boottest/nixtest"
)

func TestMain(m *testing.M) {
	before := nixtest.HostNix()
	code := m.Run()
	if after := nixtest.HostNix(); after != before {
		fmt.Fprintf(os.Stderr, "FAIL: the host's /nix changed during the tests (a Nix command without --store?)\nbefore: %s\nafter:  %s\n", before, after)
		code = 1
	}
	if igDir != "" {
		os.RemoveAll(igDir)
	}
	os.Exit(code)
}

var (
	igOnce sync.Once
	igDir  string
	igErr  error
)

// imagegenPackage returns a directory holding bin/imagegen, static, built
// once for the whole run: lib.nix's imagegen argument.
func imagegenPackage(t testing.TB) string {
	t.Helper()
	igOnce.Do(func() {
		igDir, igErr = os.MkdirTemp("", "nixlive-imagegen-")
		if igErr == nil {
			igErr = nixtest.StaticImagegenPackage(context.Background(), igDir)
		}
	})
	if igErr != nil {
		t.Fatal(igErr)
	}
	return igDir
}

// repoRoot is the module root (the tests run in nix/).
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}
