package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBuildRefusesPersistentFile: imagegen build -o FILE onto a disk image
// that holds a nixlive-rw partition refuses, naming imagegen write (which
// keeps it), and leaves the file's bytes as they were; a file with the
// plain ISO is replaced as before.
func TestBuildRefusesPersistentFile(t *testing.T) {
	t.Parallel()
	in, _, want := builtISO(t)
	haveISOTools(t, persistTools...)
	specFile := writeISOSpec(t, in.spec())
	dir := t.TempDir()
	img := filepath.Join(dir, "stick.img")
	require.NoError(t, os.WriteFile(img, want, 0o644))
	res := runCLI(t, cliOpts{}, "build", specFile, "-o", img, "--store-root", in.storeRoot)
	require.Equal(t, 0, res.code, "a plain ISO file is replaced: %s", res.stderr)

	res = runCLI(t, cliOpts{}, "persist", img, "--size", "32M")
	require.Equal(t, 0, res.code, res.stderr)
	before := readFile(t, img)
	tmp := t.TempDir()
	res = runCLI(t, cliOpts{env: []string{"TMPDIR=" + tmp}}, "build", specFile, "-o", img, "--store-root", in.storeRoot)
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.stderr, img+" holds a nixlive-rw partition (persistent data, partition 3)")
	assert.Contains(t, res.stderr, `"imagegen write NEW.iso `+img+`"`)
	assert.Equal(t, before, readFile(t, img), "the disk image is untouched")
	assertEmptyDir(t, tmp)
}
