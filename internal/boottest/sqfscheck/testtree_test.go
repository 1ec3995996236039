package sqfscheck

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// newTree builds a tree in a fresh temporary directory, removed (read-only
// directories included) when the test ends.
func newTree(t *testing.T, opts Options) *Tree {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	t.Cleanup(func() { _ = RemoveAll(dir) }) // runs before TempDir's own cleanup
	start := time.Now()
	tree, err := Build(dir, opts)
	require.NoError(t, err)
	t.Logf("built %d entries, %d bytes of file data in %v", len(tree.Entries), tree.TotalSize(), time.Since(start).Round(time.Millisecond))
	return tree
}

// mksquashfs makes an image of src with the reference tool.
func mksquashfs(t *testing.T, src string, blockSize int, comp ...string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), comp[0]+".sqfs")
	args := []string{src, img, "-noappend", "-all-root", "-no-hardlinks",
		"-b", strconv.Itoa(blockSize), "-comp"}
	args = append(args, comp...)
	args = append(args, "-quiet", "-no-progress")
	start := time.Now()
	out, err := exec.Command("mksquashfs", args...).CombinedOutput()
	require.NoError(t, err, "mksquashfs %s\n%s", strings.Join(args, " "), out)
	t.Logf("mksquashfs -b %d -comp %s: %v", blockSize, strings.Join(comp, " "), time.Since(start).Round(time.Millisecond))
	return img
}

// checkAll runs every check against an image that should match src.
func checkAll(t *testing.T, tree *Tree, img string) {
	t.Helper()
	timed := func(name string, f func() error) {
		t.Helper()
		start := time.Now()
		require.NoError(t, f(), name)
		t.Logf("%s: %v", name, time.Since(start).Round(time.Millisecond))
	}
	timed("CompareListing", func() error { return CompareListing(img, tree.Root, 0, 0) })
	timed("ExtractAndDiff", func() error { return ExtractAndDiff(img, tree.Root) })
	if ok, why := CanMount(); ok {
		timed("MountAndDiff", func() error { return MountAndDiff(img, tree.Root) })
	} else {
		t.Logf("MountAndDiff skipped: %s", why)
	}
}

func TestBuildContents(t *testing.T) {
	t.Parallel()
	// Small big directory: creating files is slow on some disks, and
	// TestImages checks the default count.
	const bs = 4096
	small := Options{BlockSize: bs, BigDir: 300}
	tree := newTree(t, small)
	size := func(p string) int64 {
		t.Helper()
		e, ok := tree.Lookup(p)
		require.True(t, ok, p)
		return e.Size
	}
	require.EqualValues(t, bs, size("blocks/exact-1x"))
	require.EqualValues(t, 2*bs, size("blocks/exact-2x"))
	require.EqualValues(t, bs-1, size("blocks/minus-1"))
	require.EqualValues(t, bs+1, size("blocks/plus-1"))
	require.EqualValues(t, 3*bs, size("dups/blocks3-b"))

	var depth, long, links, empties, dirs0555 int
	modes := map[fs.FileMode]bool{}
	for _, e := range tree.Entries {
		if strings.HasPrefix(e.Path, "deep/") {
			depth = max(depth, strings.Count(e.Path, "/"))
		}
		if len(filepath.Base(e.Path)) == 255 {
			long++
		}
		if e.Mode&fs.ModeSymlink != 0 {
			links++
		}
		if e.Mode.IsRegular() {
			modes[e.Mode.Perm()] = true
			if e.Size == 0 {
				empties++
			}
		}
		if e.Mode.IsDir() && e.Mode.Perm() == 0o555 {
			dirs0555++
		}
		require.True(t, e.ModTime.Equal(time.Unix(1, 0)), "%s: mtime %v", e.Path, e.ModTime)
	}
	require.Equal(t, 300, bigDirEntries(tree))
	require.GreaterOrEqual(t, depth, 40)
	require.GreaterOrEqual(t, long, 5)
	require.Greater(t, links, 15)
	require.Greater(t, empties, 3)
	require.Positive(t, dirs0555)
	for _, m := range []fs.FileMode{0o755, 0o644, 0o555, 0o444} {
		require.True(t, modes[m], "no file with mode %v", m)
	}
	e, ok := tree.Lookup("links/dangling")
	require.True(t, ok)
	require.Equal(t, "does/not/exist", e.Target)

	// The same options give the same tree, byte for byte; another seed
	// gives other content.
	again := newTree(t, small)
	require.NoError(t, diffTrees(tree.Root, again.Root, "second build"))
	small.Seed = 7
	other := newTree(t, small)
	err := diffTrees(tree.Root, other.Root, "other seed")
	require.Error(t, err)
	require.Contains(t, err.Error(), "content differs")

	require.Error(t, func() error { _, err := Build(tree.Root, Options{}); return err }(), "non-empty dir")
}

// bigDirEntries counts the entries directly in bigdir/.
func bigDirEntries(tree *Tree) int {
	n := 0
	for _, e := range tree.Entries {
		if rest, ok := strings.CutPrefix(e.Path, "bigdir/"); ok && !strings.Contains(rest, "/") {
			n++
		}
	}
	return n
}

// TestImages checks images made by mksquashfs with several block sizes and
// compressors: every check must pass.
func TestImages(t *testing.T) {
	HaveTools(t)
	t.Parallel()
	// The big directory's layout does not depend on the data block size,
	// so one run uses a smaller one to save time; the default block size
	// run uses Options{}, the defaults.
	for _, tc := range []struct {
		opts  Options
		comps [][]string
	}{
		{Options{BlockSize: 4096}, [][]string{{"zstd"}, {"gzip"}}},
		{Options{BlockSize: 131072, BigDir: 500}, [][]string{{"xz"}, {"lz4"}}},
		{Options{}, [][]string{{"zstd", "-Xcompression-level", "3"}}},
	} {
		blockSize := tc.opts.withDefaults().BlockSize
		t.Run(fmt.Sprintf("b%d", blockSize), func(t *testing.T) {
			t.Parallel()
			tree := newTree(t, tc.opts)
			require.Equal(t, tc.opts.withDefaults().BigDir, bigDirEntries(tree))
			for _, comp := range tc.comps {
				t.Run(comp[0], func(t *testing.T) {
					img := mksquashfs(t, tree.Root, blockSize, comp...)
					info, err := Superblock(img)
					require.NoError(t, err)
					require.Equal(t, comp[0], info.Compression)
					require.Equal(t, blockSize, info.BlockSize)
					require.Equal(t, "4:0", info.Version)
					require.True(t, info.Padded(), "file %d bytes, bytes_used %d", info.FileSize, info.Raw.BytesUsed)
					require.EqualValues(t, info.FilesystemSize, info.Raw.BytesUsed)
					require.Equal(t, len(tree.Entries), info.Inodes)
					require.True(t, info.Duplicates)
					require.True(t, info.FragmentsStored)
					require.True(t, info.DataCompressed)
					require.Equal(t, 1, info.IDs)
					require.Empty(t, info.Other)
					if len(comp) > 1 {
						level, ok := info.CompressionLevel()
						require.True(t, ok, "%q", info.CompressionOptions)
						require.Equal(t, 3, level)
					} else {
						require.Empty(t, info.CompressionOptions)
					}
					checkAll(t, tree, img)
				})
			}
		})
	}
}

// TestChecksCatch proves that each check fails when the source no longer
// matches the image.
func TestChecksCatch(t *testing.T) {
	HaveTools(t)
	t.Parallel()
	opts := Options{BlockSize: 4096, BigDir: 300}
	orig := newTree(t, opts)
	img := mksquashfs(t, orig.Root, opts.BlockSize, "zstd")
	canMount, why := CanMount()
	if !canMount {
		t.Logf("MountAndDiff not checked: %s", why)
	}

	type result struct{ listing, extract, mount error }
	checkMutated := func(t *testing.T, mutate func(root string)) result {
		t.Helper()
		tree := newTree(t, opts)
		mutate(tree.Root)
		var r result
		r.listing = CompareListing(img, tree.Root, 0, 0)
		r.extract = ExtractAndDiff(img, tree.Root)
		if canMount {
			r.mount = MountAndDiff(img, tree.Root)
		}
		return r
	}
	requireReports := func(t *testing.T, err error, parts ...string) {
		t.Helper()
		require.Error(t, err)
		for _, p := range parts {
			require.Contains(t, err.Error(), p)
		}
	}
	mtime := time.Unix(1, 0)

	t.Run("unchanged", func(t *testing.T) {
		r := checkMutated(t, func(string) {})
		require.NoError(t, r.listing)
		require.NoError(t, r.extract)
		require.NoError(t, r.mount)
	})
	t.Run("mode", func(t *testing.T) {
		r := checkMutated(t, func(root string) {
			require.NoError(t, os.Chmod(filepath.Join(root, "modes/file-0644"), 0o600))
		})
		const want = `"modes/file-0644": mode -rw-r--r-- in image, -rw------- in source`
		requireReports(t, r.listing, want)
		requireReports(t, r.extract, want)
		if canMount {
			requireReports(t, r.mount, want)
		}
		t.Logf("example report:\n%v", r.listing)
	})
	t.Run("deleted", func(t *testing.T) {
		r := checkMutated(t, func(root string) {
			require.NoError(t, os.Remove(filepath.Join(root, "text/hello.txt")))
		})
		requireReports(t, r.listing, `"text/hello.txt": in the image`)
		requireReports(t, r.extract, `"text/hello.txt": in the image`, "Only in ", "hello.txt")
		if canMount {
			requireReports(t, r.mount, `"text/hello.txt": in the image`, "Only in ")
		}
	})
	t.Run("added", func(t *testing.T) {
		r := checkMutated(t, func(root string) {
			p := filepath.Join(root, "text/new.txt")
			require.NoError(t, os.WriteFile(p, []byte("new\n"), 0o644))
		})
		requireReports(t, r.listing, `"text/new.txt": missing from the image`)
		requireReports(t, r.extract, `"text/new.txt": missing from the image`)
		if canMount {
			requireReports(t, r.mount, `"text/new.txt": missing from the image`)
		}
	})
	t.Run("one byte", func(t *testing.T) {
		const victim = "blocks/exact-2x"
		r := checkMutated(t, func(root string) {
			p := filepath.Join(root, victim)
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			data[5000] ^= 0x40
			require.NoError(t, os.WriteFile(p, data, 0o644))
			require.NoError(t, lchtimes(p, mtime)) // only the content differs
		})
		require.NoError(t, r.listing, "a listing cannot see file contents")
		requireReports(t, r.extract, `"blocks/exact-2x": content differs at byte 5000`, "Files ", " differ")
		if canMount {
			requireReports(t, r.mount, `"blocks/exact-2x": content differs at byte 5000`, "Files ", " differ")
		}
	})
	t.Run("symlink target", func(t *testing.T) {
		r := checkMutated(t, func(root string) {
			p := filepath.Join(root, "links/dangling")
			require.NoError(t, os.Remove(p))
			require.NoError(t, os.Symlink("does/not/exisT", p))
			require.NoError(t, lchtimes(p, mtime))
			require.NoError(t, lchtimes(filepath.Dir(p), mtime))
		})
		want := `"links/dangling": symlink target "does/not/exist" in image, "does/not/exisT" in source`
		requireReports(t, r.listing, want)
		requireReports(t, r.extract, want, "Symbolic links ")
		if canMount {
			requireReports(t, r.mount, want, "Symbolic links ")
		}
	})
	t.Run("mtime", func(t *testing.T) {
		r := checkMutated(t, func(root string) {
			require.NoError(t, lchtimes(filepath.Join(root, "dups/tiny-a"), mtime.Add(time.Hour)))
		})
		requireReports(t, r.listing, `"dups/tiny-a": mtime 1970-01-01T00:00:00Z in image, 1970-01-01T01:00:01Z in source`)
		requireReports(t, r.extract, `"dups/tiny-a": mtime`)
		if canMount {
			requireReports(t, r.mount, `"dups/tiny-a": mtime`)
		}
	})
	t.Run("type", func(t *testing.T) {
		r := checkMutated(t, func(root string) {
			p := filepath.Join(root, "empty")
			require.NoError(t, os.Remove(p))
			require.NoError(t, os.WriteFile(p, nil, 0o755))
			require.NoError(t, lchtimes(p, mtime))
		})
		requireReports(t, r.listing, `"empty": type d`)
		requireReports(t, r.extract, `"empty": type d`)
	})
	t.Run("owner", func(t *testing.T) {
		err := CompareListing(img, orig.Root, 1000, 100)
		requireReports(t, err, `".": owner 0/0 in image, want 1000/100`, "more")
	})
	t.Run("not an image", func(t *testing.T) {
		bogus := filepath.Join(t.TempDir(), "bogus")
		require.NoError(t, os.WriteFile(bogus, make([]byte, 8192), 0o644))
		_, err := Superblock(bogus)
		require.Error(t, err)
		require.Error(t, CompareListing(bogus, orig.Root, 0, 0))
		require.Error(t, ExtractAndDiff(bogus, orig.Root))
		if canMount {
			require.Error(t, MountAndDiff(bogus, orig.Root))
		}
	})
}

// TestSuperblockVariants checks the parsing of unsquashfs -s for options
// that change the flags.
func TestSuperblockVariants(t *testing.T) {
	HaveTools(t)
	t.Parallel()
	src := filepath.Join(t.TempDir(), "src")
	require.NoError(t, os.MkdirAll(filepath.Join(src, "d"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "d", "f"), []byte("hello\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(src, "g"), []byte("hello\n"), 0o644))
	for _, tc := range []struct {
		args  []string
		check func(t *testing.T, i Info)
	}{
		{[]string{"-comp", "gzip", "-Xcompression-level", "5"}, func(t *testing.T, i Info) {
			level, ok := i.CompressionLevel()
			require.True(t, ok)
			require.Equal(t, 5, level)
			require.True(t, i.Raw.Has(FlagCompressorOptions))
		}},
		{[]string{"-comp", "xz", "-Xbcj", "x86"}, func(t *testing.T, i Info) {
			require.Contains(t, i.CompressionOptions, "Filters selected: x86")
		}},
		{[]string{"-comp", "lz4", "-Xhc"}, func(t *testing.T, i Info) {
			require.Len(t, i.CompressionOptions, 1)
		}},
		{[]string{"-no-fragments", "-no-duplicates", "-no-exports", "-no-xattrs"}, func(t *testing.T, i Info) {
			require.False(t, i.FragmentsStored)
			require.False(t, i.Duplicates)
			require.False(t, i.Exportable)
			require.False(t, i.XattrsStored)
			require.Zero(t, i.Fragments)
			require.Equal(t, NoTable, i.Raw.ExportTable)
		}},
		{[]string{"-noI", "-noD", "-noF", "-noX", "-always-use-fragments"}, func(t *testing.T, i Info) {
			require.False(t, i.InodesCompressed)
			require.False(t, i.DataCompressed)
			require.False(t, i.FragmentsCompressed)
			require.True(t, i.FragmentsStored)
			require.True(t, i.AlwaysFragments)
			require.True(t, i.Raw.Has(FlagUncompressedFragments))
		}},
		{[]string{"-nopad"}, func(t *testing.T, i Info) {
			require.False(t, i.Padded())
			require.EqualValues(t, i.FileSize, i.Raw.BytesUsed)
		}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			args := append([]string{src, img, "-noappend", "-all-root", "-quiet", "-no-progress"}, tc.args...)
			out, err := exec.Command("mksquashfs", args...).CombinedOutput()
			require.NoError(t, err, "%s", out)
			info, err := Superblock(img)
			require.NoError(t, err)
			require.Equal(t, 4, info.Inodes)
			require.Empty(t, info.Other)
			tc.check(t, info)
			require.NoError(t, CompareListing(img, src, 0, 0))
		})
	}
}

func TestParseListing(t *testing.T) {
	t.Parallel()
	const out = "drwxr-xr-x 0/0                     115 1970-01-01 00:00 \n" +
		"-rw-r--r-- 1000/100                  3 2024-02-29 13:37 /a b\n" +
		"lrwxrwxrwx 0/0                      10 1970-01-01 00:00 /link with -> arrow -> with space\n" +
		"lrwxrwxrwx 0/0                       6 1970-01-01 00:00 /nl\nname -> x -> y\n" +
		"-rwsr-sr-T 0/0                       1 1970-01-01 00:00 /new\n" +
		"line\n" +
		"crw-r--r-- 0/0                   1,  3 1970-01-01 00:00 /dev/null\n" +
		"brw-rw---- 0/6                  259,  1 1970-01-01 00:00 /dev/nvme\n" +
		"prw------- 0/0                       0 1970-01-01 00:00 /fifo\n" +
		"drwxrwxrwt 4294967294/4294967294                  3 2106-02-07 06:28 /tmp\n"
	got, err := ParseListing(strings.NewReader(out))
	require.NoError(t, err)
	want := []Entry{
		{Path: ".", Mode: fs.ModeDir | 0o755, Size: 115},
		{Path: "a b", Mode: 0o644, Uid: 1000, Gid: 100, Size: 3, ModTime: time.Date(2024, 2, 29, 13, 37, 0, 0, time.UTC)},
		{Path: "link with -> arrow", Mode: fs.ModeSymlink | 0o777, Size: 10, Target: "with space"},
		{Path: "nl\nname", Mode: fs.ModeSymlink | 0o777, Size: 6, Target: "x -> y"},
		{Path: "new\nline", Mode: fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky | 0o754, Size: 1},
		{Path: "dev/null", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o644, Major: 1, Minor: 3},
		{Path: "dev/nvme", Mode: fs.ModeDevice | 0o660, Gid: 6, Major: 259, Minor: 1},
		{Path: "fifo", Mode: fs.ModeNamedPipe | 0o600},
		{Path: "tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777, Uid: 4294967294, Gid: 4294967294, Size: 3, ModTime: time.Date(2106, 2, 7, 6, 28, 0, 0, time.UTC)},
	}
	epoch := time.Unix(0, 0).UTC()
	for i := range want {
		if want[i].ModTime.IsZero() {
			want[i].ModTime = epoch
		}
	}
	require.Equal(t, want, got)

	for _, bad := range []string{
		"",
		"garbage\n",
		"lrwxrwxrwx 0/0                      99 1970-01-01 00:00 /short -> x\n",
		"-rw-r--r-- 0/0                       1 1970-01-01 00:00 squashfs-root/a\n",
	} {
		_, err := ParseListing(strings.NewReader(bad))
		require.Error(t, err, "%q", bad)
	}
}

// TestSparse4G squashes, lists, extracts and mounts a tree with a sparse
// file of 4 GiB + 12345 bytes.
func TestSparse4G(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the 4 GiB sparse file test in -short mode: mksquashfs reads all 4 GiB (about 15 s)")
	}
	HaveTools(t)
	t.Parallel()
	const bs = 131072
	tree := newTree(t, Options{BlockSize: bs, BigDir: 100, Sparse4G: true})
	e, ok := tree.Lookup(Sparse4GPath)
	require.True(t, ok)
	require.EqualValues(t, Sparse4GSize, e.Size)
	img := mksquashfs(t, tree.Root, bs, "zstd")
	fi, err := os.Stat(img)
	require.NoError(t, err)
	require.Less(t, fi.Size(), int64(64<<20), "sparse blocks should take no space")
	info, err := Superblock(img)
	require.NoError(t, err)
	require.Equal(t, bs, info.BlockSize)
	checkAll(t, tree, img)
}
