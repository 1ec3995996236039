package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestVerboseCreated: -v says created=true only when load-db created a
// database; an empty registration on a root without one creates nothing.
func TestVerboseCreated(t *testing.T) {
	root := t.TempDir()
	reg := filepath.Join(root, "reg")
	require.NoError(t, os.WriteFile(reg, nil, 0o644))
	var stderr bytes.Buffer
	require.Equal(t, 0, run([]string{"-v", "--root", root, "--registration", reg, "load-db"}, &stderr), stderr.String())
	assert.Contains(t, stderr.String(), "created=false")
	assert.NoFileExists(t, filepath.Join(root, "nix/var/nix/db/db.sqlite"))
}

// TestSchemaNewer: a database of a newer Nix is refused as such, not as
// corrupt, with both versions; a schema file that is not a number is
// corrupt.
func TestSchemaNewer(t *testing.T) {
	for _, tc := range []struct{ schema, want string }{
		{"99", "written by a newer Nix (schema 99; this postboot knows 10)"},
		{"99\n", "written by a newer Nix (schema 99; this postboot knows 10)"},
		{"ten", "corrupt"},
	} {
		root := t.TempDir()
		db := filepath.Join(root, "nix/var/nix/db")
		require.NoError(t, os.MkdirAll(db, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(db, "schema"), []byte(tc.schema), 0o644))
		reg := filepath.Join(root, "reg")
		require.NoError(t, os.WriteFile(reg, nil, 0o644))
		var stderr bytes.Buffer
		require.Equal(t, 1, run([]string{"--root", root, "--registration", reg, "load-db"}, &stderr))
		assert.Contains(t, stderr.String(), tc.want, "schema %q", tc.schema)
		assert.Contains(t, stderr.String(), filepath.Join(db, "schema"))
	}
}
