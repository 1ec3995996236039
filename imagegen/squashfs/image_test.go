package squashfs_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/imagegen/squashfs"
	"github.com/nixlive/nixlive/internal/boottest/sqfscheck"
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
	sqfscheck.HaveTools(t)
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
				_, err := sqfscheck.Build(src, sqfscheck.Options{BlockSize: c.blockSize})
				require.NoError(t, err)
				trees[c.blockSize] = src
			}
			img := writeImage(t, src, squashfs.Options{Compression: c.comp, BlockSize: c.blockSize, AlwaysUseFragments: c.alwaysFrag})

			info, err := sqfscheck.Superblock(img)
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

			require.NoError(t, sqfscheck.CompareListing(img, src, 0, 0))
			require.NoError(t, sqfscheck.ExtractAndDiff(img, src))
			t.Run("kernel", func(t *testing.T) {
				sqfscheck.RequireMount(t)
				require.NoError(t, sqfscheck.MountAndDiff(img, src))
			})
		})
	}
	t.Cleanup(func() { sqfscheck.RemoveAll(treeDir) })
}

// TestReproducible: the bytes depend on the input only, not on the number of
// workers or on running twice.
func TestReproducible(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	_, err := sqfscheck.Build(src, sqfscheck.Options{BlockSize: 64 << 10, BigDir: 500})
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
	sqfscheck.HaveTools(t)
	src := filepath.Join(t.TempDir(), "src")
	_, err := sqfscheck.Build(src, sqfscheck.Options{BlockSize: 1 << 20, BigDir: 10, Depth: 2, Sparse4G: true})
	require.NoError(t, err)
	img := writeImage(t, src, squashfs.Options{Compression: squashfs.Compression{Algorithm: squashfs.Zstd, Level: 3}})
	fi, err := os.Stat(img)
	require.NoError(t, err)
	require.Less(t, fi.Size(), int64(64<<20), "the holes were stored")
	require.NoError(t, sqfscheck.CompareListing(img, src, 0, 0))
	entries, err := sqfscheck.Listing(img)
	require.NoError(t, err)
	found := false
	for _, e := range entries {
		if e.Path == sqfscheck.Sparse4GPath {
			found = true
			require.EqualValues(t, sqfscheck.Sparse4GSize, e.Size)
		}
	}
	require.True(t, found, "%s not listed", sqfscheck.Sparse4GPath)
	t.Run("kernel", func(t *testing.T) {
		sqfscheck.RequireMount(t)
		require.NoError(t, sqfscheck.MountAndDiff(img, src))
	})
}

// patternReader yields n bytes in which no two 4 KiB-aligned blocks are
// equal and none is all zeros, cheaply, so that nothing is deduplicated or
// left out as sparse.
type patternReader struct{ off, n int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n-p.off)]
	for i := range b {
		o := p.off + int64(i)
		if o%4096 < 8 {
			b[i] = byte((o/4096)>>(8*(o%4096)) + 1)
		} else {
			b[i] = byte(o)
		}
	}
	p.off += int64(len(b))
	return len(b), nil
}

// TestImageOver4G: with no compression, a 4 GiB file pushes everything after
// it (a later file's blocks, the fragment block, every table) past 4 GiB,
// where 32-bit offsets would wrap.
func TestImageOver4G(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 4 GiB image: not in -short")
	}
	sqfscheck.HaveTools(t)
	const bigSize = 4<<30 + 3*4096 + 17
	img := filepath.Join(t.TempDir(), "big.sqfs")
	f, err := os.Create(img)
	require.NoError(t, err)
	defer f.Close()
	w, err := squashfs.NewWriter(f, squashfs.Options{Compression: squashfs.Compression{Algorithm: squashfs.None}, BlockSize: 1 << 20})
	require.NoError(t, err)
	require.NoError(t, w.WriteHeader(&squashfs.Header{Name: "a-big", Mode: 0o644, Size: bigSize}))
	_, err = w.ReadFrom(&patternReader{n: bigSize})
	require.NoError(t, err)
	after := bytes.Repeat([]byte("after 4 GiB\n"), 200000) // blocks and a tail
	require.NoError(t, w.WriteHeader(&squashfs.Header{Name: "b-after", Mode: 0o644, Size: int64(len(after))}))
	_, err = w.Write(after)
	require.NoError(t, err)
	small := []byte("in a fragment past 4 GiB\n")
	require.NoError(t, w.WriteHeader(&squashfs.Header{Name: "c-small", Mode: 0o600, Size: int64(len(small))}))
	_, err = w.Write(small)
	require.NoError(t, err)
	require.NoError(t, w.WriteHeader(&squashfs.Header{Name: "d-link", Mode: os.ModeSymlink | 0o777, Linkname: "c-small"}))
	require.NoError(t, w.Close())

	info, err := sqfscheck.Superblock(img)
	require.NoError(t, err)
	require.Greater(t, info.Raw.InodeTable, uint64(4<<30))
	entries, err := sqfscheck.Listing(img)
	require.NoError(t, err)
	sizes := map[string]int64{}
	for _, e := range entries {
		sizes[e.Path] = e.Size
	}
	require.EqualValues(t, bigSize, sizes["a-big"])
	require.EqualValues(t, len(after), sizes["b-after"])
	require.EqualValues(t, len(small), sizes["c-small"])

	// unsquashfs can extract single files: the ones past 4 GiB.
	out := filepath.Join(t.TempDir(), "x")
	b, err := exec.Command("unsquashfs", "-no-progress", "-d", out, img, "b-after", "c-small", "d-link").CombinedOutput()
	require.NoError(t, err, "%s", b)
	got, err := os.ReadFile(filepath.Join(out, "b-after"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(after, got))
	got, err = os.ReadFile(filepath.Join(out, "d-link"))
	require.NoError(t, err)
	require.Equal(t, small, got)

	t.Run("kernel", func(t *testing.T) {
		sqfscheck.RequireMount(t)
		mnt := t.TempDir()
		b, err := exec.Command("mount", "-t", "squashfs", "-o", "loop,ro", img, mnt).CombinedOutput()
		require.NoError(t, err, "%s", b)
		defer exec.Command("umount", mnt).Run()
		got, err := os.ReadFile(filepath.Join(mnt, "b-after"))
		require.NoError(t, err)
		require.True(t, bytes.Equal(after, got))
		got, err = os.ReadFile(filepath.Join(mnt, "c-small"))
		require.NoError(t, err)
		require.Equal(t, small, got)
		// The big file's last stretch, past 4 GiB inside the file.
		bf, err := os.Open(filepath.Join(mnt, "a-big"))
		require.NoError(t, err)
		defer bf.Close()
		tail := make([]byte, 3*4096+17)
		_, err = bf.ReadAt(tail, 4<<30)
		require.NoError(t, err)
		want := make([]byte, len(tail))
		p := &patternReader{off: 4 << 30, n: bigSize}
		_, err = io.ReadFull(p, want)
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, tail))
	})
}
