package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStoreFlagsChecked: imagegen store refuses, with the usage code 2
// and a message that says what is wrong, a block size outside 4096 to
// 1048576 (0 included: it is not "the default"), no store paths, and the
// registration written over the image (-o X --registration-out X, also
// spelled differently, through a symlink, or as a hard link to it).
func TestStoreFlagsChecked(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "img.squashfs")
	path := fakePath('3', "x")
	for _, bs := range []string{"0", "-1", "4095", "6000", "2097152"} {
		t.Run("block-size="+bs, func(t *testing.T) {
			code, _, stderr := runMain(t, "store", "-o", img, "--block-size="+bs, path)
			assert.Equal(t, 2, code, stderr)
			for _, w := range []string{"--block-size", bs, "4096", "1048576"} {
				assert.Contains(t, stderr, w)
			}
		})
	}
	t.Run("no-store-paths", func(t *testing.T) {
		code, _, stderr := runMain(t, "store", "-o", img)
		assert.Equal(t, 2, code, stderr)
		assert.Contains(t, stderr, "no store paths")
	})
	require.NoError(t, os.Symlink(img, filepath.Join(dir, "link")))
	require.NoError(t, os.Symlink("img.squashfs", filepath.Join(dir, "rel-link")))
	sub := filepath.Join(dir, "sub")
	require.NoError(t, os.Mkdir(sub, 0o755))
	existing := filepath.Join(dir, "existing")
	require.NoError(t, os.WriteFile(existing, []byte("x"), 0o644))
	require.NoError(t, os.Link(existing, filepath.Join(dir, "hardlink")))
	for name, pair := range map[string][2]string{
		"same":          {img, img},
		"dot":           {img, filepath.Join(dir, ".", "img.squashfs")},
		"dotdot":        {img, filepath.Join(sub, "..", "img.squashfs")},
		"symlink":       {img, filepath.Join(dir, "link")},
		"symlink-first": {filepath.Join(dir, "rel-link"), img},
		"hardlink":      {existing, filepath.Join(dir, "hardlink")},
	} {
		t.Run("same-output/"+name, func(t *testing.T) {
			code, _, stderr := runMain(t, "store", "-o", pair[0], "--registration-out", pair[1], path)
			assert.Equal(t, 2, code, stderr)
			for _, w := range []string{"--registration-out", pair[1], "-o", pair[0], "same file"} {
				assert.Contains(t, stderr, w)
			}
			assert.NoFileExists(t, img)
		})
	}
}

// squashfsSuperblock is a squashfs 4.0 superblock with the given fields.
func squashfsSuperblock(major, minor uint16, bytesUsed uint64, blockSize uint32, blockLog uint16) []byte {
	b := make([]byte, 96)
	le := binary.LittleEndian
	le.PutUint32(b[0:], 0x73717368)
	le.PutUint32(b[4:], 1)
	le.PutUint32(b[12:], blockSize)
	le.PutUint16(b[20:], 1) // gzip
	le.PutUint16(b[22:], blockLog)
	le.PutUint16(b[26:], 1)
	le.PutUint16(b[28:], major)
	le.PutUint16(b[30:], minor)
	le.PutUint64(b[40:], bytesUsed)
	for _, off := range []int{48, 56, 64, 72, 80, 88} {
		le.PutUint64(b[off:], 96)
	}
	le.PutUint64(b[56:], 0xFFFFFFFFFFFFFFFF) // no xattrs
	return b
}

// TestBuildSquashfsChecked: imagegen build --squashfs takes only a
// squashfs 4.0 image with a sane superblock, and reports the store paths
// it holds and its size; anything else is refused, naming --squashfs, the
// file and what is wrong.
func TestBuildSquashfsChecked(t *testing.T) {
	haveISOTools(t)
	in := newISOInputs(t, "", "")
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		mustWrite(t, p, data, 0o644)
		return p
	}
	random := make([]byte, 10<<10)
	r := rand.NewChaCha8([32]byte{1})
	_, _ = r.Read(random)
	pad := func(b []byte, n int) []byte { return append(b, make([]byte, n-len(b))...) }
	spec := writeISOSpec(t, in.spec())
	for _, tc := range []struct {
		name string
		data []byte
		why  string
	}{
		{"random", random, "not a squashfs image"},
		{"empty", nil, "not a squashfs image"},
		{"short", []byte("hsqs"), "shorter than a squashfs superblock"},
		{"version-3", pad(squashfsSuperblock(3, 1, 4096, 131072, 17), 4096), "version 3.1"},
		{"bytes-used", pad(squashfsSuperblock(4, 0, 1<<20, 131072, 17), 4096), "1048576 bytes"},
		{"block-size", pad(squashfsSuperblock(4, 0, 4096, 3000, 12), 4096), "block size 3000"},
		{"block-log", pad(squashfsSuperblock(4, 0, 4096, 131072, 16), 4096), "block log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sq := write(tc.name+".squashfs", tc.data)
			out := t.TempDir()
			code, stdout, stderr := runMain(t, "build", spec, "-o", out, "--store-root", in.storeRoot, "--squashfs", sq)
			assert.Equal(t, 1, code, "stdout: %s\nstderr: %s", stdout, stderr)
			for _, w := range []string{"--squashfs", sq, tc.why} {
				assert.Contains(t, stderr, w)
			}
			assertEmptyDir(t, out)
			t.Log(strings.TrimSpace(stderr))
		})
	}
	for _, comp := range []string{"gzip", "zstd", "xz", "lz4", "none"} {
		t.Run("valid-"+comp, func(t *testing.T) {
			sq := filepath.Join(dir, comp+"-store.squashfs")
			mustMain(t, append([]string{"store", "-o", sq, "--store-root", in.storeRoot, "--comp", comp, "--block-size", "4096"}, in.extra, in.system)...)
			fi, err := os.Stat(sq)
			require.NoError(t, err)
			out := filepath.Join(t.TempDir(), "x.iso")
			stdout := mustMain(t, "build", spec, "-o", out, "--store-root", in.storeRoot, "--squashfs", sq)
			assert.Contains(t, stdout, fmt.Sprintf("%s: %d store paths, nix-store.squashfs %d bytes", out, len(in.closure), fi.Size()))
		})
	}
}
