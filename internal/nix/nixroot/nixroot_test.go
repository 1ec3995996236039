package nixroot

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestResolveInRoot(t *testing.T) {
	dir := t.TempDir()
	r := Root(dir)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "real/profiles"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "nix/var"), 0o755))
	require.NoError(t, os.Symlink("/real", filepath.Join(dir, "nix/var/nix")))
	require.NoError(t, os.Symlink("../../etc", filepath.Join(dir, "real/up")))

	got, err := r.Resolve("/nix/var/nix/profiles/system", false)
	require.NoError(t, err)
	require.Equal(t, "/real/profiles/system", got)
	got, err = r.Resolve("/nix/var/nix", false) // last component not followed
	require.NoError(t, err)
	require.Equal(t, "/nix/var/nix", got)
	got, err = r.Resolve("/nix/var/nix", true)
	require.NoError(t, err)
	require.Equal(t, "/real", got)
	got, err = r.Resolve("/real/up/NIXOS", false) // ".." of "/" is "/"
	require.NoError(t, err)
	require.Equal(t, "/etc/NIXOS", got)
	got, err = r.Resolve("/missing/a/../b", false)
	require.NoError(t, err)
	require.Equal(t, "/missing/b", got)
	h, err := r.Host("/nix/var/nix/db")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "real/db"), h)
}
