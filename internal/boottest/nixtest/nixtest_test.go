package nixtest_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/nixtest"
)

// TestToFileQuoting checks that text survives the trip through a Nix
// string literal, and that store paths in it become references.
func TestToFileQuoting(t *testing.T) {
	nixtest.HaveNix(t)
	store := nixtest.NewStore(t)
	src := filepath.Join(t.TempDir(), "dep")
	require.NoError(t, os.WriteFile(src, []byte("dep"), 0o644))
	dep := nixtest.Add(t, store, src)

	text := "quote \" backslash \\ dollar $ ${notanexpr} $${x} tab\t cr\r\nnewline\nutf8 ü " + dep + "/bin/x\n"
	p := nixtest.ToFile(t, store, "tricky", text)
	got, err := os.ReadFile(filepath.Join(store, p))
	require.NoError(t, err)
	require.Equal(t, text, string(got))
	require.Equal(t, []string{dep}, nixtest.Lines(nixtest.Run(t, store, "-q", "--references", p)))
}

func TestCopyStorePaths(t *testing.T) {
	nixtest.HaveNix(t)
	store := nixtest.NewStore(t)
	dir := filepath.Join(t.TempDir(), "d")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sub", "x"), []byte("#!/bin/sh\n"), 0o755))
	require.NoError(t, os.Symlink("sub/x", filepath.Join(dir, "l")))
	p := nixtest.Add(t, store, dir)

	fresh := nixtest.NewStore(t)
	nixtest.CopyStorePaths(t, store, fresh, []string{p})
	require.Equal(t, nixtest.NarHash(t, filepath.Join(store, p)), nixtest.NarHash(t, filepath.Join(fresh, p)))
}

// TestNixState: the /nix guard sees a store appear and its database change.
func TestNixState(t *testing.T) {
	root := t.TempDir()
	require.Equal(t, "absent", nixtest.NixState(root))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "nix", "store"), 0o755))
	created := nixtest.NixState(root)
	require.NotEqual(t, "absent", created)
	require.NoError(t, os.MkdirAll(filepath.Join(root, "nix", "var", "nix", "db"), 0o755))
	require.NotEqual(t, created, nixtest.NixState(root))
}

// TestHostNixUntouched: the helpers' Nix commands leave the host's /nix
// as it was (absent on a machine where only tests run Nix).
func TestHostNixUntouched(t *testing.T) {
	nixtest.HaveNix(t)
	before := nixtest.HostNix()
	store := nixtest.NewStore(t)
	src := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(src, []byte("x"), 0o644))
	nixtest.Add(t, store, src)
	_, err := nixtest.EvalJSON(t, store, `builtins.nixVersion`)
	require.NoError(t, err)
	require.Equal(t, before, nixtest.HostNix())
}
