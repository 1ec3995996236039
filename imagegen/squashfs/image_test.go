package squashfs_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nixlive/nixlive/imagegen/squashfs"
	"github.com/nixlive/nixlive/internal/testtree"
	"github.com/stretchr/testify/require"
)

// writeImage writes the tree at src as an image, every entry owned by root.
func writeImage(t testing.TB, src string, opts squashfs.Options) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "img.sqfs")
	f, err := os.Create(img)
	require.NoError(t, err)
	defer f.Close()
	if opts.ModTime.IsZero() {
		opts.ModTime = time.Unix(315532800, 0)
	}
	w, err := squashfs.NewWriter(f, opts)
	require.NoError(t, err)
	require.NoError(t, w.AddPath("", src, func(_ string, h *squashfs.Header) { h.Uid, h.Gid = 0, 0 }))
	require.NoError(t, w.Close())
	return img
}

// TestIndependentReaders writes the varied test tree with every compressor
// and several block sizes, and has unsquashfs and the kernel read it back.
func TestIndependentReaders(t *testing.T) {
	testtree.HaveTools(t)
	cases := []struct {
		comp       squashfs.Compression
		blockSize  int
		wantName   string
		wantLevel  int // 0: no level printed
		alwaysFrag bool
	}{
		{squashfs.Compression{Algorithm: squashfs.Zstd}, 1 << 20, "zstd", 19, false},
		{squashfs.Compression{Algorithm: squashfs.Zstd, Level: 3}, 4096, "zstd", 3, false},
		{squashfs.Compression{Algorithm: squashfs.Gzip}, 128 << 10, "gzip", 0, true},
		{squashfs.Compression{Algorithm: squashfs.Gzip, Level: 1}, 64 << 10, "gzip", 1, false},
		{squashfs.Compression{Algorithm: squashfs.XZ}, 128 << 10, "xz", 0, false},
		{squashfs.Compression{Algorithm: squashfs.LZ4}, 64 << 10, "lz4", 0, false},
		{squashfs.Compression{Algorithm: squashfs.LZ4, Level: 9}, 8192, "lz4", 0, false},
		{squashfs.Compression{Algorithm: squashfs.None}, 1 << 20, "gzip", 0, false},
	}
	trees := map[int]string{}
	treeDir := t.TempDir()
	for _, c := range cases {
		name := fmt.Sprintf("%s-%d-bs%d", c.comp.Algorithm, c.comp.Level, c.blockSize)
		if c.alwaysFrag {
			name += "-always-fragments"
		}
		t.Run(name, func(t *testing.T) {
			src, ok := trees[c.blockSize]
			if !ok {
				src = filepath.Join(treeDir, fmt.Sprint(c.blockSize))
				_, err := testtree.Build(src, testtree.Options{BlockSize: c.blockSize})
				require.NoError(t, err)
				trees[c.blockSize] = src
			}
			img := writeImage(t, src, squashfs.Options{Compression: c.comp, BlockSize: c.blockSize, AlwaysUseFragments: c.alwaysFrag})

			info, err := testtree.Superblock(img)
			require.NoError(t, err)
			require.Equal(t, c.wantName, info.Compression)
			require.Equal(t, c.blockSize, info.BlockSize)
			require.True(t, info.Padded(), "image not padded to 4 KiB")
			require.True(t, info.Duplicates)
			require.Equal(t, c.alwaysFrag, info.AlwaysFragments)
			require.Equal(t, c.comp.Algorithm != squashfs.None, info.DataCompressed)
			if level, ok := info.CompressionLevel(); c.wantLevel != 0 {
				require.True(t, ok, "no compression level in %v", info.CompressionOptions)
				require.Equal(t, c.wantLevel, level)
			}

			require.NoError(t, testtree.CompareListing(img, src, 0, 0))
			require.NoError(t, testtree.ExtractAndDiff(img, src))
			t.Run("kernel", func(t *testing.T) {
				testtree.RequireMount(t)
				require.NoError(t, testtree.MountAndDiff(img, src))
			})
		})
	}
	t.Cleanup(func() { testtree.RemoveAll(treeDir) })
}

// TestReproducible: the bytes depend on the input only, not on the number of
// workers or on running twice.
func TestReproducible(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	_, err := testtree.Build(src, testtree.Options{BlockSize: 64 << 10, BigDir: 500})
	require.NoError(t, err)
	var first []byte
	for _, workers := range []int{1, 2, 7, 1} {
		img := writeImage(t, src, squashfs.Options{Compression: squashfs.Compression{Algorithm: squashfs.Zstd, Level: 3}, BlockSize: 64 << 10, Workers: workers})
		b, err := os.ReadFile(img)
		require.NoError(t, err)
		if first == nil {
			first = b
			continue
		}
		require.True(t, bytes.Equal(first, b), "image with %d workers differs", workers)
	}
	// And the epoch is in the bytes: a different one gives a different image.
	img := writeImage(t, src, squashfs.Options{Compression: squashfs.Compression{Algorithm: squashfs.Zstd, Level: 3}, BlockSize: 64 << 10, ModTime: time.Unix(1e9, 0)})
	b, err := os.ReadFile(img)
	require.NoError(t, err)
	require.False(t, bytes.Equal(first, b))
}

// TestSparse4G: a file over 4 GiB needs extended inodes and 64-bit sizes;
// its holes must cost nothing.
func TestSparse4G(t *testing.T) {
	if testing.Short() {
		t.Skip("reads a 4 GiB sparse file: not in -short")
	}
	testtree.HaveTools(t)
	src := filepath.Join(t.TempDir(), "src")
	_, err := testtree.Build(src, testtree.Options{BlockSize: 1 << 20, BigDir: 10, Depth: 2, Sparse4G: true})
	require.NoError(t, err)
	img := writeImage(t, src, squashfs.Options{Compression: squashfs.Compression{Algorithm: squashfs.Zstd, Level: 3}})
	fi, err := os.Stat(img)
	require.NoError(t, err)
	require.Less(t, fi.Size(), int64(64<<20), "the holes were stored")
	require.NoError(t, testtree.CompareListing(img, src, 0, 0))
	entries, err := testtree.Listing(img)
	require.NoError(t, err)
	found := false
	for _, e := range entries {
		if e.Path == testtree.Sparse4GPath {
			found = true
			require.EqualValues(t, testtree.Sparse4GSize, e.Size)
		}
	}
	require.True(t, found, "%s not listed", testtree.Sparse4GPath)
	t.Run("kernel", func(t *testing.T) {
		testtree.RequireMount(t)
		require.NoError(t, testtree.MountAndDiff(img, src))
	})
}
