package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBuildContentsDirectory builds an ISO whose contents entry is a
// directory, as NixOS allows: its files (nested ones, one executable, one
// reached through a symlink) land under the target, read back by osirrox.
// A symlink to a directory inside it is refused, naming the entry.
func TestBuildContentsDirectory(t *testing.T) {
	t.Parallel()
	haveISOTools(t, "osirrox")
	in := newISOInputs(t, "", "")
	src := filepath.Join(t.TempDir(), "tree")
	mustMkdir(t, src+"/sub/deeper", src+"/empty")
	mustWrite(t, src+"/top.txt", []byte("top\n"), 0o644)
	mustWrite(t, src+"/sub/deeper/deep.txt", []byte("deep\n"), 0o644)
	mustWrite(t, src+"/sub/run.sh", []byte("#!/bin/sh\n"), 0o755)
	require.NoError(t, os.Symlink("top.txt", src+"/link.txt"))
	spec := in.spec()
	spec["contents"] = []map[string]any{{"source": src, "target": "/extra"}}
	iso := filepath.Join(t.TempDir(), "dir.iso")
	in.buildISO(t, spec, iso, isoBuildOpts{})
	dir := isoExtractAll(t, iso)
	for p, want := range map[string]string{"extra/top.txt": "top\n", "extra/sub/deeper/deep.txt": "deep\n", "extra/sub/run.sh": "#!/bin/sh\n", "extra/link.txt": "top\n"} {
		assert.Equal(t, want, string(readFile(t, filepath.Join(dir, p))), p)
	}
	fi, err := os.Stat(filepath.Join(dir, "extra/sub/run.sh"))
	require.NoError(t, err)
	assert.NotZero(t, fi.Mode()&0o111, "the executable stays executable")

	require.NoError(t, os.Symlink("sub", src+"/loop"))
	res := runCLI(t, cliOpts{}, "build", writeISOSpec(t, spec), "-o", filepath.Join(t.TempDir(), "x.iso"), "--store-root", in.storeRoot)
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.stderr, "contents[0].source: "+src+"/loop is a symlink to a directory")
}
