package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBuildPersistence: imagegen build --persistence 64M into a file
// makes a disk image: the ISO the same build makes without the flag, then
// the nixlive-rw partition (sfdisk, gdisk, xorriso and e2fsck check it);
// onto a loop device the same; a second build onto that device keeps its
// partition. compressImage, -o a directory, --nix-output and a bad size
// are refused before anything is built.
func TestBuildPersistence(t *testing.T) {
	t.Parallel()
	in, iso, want := builtISO(t)
	haveISOTools(t, persistTools...)
	specFile := writeISOSpec(t, in.spec())
	off := int64(len(want))
	build := func(t *testing.T, out string, extra ...string) cliResult {
		t.Helper()
		tmp := t.TempDir()
		args := append([]string{"build", specFile, "-o", out, "--store-root", in.storeRoot}, extra...)
		res := runCLI(t, cliOpts{env: []string{"TMPDIR=" + tmp}}, args...)
		assertEmptyDir(t, tmp)
		return res
	}
	t.Run("file", func(t *testing.T) {
		img := filepath.Join(t.TempDir(), "stick.img")
		res := build(t, img, "--persistence", "64M")
		require.Equal(t, 0, res.code, "stdout: %s\nstderr: %s", res.stdout, res.stderr)
		assert.Contains(t, res.stdout, fmt.Sprintf(`%s: partition 3 "nixlive-rw" (ext4, 64.0 MiB) at byte %d`, img, off))
		got := readFile(t, img)
		require.Len(t, got, len(want)+64<<20+33*512)
		tail := len(want) - 33*512
		assert.True(t, bytes.Equal(want[34*512:tail], got[34*512:tail]), "the image does not hold the ISO built without --persistence")
		checkPersisted(t, img, iso, partitionFile(t, img, off, 64<<20), off, 64<<20)
	})
	t.Run("device", func(t *testing.T) {
		dev := loopDevice(t, 128<<20, 0xAA)
		res := build(t, dev, "--persistence", "64M")
		require.Equal(t, 0, res.code, "stdout: %s\nstderr: %s", res.stdout, res.stderr)
		assert.Contains(t, res.stdout, "read back and verified")
		assert.Contains(t, res.stdout, fmt.Sprintf(`%s: partition 3 "nixlive-rw" (ext4, 64.0 MiB) at byte %d`, dev, off))
		checkPersisted(t, dev, iso, partitionFile(t, dev, off, 64<<20), off, 64<<20)

		res = build(t, dev, "--persistence", "32M")
		require.Equal(t, 0, res.code, "stdout: %s\nstderr: %s", res.stdout, res.stderr)
		assert.Contains(t, res.stdout, "nixlive-rw partition 3 kept")
		assert.Contains(t, res.stdout, "is kept as it was: --persistence 32.0 MiB not applied")
		checkPersisted(t, dev, iso, partitionFile(t, dev, off, 64<<20), off, 64<<20)
	})
	dir := t.TempDir()
	compressed := in.spec()
	compressed["compressImage"] = "zstd"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"compressImage", []string{"build", writeISOSpec(t, compressed), "-o", filepath.Join(dir, "c.iso.zst"), "--persistence", "64M"}, `--persistence with compressImage "zstd"`},
		{"directory", []string{"build", specFile, "-o", dir, "--persistence", "64M"}, "--persistence with -o " + dir + ", a directory"},
		{"nix-output", []string{"build", "--spec", specFile, "--nix-output", "-o", dir, "--persistence", "64M"}, "a directory"},
		{"too-small", []string{"build", specFile, "-o", filepath.Join(dir, "s.img"), "--persistence", "1M"}, "--persistence 1M is too small"},
		{"bad-size", []string{"build", specFile, "-o", filepath.Join(dir, "b.img"), "--persistence", "lots"}, `--persistence: size "lots"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(t, cliOpts{}, append(tc.args, "--store-root", in.storeRoot)...)
			assert.Equal(t, 1, res.code, "stderr: %s", res.stderr)
			assert.Contains(t, res.stderr, tc.want)
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Empty(t, entries, "something was written")
		})
	}
}
