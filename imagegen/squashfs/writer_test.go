package squashfs

import (
	"bytes"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func needUnsquashfs(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("unsquashfs"); err != nil {
		t.Skip("unsquashfs not found: install squashfs-tools (make test installs it)")
	}
}

// build writes entries through add into a new image and returns its path.
func build(t *testing.T, opts Options, add func(w *Writer)) string {
	t.Helper()
	img, _ := buildStats(t, opts, add)
	return img
}

// buildStats is build that also returns the Writer's Stats.
func buildStats(t *testing.T, opts Options, add func(w *Writer)) (string, Stats) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "img.sqfs")
	f, err := os.Create(img)
	require.NoError(t, err)
	defer f.Close()
	w, err := NewWriter(f, opts)
	require.NoError(t, err)
	add(w)
	require.NoError(t, w.Close())
	return img, w.Stats()
}

func addFile(t *testing.T, w *Writer, name string, data []byte) {
	t.Helper()
	require.NoError(t, w.WriteHeader(&Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(1, 0)}))
	// Odd write sizes, so blocks straddle Write calls.
	for len(data) > 0 {
		n := min(len(data), 7777)
		_, err := w.Write(data[:n])
		require.NoError(t, err)
		data = data[n:]
	}
}

// extract unpacks img with unsquashfs, an independent reader.
func extract(t *testing.T, img string) string {
	t.Helper()
	needUnsquashfs(t)
	out := filepath.Join(t.TempDir(), "x")
	cmd := exec.Command("unsquashfs", "-no-progress", "-d", out, img)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "unsquashfs: %s", b)
	return out
}

func randomBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// TestDuplicates checks that duplicates cost no space and that files which
// only look like duplicates (same size and first blocks, or same blocks and
// different tails) still read back exactly.
func TestDuplicates(t *testing.T) {
	const bs = 4096
	base := randomBytes(1, 10*bs+123)
	sameBlocksOtherTail := bytes.Clone(base)
	sameBlocksOtherTail[len(base)-1] ^= 1
	differsInBlock3 := bytes.Clone(base)
	differsInBlock3[3*bs+5] ^= 1
	exactBlocks := randomBytes(2, 4*bs)
	exactBlocksOther := bytes.Clone(exactBlocks)
	exactBlocksOther[4*bs-1] ^= 1
	small := randomBytes(3, 1000)
	files := map[string][]byte{
		"a": base, "b": base, "c": sameBlocksOtherTail, "d": differsInBlock3, "e": base,
		"f": exactBlocks, "g": exactBlocksOther, "h": exactBlocks,
		"s1": small, "s2": small,
	}
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h", "s1", "s2"}
	opts := Options{Compression: Compression{Algorithm: None}, BlockSize: bs}
	withDups := build(t, opts, func(w *Writer) {
		for _, n := range names {
			addFile(t, w, n, files[n])
		}
	})
	opts.NoDuplicates = true
	noDups := build(t, opts, func(w *Writer) {
		for _, n := range names {
			addFile(t, w, n, files[n])
		}
	})
	for _, img := range []string{withDups, noDups} {
		dir := extract(t, img)
		for n, want := range files {
			got, err := os.ReadFile(filepath.Join(dir, n))
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, got), "%s: %s differs after extraction", img, n)
		}
	}
	// Uncompressed, the saving is exactly the duplicates' content: b and e
	// (copies of a), h (copy of f) and s2 (copy of s1).
	saved := int64(2*len(base) + len(exactBlocks) + len(small))
	a, b := fileSize(t, withDups), fileSize(t, noDups)
	require.Greater(t, b-a, saved-2*padTo, "duplicates were stored again: %d vs %d bytes", a, b)
}

// TestStatsAccountForContent checks the counts behind imagegen's summary
// line: every content byte is a duplicate, sparse, or compressed, and the
// duplicates include the leading blocks a file shares with an earlier one.
func TestStatsAccountForContent(t *testing.T) {
	const bs = 4096
	base := randomBytes(1, 10*bs+123)
	differsInBlock3 := bytes.Clone(base)
	differsInBlock3[3*bs+5] ^= 1
	withZeros := make([]byte, 5*bs)
	copy(withZeros[2*bs:], "not zero")
	small := randomBytes(3, 1000)
	_, st := buildStats(t, Options{Compression: Compression{Algorithm: None}, BlockSize: bs}, func(w *Writer) {
		for _, f := range []struct {
			name string
			data []byte
		}{{"a", base}, {"b", base}, {"d", differsInBlock3}, {"z", withZeros}, {"s1", small}, {"s2", small}} {
			addFile(t, w, f.name, f.data)
		}
	})
	require.Equal(t, Stats{
		Content: 2*int64(len(base)) + int64(len(differsInBlock3)+len(withZeros)+2*len(small)),
		// b whole, d's blocks 0-2, s2 whole.
		Duplicate: int64(len(base)) + 3*bs + int64(len(small)),
		Sparse:    4 * bs,
		// a, d from block 3 on, z's one non-zero block, s1 (a fragment).
		Compressed: int64(len(base)) + int64(len(differsInBlock3)-3*bs) + bs + int64(len(small)),
	}, st)
	require.Equal(t, st.Content, st.Duplicate+st.Sparse+st.Compressed)
}

// TestLevelOneTrial checks that at zstd 19 a block level 1 cannot shrink
// keeps level 1's result, that compressible blocks do not, and that
// ExactLevel turns the trial off; the image reads back either way.
func TestLevelOneTrial(t *testing.T) {
	const bs = 64 << 10 // the trial's smallest block
	noise := randomBytes(4, bs)
	text := bytes.Repeat([]byte("nix-store --load-db < nix-path-registration\n"), bs/44+1)[:bs]
	for _, exact := range []bool{false, true} {
		img, st := buildStats(t, Options{Compression: Compression{Algorithm: Zstd, Level: 19}, BlockSize: bs, ExactLevel: exact}, func(w *Writer) {
			addFile(t, w, "noise", noise)
			addFile(t, w, "text", text)
		})
		require.Equal(t, int64(2*bs), st.Compressed)
		if exact {
			require.Zero(t, st.TrialKept, "ExactLevel: no block may keep level 1's result")
		} else {
			require.Equal(t, int64(bs), st.TrialKept, "only the noise block should keep level 1's result")
		}
		dir := extract(t, img)
		for name, want := range map[string][]byte{"noise": noise, "text": text} {
			got, err := os.ReadFile(filepath.Join(dir, name))
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, got), "exact=%v: %s differs after extraction", exact, name)
		}
	}
}

func fileSize(t *testing.T, p string) int64 {
	fi, err := os.Stat(p)
	require.NoError(t, err)
	return fi.Size()
}

func TestSparseBlocksCostNothing(t *testing.T) {
	const bs = 4096
	data := make([]byte, 64*bs+10)
	copy(data[20*bs:], "not zero")
	img := build(t, Options{Compression: Compression{Algorithm: None}, BlockSize: bs}, func(w *Writer) {
		addFile(t, w, "sparse", data)
	})
	require.Less(t, fileSize(t, img), int64(4*bs), "zero blocks were stored")
	got, err := os.ReadFile(filepath.Join(extract(t, img), "sparse"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))
}

func TestBadInput(t *testing.T) {
	newWriter := func() *Writer {
		f, err := os.Create(filepath.Join(t.TempDir(), "img"))
		require.NoError(t, err)
		t.Cleanup(func() { f.Close() })
		w, err := NewWriter(f, Options{BlockSize: 4096, Compression: Compression{Algorithm: LZ4}})
		require.NoError(t, err)
		return w
	}
	cases := []struct {
		name string
		do   func(w *Writer) error
		want string
	}{
		{"long name", func(w *Writer) error {
			return w.WriteHeader(&Header{Name: "d/" + strings.Repeat("x", 256), Mode: 0o644})
		}, "/d/xxx"},
		{"dot dot", func(w *Writer) error { return w.WriteHeader(&Header{Name: "a/../b", Mode: 0o644}) }, `".."`},
		{"device", func(w *Writer) error {
			return w.WriteHeader(&Header{Name: "dev/null", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666})
		}, "/dev/null: character device: special files are not supported"},
		{"twice", func(w *Writer) error {
			require.NoError(t, w.WriteHeader(&Header{Name: "x", Mode: 0o644}))
			return w.WriteHeader(&Header{Name: "x", Mode: 0o644})
		}, "/x: added twice"},
		{"parent is a file", func(w *Writer) error {
			require.NoError(t, w.WriteHeader(&Header{Name: "x", Mode: 0o644}))
			return w.WriteHeader(&Header{Name: "x/y", Mode: 0o644})
		}, "parent /x is not a directory"},
		{"too long", func(w *Writer) error {
			require.NoError(t, w.WriteHeader(&Header{Name: "x", Mode: 0o644, Size: 3}))
			_, err := w.Write([]byte("abcd"))
			return err
		}, "write too long"},
		{"too short", func(w *Writer) error {
			require.NoError(t, w.WriteHeader(&Header{Name: "x", Mode: 0o644, Size: 3}))
			_, err := w.Write([]byte("ab"))
			require.NoError(t, err)
			return w.Close()
		}, "/x: 2 of 3 bytes written"},
		{"block size", func(*Writer) error {
			_, err := NewWriter(nil, Options{BlockSize: 5000})
			return err
		}, "block size 5000"},
		{"level", func(*Writer) error {
			_, err := NewWriter(nil, Options{Compression: Compression{Algorithm: Zstd, Level: 23}})
			return err
		}, "zstd level 23 out of range"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.do(newWriter())
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
		})
	}
}

func TestAddPathSpecialFile(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ok"), []byte("x"), 0o644))
	fifo := filepath.Join(dir, "sub", "fifo")
	require.NoError(t, os.Mkdir(filepath.Dir(fifo), 0o755))
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	f, err := os.Create(filepath.Join(t.TempDir(), "img"))
	require.NoError(t, err)
	defer f.Close()
	w, err := NewWriter(f, Options{})
	require.NoError(t, err)
	err = w.AddPath("", dir, nil)
	require.ErrorContains(t, err, fifo+": fifo: special files are not supported")
}

func TestParseCompression(t *testing.T) {
	for in, want := range map[string]Compression{
		"zstd -Xcompression-level 19": {Zstd, 19},
		"zstd":                        {Zstd, 19},
		"zstd:3":                      {Zstd, 3},
		"xz -Xdict-size 100%":         {XZ, 0},
		"gzip":                        {Gzip, 9},
		"lz4 -Xhc":                    {LZ4, 9},
		"none":                        {None, 0},
	} {
		got, err := ParseCompression(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "brotli", "zstd -Xfoo", "zstd:x", "zstd:99"} {
		_, err := ParseCompression(bad)
		require.Error(t, err, bad)
	}
}
