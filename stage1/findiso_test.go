//go:build linux

package stage1

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFindISOInside: the findiso lookup stays on the file system it
// probes, whatever the name (".." components) or the links on that file
// system (absolute or relative links that lead out of it) say; a link
// that stays inside is followed.
func TestFindISOInside(t *testing.T) {
	top := t.TempDir()
	mnt := filepath.Join(top, "mnt")
	require.NoError(t, os.MkdirAll(filepath.Join(mnt, "boot"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(top, "outside.iso"), []byte("x"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(mnt, "boot", "live.iso"), []byte("x"), 0o644))
	require.NoError(t, os.Symlink("../../outside.iso", filepath.Join(mnt, "boot", "rel.iso")))
	require.NoError(t, os.Symlink(filepath.Join(top, "outside.iso"), filepath.Join(mnt, "abs.iso")))
	require.NoError(t, os.Symlink("live.iso", filepath.Join(mnt, "boot", "in.iso")))
	require.NoError(t, os.Symlink("/boot/live.iso", filepath.Join(mnt, "absin.iso")))

	for _, name := range []string{"/../outside.iso", "/boot/../../outside.iso", "/boot/rel.iso", "/abs.iso", "/boot", "/missing.iso"} {
		p, err := isoFileIn(mnt, name)
		assert.Error(t, err, "findiso=%s gave %q", name, p)
	}
	for name, want := range map[string]string{
		"/boot/live.iso": filepath.Join(mnt, "boot", "live.iso"),
		"/boot/in.iso":   filepath.Join(mnt, "boot", "live.iso"),
		"/absin.iso":     filepath.Join(mnt, "boot", "live.iso"),
	} {
		p, err := isoFileIn(mnt, name)
		if assert.NoError(t, err, "findiso=%s", name) {
			assert.Equal(t, want, p, "findiso=%s", name)
		}
	}
}
