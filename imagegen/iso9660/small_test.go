package iso9660

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/sqfscheck"
)

// ckOpenImage reads an image with our test reader: its volume descriptors
// and its Rock Ridge hierarchy.
func ckOpenImage(t *testing.T, iso string) (*ckReader, []ckVolume, map[string]*ckEntry) {
	t.Helper()
	f, err := os.Open(iso)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	require.NoError(t, err)
	ir := &ckReader{r: f, size: st.Size()}
	vols, _, err := ir.descriptors()
	require.NoError(t, err)
	require.NotEmpty(t, vols)
	prim, err := ir.hierarchy(vols[0].root, false, true)
	require.NoError(t, err)
	return ir, vols, prim
}

var ckReXorrisoVolID = regexp.MustCompile(`(?m)^Volume [Ii]d *: '?(.*?)'?$`)

// TestVolumeID: the volume ID is recorded byte for byte, lower case
// included, up to 32 bytes, as isoinfo, xorriso, blkid (which NixOS's
// root=LABEL= lookup goes through) and the raw descriptor show.
func TestVolumeID(t *testing.T) {
	ckNeedTools(t, "isoinfo", "xorriso")
	id32 := "nixos-gnome-25.05.20250601-x86_6"
	require.Len(t, id32, 32)
	for _, id := range []string{"nixos-minimal-25.05-x86_64", id32, "A"} {
		t.Run(id, func(t *testing.T) {
			iso := filepath.Join(t.TempDir(), "v.iso")
			ckWriteImage(t, iso, Options{VolumeID: id, Joliet: true}, func(w *Writer) error {
				if err := w.WriteHeader(&Header{Name: "f", Mode: 0o644, Size: 2}); err != nil {
					return err
				}
				_, err := w.Write([]byte("f\n"))
				return err
			})
			out := ckRunTool(t, "isoinfo", "-d", "-i", iso)
			m := ckReVolID.FindStringSubmatch(out)
			require.NotNil(t, m, out)
			assert.Equal(t, id, m[1], "isoinfo -d")

			out = ckRunCombined(t, "xorriso", "-indev", iso, "-pvd_info")
			m = ckReXorrisoVolID.FindStringSubmatch(out)
			require.NotNil(t, m, out)
			assert.Equal(t, id, m[1], "xorriso -pvd_info")

			if _, err := exec.LookPath("blkid"); err == nil {
				out = ckRunTool(t, "blkid", "-p", "-o", "value", "-s", "LABEL", iso)
				assert.Equal(t, id, strings.TrimSpace(out), "blkid LABEL")
			}

			_, vols, _ := ckOpenImage(t, iso)
			assert.Equal(t, []byte(fmt.Sprintf("%-32s", id)), vols[0].volumeID, "raw PVD field")
		})
	}
}

// TestLongSymlinkTarget: symlink targets up to PATH_MAX-1 (4095 bytes), as
// the Linux kernel allows, including ones of one-byte components whose SL
// entries need a chain of several continuation areas, and one of 255-byte
// components. Other readers have lower limits, whoever wrote the image:
// libisofs (xorriso) refuses to load an image with a target of 1024 bytes
// or more, isoinfo 1.1.11 cuts targets near 2 KiB and crashes near 3 KiB.
// So isoinfo checks the targets up to 1,500 bytes and our reader all.
func TestLongSymlinkTarget(t *testing.T) {
	ckNeedTools(t, "isoinfo")
	long := strings.Repeat("long-target/", 4095/12)
	long += strings.Repeat("t", 4095-len(long))
	wide := "/" + strings.Repeat(strings.Repeat("w", 255)+"/", 15) + strings.Repeat("x", 4095-1-256*15)
	targets := map[string]string{
		"long":    long,
		"tiny":    strings.Repeat("a/", 2047) + "b",
		"wide":    wide,
		"short":   "x",
		"i-tiny":  strings.Repeat("a/", 749) + "bc", // 1,500 bytes, 2,250 of SL entries
		"i-wide":  strings.Repeat(strings.Repeat("v", 255)+"/", 5) + strings.Repeat("y", 220),
		"i-mixed": "/" + strings.Repeat("../x/./", 200) + "end",
	}
	name255 := strings.Repeat("n", 255)
	targets[name255] = targets["tiny"]
	for name, v := range targets {
		require.LessOrEqual(t, len(v), 4095, name)
	}
	write := func(iso string, only func(name string) bool) {
		ckWriteImage(t, iso, Options{VolumeID: "LINKS"}, func(w *Writer) error {
			for name, target := range targets {
				if !only(name) {
					continue
				}
				if err := w.WriteHeader(&Header{Name: "d/" + name, Mode: fs.ModeSymlink | 0o777, Linkname: target}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	dir := t.TempDir()
	iso := filepath.Join(dir, "all.iso")
	write(iso, func(string) bool { return true })
	_, _, prim := ckOpenImage(t, iso)
	for name, target := range targets {
		e := prim["d/"+name]
		require.NotNil(t, e, name)
		assert.Equal(t, target, e.rr.target, "%s: target read back", name)
		assert.Equal(t, fs.ModeSymlink|0o777, e.fileMode())
	}
	assert.GreaterOrEqual(t, len(prim["d/tiny"].rr.ces), 4, "a 6 KiB SL chain needs 4 chained continuation areas")
	assert.GreaterOrEqual(t, len(prim["d/i-tiny"].rr.ces), 2, "chained continuation areas")

	// isoinfo, on an image without the targets it cannot take
	forIsoinfo := func(name string) bool { return strings.HasPrefix(name, "i-") || name == "short" }
	iso = filepath.Join(dir, "isoinfo.iso")
	write(iso, forIsoinfo)
	out := ckRunTool(t, "isoinfo", "-R", "-l", "-i", iso)
	listed, err := ckParseIsoinfo(out)
	require.NoError(t, err)
	got := map[string]bool{}
	for _, e := range listed {
		got[e.text] = true
	}
	for name, target := range targets {
		if forIsoinfo(name) {
			assert.True(t, got[name+" -> "+target], "isoinfo -R -l shows %s -> %.40s...", name, target)
		}
	}
}

// TestStream: files written through Stream, out of order (the header
// patched at offset 0 last, as the squashfs writer does), with a hole, or
// not at all, have the size of what was written and that content; files
// added after a stream land after it.
func TestStream(t *testing.T) {
	ckNeedTools(t, "osirrox", "isoinfo")
	rng := rand.New(rand.NewPCG(1, 2))
	body := make([]byte, 300<<10+7)
	for i := range body {
		body[i] = byte(rng.Uint32())
	}
	header := bytes.Repeat([]byte("HSQS"), 24)
	want := map[string][]byte{
		"before.txt": []byte("before\n"),
		"after.txt":  []byte("after\n"),
	}
	squash := append(append([]byte{}, header...), body...)
	want["nix-store.squashfs"] = squash
	holey := append(make([]byte, 1<<20), []byte("tail after a hole")...)
	want["holey"] = holey
	want["empty-stream"] = nil

	iso := filepath.Join(t.TempDir(), "s.iso")
	ckWriteImage(t, iso, Options{VolumeID: "STREAM", Joliet: true}, func(w *Writer) error {
		add := func(name string) error {
			if err := w.WriteHeader(&Header{Name: name, Mode: 0o644, Size: int64(len(want[name]))}); err != nil {
				return err
			}
			_, err := w.Write(want[name])
			return err
		}
		if err := add("before.txt"); err != nil {
			return err
		}
		s, err := w.Stream(&Header{Name: "nix-store.squashfs", Mode: 0o444, Size: 12345})
		if err != nil {
			return err
		}
		// Nothing else can be added while a stream is open.
		err = w.WriteHeader(&Header{Name: "x", Mode: 0o644})
		ckErrContains(t, err, "/nix-store.squashfs", "still open")
		_, err = w.Stream(&Header{Name: "y", Mode: 0o644})
		ckErrContains(t, err, "/nix-store.squashfs", "still open")
		require.Error(t, w.Close())
		// The body back to front in uneven pieces, then the header.
		for end := len(body); end > 0; {
			start := max(0, end-77777)
			if _, err := s.WriteAt(body[start:end], int64(len(header)+start)); err != nil {
				return err
			}
			end = start
		}
		got := make([]byte, 10)
		_, err = s.ReadAt(got, int64(len(header)))
		require.NoError(t, err)
		require.Equal(t, body[:10], got, "ReadAt of what was written")
		if _, err := s.WriteAt(header, 0); err != nil {
			return err
		}
		if err := s.Close(); err != nil {
			return err
		}
		require.Error(t, s.Close(), "closing a stream twice")
		_, err = s.WriteAt([]byte("x"), 0)
		require.Error(t, err, "writing to a closed stream")

		s, err = w.Stream(&Header{Name: "holey", Mode: 0o644})
		if err != nil {
			return err
		}
		if _, err := s.WriteAt(holey[1<<20:], 1<<20); err != nil {
			return err
		}
		if err := s.Close(); err != nil {
			return err
		}
		s, err = w.Stream(&Header{Name: "empty-stream", Mode: 0o644})
		if err != nil {
			return err
		}
		if err := s.Close(); err != nil {
			return err
		}
		return add("after.txt")
	})

	_, _, prim := ckOpenImage(t, iso)
	for name, data := range want {
		e := prim[name]
		require.NotNil(t, e, name)
		assert.Equal(t, int64(len(data)), e.size(), "%s: size", name)
	}
	// Streams do not overlap what follows.
	sq := prim["nix-store.squashfs"].records[0]
	after := prim["after.txt"].records[0]
	holeRec := prim["holey"].records[0]
	assert.GreaterOrEqual(t, int64(holeRec.extent)*ckSector, int64(sq.extent)*ckSector+int64(sq.size))
	assert.GreaterOrEqual(t, int64(after.extent)*ckSector, int64(holeRec.extent)*ckSector+int64(holeRec.size))

	dst := filepath.Join(t.TempDir(), "x")
	ckRunTool(t, "osirrox", "-indev", iso, "-extract", "/", dst)
	for name, data := range want {
		got, err := os.ReadFile(filepath.Join(dst, name))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(data, got), "%s: content extracted by osirrox", name)
	}
	st, err := os.Stat(filepath.Join(dst, "nix-store.squashfs"))
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o444), st.Mode().Perm())
}

// ckTreeDigest is what our reader sees of an image: every path with its
// mode, size, target and content hash.
func ckTreeDigest(t *testing.T, iso string) map[string]string {
	t.Helper()
	ir, _, prim := ckOpenImage(t, iso)
	out := map[string]string{}
	for p, e := range prim {
		s := fmt.Sprintf("%v %d %q %v", e.fileMode(), e.size(), e.rr.target, e.rr.mtime.Unix())
		if e.fileMode().IsRegular() {
			data, err := ir.readFile(e, 0, int(e.size()))
			require.NoError(t, err)
			s += fmt.Sprintf(" %x", sha256.Sum256(data))
		}
		out[p] = s
	}
	return out
}

// TestReproducible: the same entries in the same order give the same
// bytes, whatever the output file is called; another ModTime gives other
// bytes. The order of the entries is not irrelevant: file data is laid
// down as it arrives (see doc.go), so another order gives the same tree
// but other bytes.
func TestReproducible(t *testing.T) {
	ckNeedFiles(t, ckIsolinuxBin, ckIsohdpfxBin)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	t.Cleanup(func() { sqfscheck.RemoveAll(src) })
	_, err := sqfscheck.Build(src, sqfscheck.Options{BlockSize: 1024, BigDir: 300, Depth: 10})
	require.NoError(t, err)
	require.NoError(t, ckCopyTestFile(filepath.Join(src, "isolinux/isolinux.bin"), ckIsolinuxBin, 0o444))
	require.NoError(t, os.MkdirAll(filepath.Join(src, "boot"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "boot/efi.img"), bytes.Repeat([]byte("EFI IMAGE "), 1000), 0o444))
	entries, err := sqfscheck.ListDir(src)
	require.NoError(t, err)

	write := func(name string, opts Options, order []sqfscheck.Entry) []byte {
		iso := filepath.Join(dir, name)
		ckWriteImage(t, iso, opts, func(w *Writer) error {
			for _, e := range order {
				h := &Header{Name: e.Path, Mode: e.Mode, ModTime: e.ModTime, Linkname: e.Target}
				if e.Mode.IsRegular() {
					h.Size = e.Size
				}
				if err := w.WriteHeader(h); err != nil {
					return err
				}
				if e.Mode.IsRegular() && e.Size > 0 {
					data, err := os.ReadFile(filepath.Join(src, e.Path))
					if err != nil {
						return err
					}
					if _, err := w.Write(data); err != nil {
						return err
					}
				}
			}
			return nil
		})
		data, err := os.ReadFile(iso)
		require.NoError(t, err)
		return data
	}
	opts := ckBootOptions(t, "nixos-test")
	a := write("a.iso", opts, entries)
	b := write("other-name.iso", opts, entries)
	t.Run("same order, same bytes", func(t *testing.T) {
		require.True(t, bytes.Equal(a, b), "two runs differ")
	})
	t.Run("other ModTime, other bytes", func(t *testing.T) {
		o := opts
		o.ModTime = opts.ModTime.Add(time.Second)
		c := write("c.iso", o, entries)
		require.Equal(t, len(a), len(c))
		require.False(t, bytes.Equal(a, c))
		// ... only in dates: the volume descriptors differ.
		require.False(t, bytes.Equal(a[16*2048:17*2048], c[16*2048:17*2048]))
	})
	t.Run("other order, same tree, other bytes", func(t *testing.T) {
		rev := make([]sqfscheck.Entry, len(entries))
		for i, e := range entries {
			rev[len(entries)-1-i] = e
		}
		d := write("d.iso", opts, rev)
		require.False(t, bytes.Equal(a, d), "data is laid down in the order of arrival: expected another layout")
		da, dd := ckTreeDigest(t, filepath.Join(dir, "a.iso")), ckTreeDigest(t, filepath.Join(dir, "d.iso"))
		// These hold sector numbers.
		for _, p := range []string{"isolinux/boot.cat", "isolinux/isolinux.bin"} {
			require.Contains(t, dd, p)
			delete(da, p)
			delete(dd, p)
		}
		var diffs []string
		for p, s := range da {
			if dd[p] != s {
				diffs = append(diffs, fmt.Sprintf("%q: %s, reversed: %s", p, s, dd[p]))
			}
		}
		require.Empty(t, diffs)
		require.Equal(t, len(da), len(dd))
	})
}

// ckMemFile is an in-memory File.
type ckMemFile struct{ b []byte }

func (m *ckMemFile) WriteAt(p []byte, off int64) (int, error) {
	if need := off + int64(len(p)); need > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, need-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

func (m *ckMemFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *ckMemFile) Truncate(size int64) error {
	if size < int64(len(m.b)) {
		m.b = m.b[:size]
	} else {
		m.b = append(m.b, make([]byte, size-int64(len(m.b)))...)
	}
	return nil
}

// TestBadInput: what cannot be recorded is refused with an error that
// names the culprit, and nothing panics.
func TestBadInput(t *testing.T) {
	mbr := make([]byte, 440)
	newW := func(t *testing.T, opts Options) *Writer {
		t.Helper()
		if opts.VolumeID == "" {
			opts.VolumeID = "BAD"
		}
		w, err := NewWriter(&ckMemFile{}, opts)
		require.NoError(t, err)
		return w
	}
	file := func(name string, size int64) *Header { return &Header{Name: name, Mode: 0o644, Size: size} }

	t.Run("volume ID", func(t *testing.T) {
		_, err := NewWriter(&ckMemFile{}, Options{})
		ckErrContains(t, err, "volume ID", "0 bytes")
		_, err = NewWriter(&ckMemFile{}, Options{VolumeID: strings.Repeat("v", 33)})
		ckErrContains(t, err, "volume ID", strings.Repeat("v", 33), "33 bytes")
	})
	t.Run("bad names", func(t *testing.T) {
		w := newW(t, Options{})
		for _, name := range []string{"a/../b", "..", "a/./b", "a//b", "nul\x00byte"} {
			ckErrContains(t, w.WriteHeader(file(name, 0)), fmt.Sprintf("%q", name))
		}
		long := strings.Repeat("x", 256)
		ckErrContains(t, w.WriteHeader(file("dir/"+long, 0)), "/dir/"+long, "256 bytes", "255")
		ckErrContains(t, w.WriteHeader(&Header{Name: long + "/f", Mode: 0o644}), long, "256 bytes")
		require.NoError(t, w.WriteHeader(file(strings.Repeat("y", 255), 0)), "255 bytes is fine")
		require.NoError(t, w.Close())
	})
	t.Run("special files", func(t *testing.T) {
		w := newW(t, Options{})
		for i, m := range []fs.FileMode{fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice, fs.ModeNamedPipe, fs.ModeSocket, fs.ModeIrregular} {
			name := fmt.Sprintf("dev/special-%d", i)
			ckErrContains(t, w.WriteHeader(&Header{Name: name, Mode: m | 0o644}), "/"+name, "special file")
		}
		ckErrContains(t, w.WriteHeader(&Header{Name: "l", Mode: fs.ModeSymlink | 0o777}), "/l", "empty target")
		ckErrContains(t, w.WriteHeader(file("neg", -1)), "/neg", "negative size")
		require.NoError(t, w.Close())
	})
	t.Run("added twice", func(t *testing.T) {
		w := newW(t, Options{})
		require.NoError(t, w.WriteHeader(file("a/f", 0)))
		ckErrContains(t, w.WriteHeader(file("a/f", 0)), "/a/f", "twice")
		ckErrContains(t, w.WriteHeader(&Header{Name: "a/f", Mode: fs.ModeDir | 0o755}), "/a/f", "twice")
		require.NoError(t, w.WriteHeader(&Header{Name: "a", Mode: fs.ModeDir | 0o755}), "an implicit directory given later")
		ckErrContains(t, w.WriteHeader(&Header{Name: "a", Mode: fs.ModeDir | 0o755}), "/a", "twice")
		require.NoError(t, w.WriteHeader(&Header{Name: "b/c/g", Mode: 0o644}))
		ckErrContains(t, w.WriteHeader(file("b/c", 0)), "/b/c", "directory")
		ckErrContains(t, w.WriteHeader(file("a/f/under-a-file", 0)), "/a/f")
		require.NoError(t, w.WriteHeader(&Header{Name: ".", Mode: fs.ModeDir | 0o755}))
		ckErrContains(t, w.WriteHeader(&Header{Name: "/", Mode: fs.ModeDir | 0o755}), "twice")
		require.NoError(t, w.Close())
	})
	t.Run("short file at the next header", func(t *testing.T) {
		w := newW(t, Options{})
		require.NoError(t, w.WriteHeader(file("dir/short", 10)))
		_, err := w.Write([]byte("abc"))
		require.NoError(t, err)
		ckErrContains(t, w.WriteHeader(file("next", 1)), "/dir/short", "3 of 10")
		// The image would be wrong: the error sticks.
		ckErrContains(t, w.Close(), "/dir/short")
	})
	t.Run("short file at Close", func(t *testing.T) {
		w := newW(t, Options{})
		require.NoError(t, w.WriteHeader(file("short", 10)))
		_, err := w.ReadFrom(strings.NewReader("abcd"))
		ckErrContains(t, err, "/short")
		ckErrContains(t, w.Close(), "/short", "4 of 10")
	})
	t.Run("write beyond the size", func(t *testing.T) {
		w := newW(t, Options{})
		_, err := w.Write([]byte("x"))
		ckErrContains(t, err, "without")
		require.NoError(t, w.WriteHeader(file("three", 3)))
		_, err = w.Write([]byte("abcd"))
		ckErrContains(t, err, "/three", "beyond")
		_, err = w.Write([]byte("abc"))
		require.NoError(t, err)
		_, err = w.Write([]byte("d"))
		ckErrContains(t, err, "/three", "beyond")
		require.NoError(t, w.Close())
	})
	t.Run("ReadFrom beyond the size", func(t *testing.T) {
		// io.Copy from a plain reader (or an *os.File) goes through ReadFrom.
		w := newW(t, Options{})
		require.NoError(t, w.WriteHeader(file("copied", 3)))
		_, err := io.Copy(w, struct{ io.Reader }{strings.NewReader("abcdef")})
		ckErrContains(t, err, "/copied", "beyond")
		w = newW(t, Options{})
		require.NoError(t, w.WriteHeader(file("empty", 0)))
		_, err = w.ReadFrom(strings.NewReader("x"))
		require.Error(t, err, "data for an empty file")
		w = newW(t, Options{})
		require.NoError(t, w.WriteHeader(file("exact", 3)))
		n, err := io.Copy(w, struct{ io.Reader }{strings.NewReader("abc")})
		require.NoError(t, err)
		require.Equal(t, int64(3), n)
		require.NoError(t, w.Close())
	})
	t.Run("hybrid without a BIOS entry", func(t *testing.T) {
		_, err := NewWriter(&ckMemFile{}, Options{VolumeID: "H", Boot: []BootEntry{{Platform: EFI, Path: "efi.img"}}, Hybrid: &Hybrid{MBR: mbr, GPT: true}})
		ckErrContains(t, err, "hybrid", "BIOS")
		_, err = NewWriter(&ckMemFile{}, Options{VolumeID: "H", Boot: []BootEntry{{Platform: BIOS, Path: "isolinux.bin"}}, Hybrid: &Hybrid{MBR: mbr[:100]}})
		ckErrContains(t, err, "MBR", "100 bytes")
	})
	t.Run("boot image never added", func(t *testing.T) {
		w := newW(t, Options{Boot: []BootEntry{{Platform: BIOS, Path: "isolinux/isolinux.bin", BootInfoTable: true}, {Platform: EFI, Path: "boot/efi.img"}}})
		require.NoError(t, w.WriteHeader(file("isolinux/isolinux.bin", 4)))
		_, err := w.Write([]byte("boot"))
		require.NoError(t, err)
		ckErrContains(t, w.Close(), "/boot/efi.img")
	})
	t.Run("boot image empty or a directory", func(t *testing.T) {
		w := newW(t, Options{Boot: []BootEntry{{Platform: EFI, Path: "efi.img"}}})
		require.NoError(t, w.WriteHeader(file("efi.img", 0)))
		ckErrContains(t, w.Close(), "/efi.img")
		w = newW(t, Options{Boot: []BootEntry{{Platform: EFI, Path: "efi"}}})
		require.NoError(t, w.WriteHeader(&Header{Name: "efi", Mode: fs.ModeDir | 0o755}))
		ckErrContains(t, w.Close(), "/efi")
	})
	t.Run("boot image streamed", func(t *testing.T) {
		w := newW(t, Options{Boot: []BootEntry{{Platform: EFI, Path: "efi.img"}}})
		_, err := w.Stream(&Header{Name: "efi.img", Mode: 0o644})
		ckErrContains(t, err, "/efi.img")
	})
	t.Run("bad boot paths", func(t *testing.T) {
		_, err := NewWriter(&ckMemFile{}, Options{VolumeID: "B", Boot: []BootEntry{{Platform: EFI, Path: "../efi.img"}}})
		ckErrContains(t, err, "../efi.img")
		_, err = NewWriter(&ckMemFile{}, Options{VolumeID: "B", Catalog: "a/../cat", Boot: []BootEntry{{Platform: EFI, Path: "efi.img"}}})
		ckErrContains(t, err, "a/../cat")
	})
	t.Run("catalog and boot paths with a leading slash", func(t *testing.T) {
		// Paths are cleaned everywhere: "/x" is "x".
		w := newW(t, Options{Catalog: "/boot/boot.cat", Boot: []BootEntry{{Platform: EFI, Path: "/efi.img"}}})
		require.NoError(t, w.WriteHeader(file("efi.img", 3)))
		_, err := w.Write([]byte("efi"))
		require.NoError(t, err)
		require.NoError(t, w.Close())
		ckErrContains(t, w.WriteHeader(file("late", 0)), "closed")
		require.Error(t, w.Close())
	})
}

// TestRecordLengths sweeps name and symlink target lengths so that some
// directory records come out at exactly the 254/255-byte limit and some
// system use areas just spill into a continuation area: every record must
// stay even (ECMA-119 9.1.13) and at most 255 bytes, and every name and
// target must read back, with our reader and with osirrox.
func TestRecordLengths(t *testing.T) {
	ckNeedTools(t, "osirrox")
	type ent struct {
		name, target string
		dir          bool
	}
	var ents []ent
	for n := 1; n <= 255; n++ {
		ents = append(ents, ent{name: "files/" + strings.Repeat("x", n)})
		if n >= 3 {
			ents = append(ents, ent{name: "dots/" + strings.Repeat("0", n-2) + ".e"})
		}
		ents = append(ents, ent{name: "dirs/" + strings.Repeat("d", n), dir: true})
	}
	for n := 1; n <= 600; n += 1 + n/100 {
		target := strings.Repeat("t", min(n, 255))
		if n > 255 {
			target += "/" + strings.Repeat("u", n-256)
		}
		ents = append(ents, ent{name: fmt.Sprintf("links/l%03d", n), target: strings.TrimSuffix(target, "/")})
		if n < 256 {
			ents = append(ents, ent{name: "links/" + strings.Repeat("n", n), target: strings.Repeat("t", n%200+1)})
		}
	}
	iso := filepath.Join(t.TempDir(), "r.iso")
	ckWriteImage(t, iso, Options{VolumeID: "LENGTHS", Joliet: true}, func(w *Writer) error {
		for _, e := range ents {
			h := &Header{Name: e.name, Mode: 0o644}
			switch {
			case e.dir:
				h.Mode = fs.ModeDir | 0o755
			case e.target != "":
				h.Mode, h.Linkname = fs.ModeSymlink|0o777, e.target
			}
			if err := w.WriteHeader(h); err != nil {
				return err
			}
		}
		return nil
	})
	ir, vols, prim := ckOpenImage(t, iso) // checks every record as it reads
	_, err := ir.hierarchy(vols[1].root, true, false)
	require.NoError(t, err)
	lengths := map[int]int{}
	for p, e := range prim {
		for _, r := range e.records {
			lengths[r.length]++
			require.Zero(t, r.length%2, "%s: record of %d bytes", p, r.length)
		}
	}
	assert.NotZero(t, lengths[254], "the sweep reaches the longest even record")
	dst := filepath.Join(t.TempDir(), "x")
	ckRunTool(t, "osirrox", "-indev", iso, "-extract", "/", dst)
	for _, e := range ents {
		require.Contains(t, prim, e.name)
		assert.Equal(t, e.target, prim[e.name].rr.target, e.name)
		fi, err := os.Lstat(filepath.Join(dst, e.name))
		if !assert.NoError(t, err) {
			continue
		}
		assert.Equal(t, e.dir, fi.IsDir(), e.name)
		if e.target != "" {
			got, err := os.Readlink(filepath.Join(dst, e.name))
			require.NoError(t, err)
			assert.Equal(t, e.target, got, e.name)
		}
	}
}
