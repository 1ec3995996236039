package fat

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// ---- helpers ----

func openFile(t *testing.T, img string) *Image {
	t.Helper()
	f, err := os.Open(img)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	require.NoError(t, err)
	im, err := Open(f, st.Size())
	require.NoError(t, err, "Open %s", img)
	return im
}

// walkAll lists the image, checking that every entry comes after its
// directory.
func walkAll(t *testing.T, im *Image) []ReadEntry {
	t.Helper()
	var got []ReadEntry
	seen := map[string]bool{".": true}
	require.NoError(t, im.Walk(func(e ReadEntry) error {
		require.True(t, seen[path.Dir(e.Path)], "Walk gave %s before its directory", e.Path)
		seen[e.Path] = true
		got = append(got, e)
		return nil
	}))
	return got
}

func walkOnly(im *Image) error { return im.Walk(func(ReadEntry) error { return nil }) }

// checkAgainstMdir compares Walk's listing with mtools' bare recursive one
// (mdir -/ -b): the same entries, and the same order within each directory
// (mdir lists a directory whole, then its subdirectories; Walk descends at
// once).
func checkAgainstMdir(t *testing.T, img string, got []ReadEntry) {
	t.Helper()
	out, err := run(t, mtoolsEnv, "mdir", "-i", img, "-/", "-b", "::")
	require.NoError(t, err, "mdir -/ -b:\n%s", out)
	theirs, ours := map[string][]string{}, map[string][]string{}
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		p, ok := strings.CutPrefix(line, "::/") // directories end in "/"
		require.True(t, ok, "mdir -/ -b line %q", line)
		d := path.Dir(strings.TrimSuffix(p, "/"))
		theirs[d] = append(theirs[d], p)
	}
	for _, e := range got {
		p := e.Path
		if e.Dir {
			p += "/"
		}
		ours[path.Dir(e.Path)] = append(ours[path.Dir(e.Path)], p)
	}
	require.Equal(t, theirs, ours, "Walk and mdir -/ -b list differently")
}

// ---- images from mkfs.fat and mtools ----

type hostFile struct {
	name string
	data []byte // nil: a directory
}

// mkfsTree is what the mkfs.fat tests copy in with mcopy.
func mkfsTree() []hostFile {
	files := []hostFile{
		{"EFI/BOOT/BOOTX64.EFI", randomBytes(10, 300<<10+7)}, // hundreds of clusters
		{"EFI/BOOT/grub.cfg", []byte("set timeout=5\n")},
		{"Long File Name With Spaces.txt", []byte("spaces\n")},
		{"lower.txt", []byte("lower: stored as LOWER.TXT with case flags\n")},
		{"UPPER.TXT", []byte("upper\n")},
		{"MiXeD.Case", []byte("mixed\n")},
		{"café ünïcode ☃.txt", []byte("unicode\n")},
		{strings.Repeat("n", 240) + ".txt", []byte("long\n")},
		{"empty", []byte{}},
		{"a/b/c/d/deep.txt", []byte("deep\n")},
	}
	for i := range 40 { // a directory of several clusters
		files = append(files, hostFile{fmt.Sprintf("many/file number %02d with a long name.dat", i), randomBytes(uint64(100+i), i*97)})
	}
	return files
}

func writeHostTree(t *testing.T, files []hostFile) string {
	root := t.TempDir()
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f.name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, f.data, 0o644))
	}
	return root
}

func mtool(t *testing.T, tool string, args ...string) {
	t.Helper()
	out, err := run(t, mtoolsEnv, tool, args...)
	require.NoError(t, err, "%s %q:\n%s", tool, args, out)
}

func TestReadMkfs(t *testing.T) {
	needTools(t, "mkfs.fat", "mcopy", "mmd", "mdel", "mdir")
	for _, c := range []struct {
		typ  Type
		args []string // mkfs.fat arguments before the image
		kib  int
	}{
		{FAT12, []string{"-F", "12"}, 4096},
		{FAT16, []string{"-F", "16", "-s", "1"}, 8192},
		{FAT32, []string{"-F", "32", "-s", "1"}, 40000},
	} {
		t.Run(c.typ.String(), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "mkfs.img")
			label := "MKFS" + strings.TrimPrefix(c.typ.String(), "FAT")
			args := append(append([]string{"-C"}, c.args...), "-n", label, img, fmt.Sprint(c.kib))
			out, err := run(t, nil, "mkfs.fat", args...)
			require.NoError(t, err, "mkfs.fat:\n%s", out)

			files := mkfsTree()
			host := writeHostTree(t, files)
			// The 240-character name first: later, mcopy 4.0.32 fails to
			// grow a FAT32 root for its 20 slots ("No directory slots").
			for _, top := range []string{strings.Repeat("n", 240) + ".txt", "EFI", "a", "many", "Long File Name With Spaces.txt",
				"lower.txt", "UPPER.TXT", "MiXeD.Case", "café ünïcode ☃.txt", "empty"} {
				mtool(t, "mcopy", "-i", img, "-s", filepath.Join(host, top), "::/")
			}
			mtool(t, "mmd", "-i", img, "::/empty-dir", "::/a/b/also-empty")
			files = append(files, hostFile{name: "empty-dir"}, hostFile{name: "a/b/also-empty"})
			// A hole for the next file to fill and overflow: its chain is
			// fragmented, and a deleted entry stays in the root.
			mtool(t, "mcopy", "-i", img, filepath.Join(host, "EFI/BOOT/grub.cfg"), "::/hole")
			mtool(t, "mcopy", "-i", img, filepath.Join(host, "lower.txt"), "::/spacer.txt")
			mtool(t, "mdel", "-i", img, "::/hole")
			frag := randomBytes(11, 50<<10)
			require.NoError(t, os.WriteFile(filepath.Join(host, "fragmented.bin"), frag, 0o644))
			mtool(t, "mcopy", "-i", img, filepath.Join(host, "fragmented.bin"), "::/")
			files = append(files, hostFile{"spacer.txt", files[3].data}, hostFile{"fragmented.bin", frag})

			im := openFile(t, img)
			require.Equal(t, c.typ, im.Type)
			require.Equal(t, label, im.VolumeLabel)
			got := walkAll(t, im)
			checkAgainstMdir(t, img, got)
			checkListing(t, im, got, files)
			if c.typ != FAT32 { // mtools allocates FAT32 from FSInfo's next-free hint, after the spacer
				require.Greater(t, runs(t, im, "fragmented.bin"), 1, "fragmented.bin is contiguous; the test means to read a fragmented chain")
			}

			// Case-insensitive, and by the short alias mtools gave.
			b, err := im.ReadFile("/efi/boot/bootx64.efi")
			require.NoError(t, err)
			require.Equal(t, files[0].data, b)
			short := mdirTree(t, img)["Long File Name With Spaces.txt"].short
			require.NotEmpty(t, short)
			b, err = im.ReadFile(strings.ToLower(short))
			require.NoError(t, err, "by the short name %s", short)
			require.Equal(t, []byte("spaces\n"), b)
		})
	}
}

// checkListing compares Walk's entries with the files put in (parents
// implied), and reads every file.
func checkListing(t *testing.T, im *Image, got []ReadEntry, files []hostFile) {
	t.Helper()
	want := map[string]hostFile{}
	for _, f := range files {
		want[f.name] = f
		for d := path.Dir(f.name); d != "."; d = path.Dir(d) {
			if _, ok := want[d]; !ok {
				want[d] = hostFile{name: d}
			}
		}
	}
	require.Len(t, got, len(want), "Walk lists other entries than were put in")
	for _, e := range got {
		f, ok := want[e.Path]
		require.True(t, ok, "Walk lists %q, which was not put in (or twice)", e.Path)
		require.Equal(t, f.data == nil, e.Dir, "%s: directory", e.Path)
		if e.Dir {
			require.Zero(t, e.Size, e.Path)
			continue
		}
		require.Equal(t, int64(len(f.data)), e.Size, "%s: size", e.Path)
		b, err := im.ReadFile(e.Path)
		require.NoError(t, err)
		require.True(t, bytes.Equal(f.data, b), "%s: contents differ", e.Path)
		delete(want, e.Path) // so that an entry listed twice fails
	}
}

// runs counts the contiguous runs of the cluster chain of a file in the root.
func runs(t *testing.T, im *Image, name string) int {
	_, e := slotOf(t, im, "", name)
	n := 0
	want := (int64(e.size) + im.clusterSize - 1) / im.clusterSize
	require.NoError(t, im.chain(name, e.first, want, nil, func(uint32, int64) error { n++; return nil }))
	return n
}

// ---- images from Build ----

func TestReadBuild(t *testing.T) {
	needTools(t, "mdir")
	for _, typ := range []Type{FAT12, FAT16, FAT32} {
		t.Run(typ.String(), func(t *testing.T) {
			files := efiFiles()
			opts := Options{VolumeLabel: "EFIBOOT", ModTime: testTime, Type: typ}
			img, l := buildFile(t, files, opts)
			require.Equal(t, typ, l.Type)
			im := openFile(t, img)
			require.Equal(t, typ, im.Type)
			require.Equal(t, "EFIBOOT", im.VolumeLabel)
			got := walkAll(t, im)
			checkAgainstMdir(t, img, got)

			var host []hostFile
			for p, f := range expected(files) {
				h := hostFile{name: p}
				if !f.Dir {
					r, err := f.Open()
					require.NoError(t, err)
					h.data, err = io.ReadAll(r) // never nil, as an empty file must not be a directory
					require.NoError(t, err)
				}
				host = append(host, h)
			}
			checkListing(t, im, got, host)
			for _, e := range got {
				require.True(t, testTime.Truncate(2*time.Second).Equal(e.ModTime), "%s: ModTime %v", e.Path, e.ModTime)
			}
		})
	}
}

// ---- errors ----

// buildBytes builds an image in memory.
func buildBytes(t *testing.T, files []File, opts Options) []byte {
	t.Helper()
	var b bytes.Buffer
	_, err := Build(&b, files, opts)
	require.NoError(t, err)
	return b.Bytes()
}

func openBytes(t *testing.T, b []byte) *Image {
	t.Helper()
	im, err := Open(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err)
	return im
}

// setFAT sets the entry of cluster c in the first FAT.
func setFAT(im *Image, img []byte, c, v uint32) {
	off := im.fatOff + int64(c)*int64(im.Type)/8
	switch im.Type {
	case FAT12:
		old := uint32(le.Uint16(img[off:]))
		if c&1 == 1 {
			v = old&0x000F | v<<4
		} else {
			v = old&0xF000 | v&0xFFF
		}
		le.PutUint16(img[off:], uint16(v))
	case FAT16:
		le.PutUint16(img[off:], uint16(v))
	default:
		le.PutUint32(img[off:], v)
	}
}

// slotOf finds the short entry of name in the directory dir (of one
// cluster, or the fixed root): its byte offset in the image, and the entry.
func slotOf(t *testing.T, im *Image, dir, name string) (int64, dirent) {
	t.Helper()
	first, fixed := im.rootCluster, im.Type != FAT32
	find := func(name string) (int64, dirent) {
		b, err := im.readDir("test", first, fixed, nil)
		require.NoError(t, err)
		ents, _ := parseDir(b, im.Type == FAT32)
		for _, e := range ents {
			if e.name == name {
				base := im.rootOff
				if !fixed {
					base = im.clusterOff(first)
				}
				return base + int64(e.slot)*32, e
			}
		}
		t.Fatalf("%s not found", name)
		return 0, dirent{}
	}
	if dir != "" {
		for _, c := range strings.Split(dir, "/") {
			_, d := find(c)
			first, fixed = d.first, false
		}
	}
	return find(name)
}

func TestReadCorrupt(t *testing.T) {
	files := []File{
		file("EFI/BOOT/BOOTX64.EFI", randomBytes(20, 20<<10)),
		file("UPPER.TXT", []byte("upper\n")),
		file("a/b/c.txt", []byte("c\n")),
	}
	const boot = "EFI/BOOT/BOOTX64.EFI"
	for _, typ := range []Type{FAT12, FAT32} {
		clean := buildBytes(t, files, Options{Type: typ, ClusterSize: 512, ModTime: testTime})
		im := openBytes(t, clean)
		_, efi := slotOf(t, im, "EFI/BOOT", "BOOTX64.EFI")
		upperAt, _ := slotOf(t, im, "", "UPPER.TXT")
		aAt, a := slotOf(t, im, "", "a")
		bAt, b := slotOf(t, im, "a", "b")
		eoc := uint32(1)<<min(typ, 28) - 1
		for _, c := range []struct {
			name   string
			mutate func(img []byte)
			read   string // ReadFile this, or Walk if ""
			want   string
		}{
			{"loop", func(img []byte) { setFAT(im, img, efi.first+5, efi.first+2) }, boot,
				fmt.Sprintf("fat: cluster chain of %s loops at cluster %d", boot, efi.first+2)},
			{"self loop", func(img []byte) { setFAT(im, img, efi.first, efi.first) }, boot, "loops at cluster"},
			{"outside", func(img []byte) { setFAT(im, img, efi.first+1, im.last+1) }, boot,
				fmt.Sprintf("leads from cluster %d to %d, outside the data area (clusters 2 to %d", efi.first+1, im.last+1, im.last)},
			{"free", func(img []byte) { setFAT(im, img, efi.first, 0) }, boot, "to 0, a free cluster"},
			{"bad", func(img []byte) { setFAT(im, img, efi.first, eoc-8) }, boot, "which is marked bad"},
			{"short", func(img []byte) { setFAT(im, img, efi.first+3, eoc) }, boot, "ends at cluster"},
			{"too big", func(img []byte) { le.PutUint32(img[upperAt+28:], 0xFFFFFFFF) }, "upper.txt", "its size 4294967295 needs"},
			{"no cluster", func(img []byte) { le.PutUint16(img[upperAt+26:], 0) }, "UPPER.TXT", "UPPER.TXT starts at cluster 0"},
			{"directory at 0", func(img []byte) { le.PutUint16(img[aAt+26:], 0); le.PutUint16(img[aAt+20:], 0) }, "", "fat: a starts at cluster 0"},
			{"directory loop", func(img []byte) { le.PutUint16(img[bAt+26:], uint16(a.first)) }, "", "also belongs to a"},
			{"directory chain loop", func(img []byte) { setFAT(im, img, b.first, b.first) }, "a/b/c.txt", "cluster chain of a/b loops"},
			{"slash", func(img []byte) { copy(img[upperAt:], "UP/ER") }, "", `entry 1 is named "UP/ER.TXT"`},
			{"not found", nil, "EFI/BOOT/BOOTIA32.EFI", "file does not exist"},
			{"is a directory", nil, "efi/boot", "fat: EFI/BOOT is a directory"},
			{"file as directory", nil, "UPPER.TXT/x", "UPPER.TXT is a file, not a directory"},
			{"root", nil, "/", "root directory"},
		} {
			t.Run(typ.String()+"/"+c.name, func(t *testing.T) {
				img := bytes.Clone(clean)
				if c.mutate != nil {
					c.mutate(img)
				}
				err := walkOnly(openBytes(t, img))
				if c.read != "" {
					_, err = openBytes(t, img).ReadFile(c.read)
				}
				require.ErrorContains(t, err, c.want)
				t.Log(err)
			})
		}
	}
}

// TestReadTruncated reads an image cut in the middle of a file: what lies
// before the cut reads, the rest does not.
func TestReadTruncated(t *testing.T) {
	files := []File{file("a", randomBytes(21, 20<<10)), file("b", randomBytes(22, 20<<10))}
	img := buildBytes(t, files, Options{ClusterSize: 512, ModTime: testTime})
	im := openBytes(t, img)
	_, a := slotOf(t, im, "", "a")
	_, b := slotOf(t, im, "", "b")
	require.Equal(t, a.first+40, b.first)
	im = openBytes(t, img[:im.clusterOff(b.first+10)])
	require.Equal(t, b.first+9, im.last)
	require.Len(t, walkAll(t, im), 2)
	got, err := im.ReadFile("a")
	require.NoError(t, err)
	require.Equal(t, files[0].Size, int64(len(got)))
	_, err = im.ReadFile("b")
	require.ErrorContains(t, err, fmt.Sprintf("fat: cluster chain of b leads from cluster %d to %d, outside the data area (clusters 2 to %d in this", b.first+9, b.first+10, b.first+9))
	t.Log(err)
}

func TestReadSkipped(t *testing.T) {
	files := []File{file("a long name.txt", []byte("long\n")), file("gone.txt", []byte("x")), file("keep", []byte("k"))}
	img := buildBytes(t, files, Options{VolumeLabel: "LBL", ModTime: testTime})
	im := openBytes(t, img)
	longAt, _ := slotOf(t, im, "", "a long name.txt")
	goneAt, _ := slotOf(t, im, "", "gone.txt")
	img[longAt] ^= 1   // the long name's checksum no longer matches: the short name shows
	img[goneAt] = 0xE5 // deleted, with its long-name entries left behind
	im = openBytes(t, img)
	var names []string
	for _, e := range walkAll(t, im) {
		names = append(names, e.Path)
	}
	short := shortName(img[longAt : longAt+32])
	require.Equal(t, []string{short, "keep"}, names)
	_, err := im.ReadFile("gone.txt")
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestReadDeepAndLong(t *testing.T) {
	deep := strings.Repeat("d/", maxDepth+1) + "f"
	img := buildBytes(t, []File{file(deep, []byte("deep"))}, Options{ClusterSize: 512})
	require.ErrorContains(t, walkOnly(openBytes(t, img)), "nested deeper than 256 directories")

	// A directory whose chain runs on through the free clusters.
	img = buildBytes(t, []File{dir("a")}, Options{Type: FAT16, ClusterSize: 512})
	im := openBytes(t, img)
	_, a := slotOf(t, im, "", "a")
	for c := a.first; c < im.last; c++ {
		setFAT(im, img, c, c+1)
	}
	require.ErrorContains(t, walkOnly(openBytes(t, img)), "fat: directory a is longer than 4096 clusters")
}

func TestReadBootSector(t *testing.T) {
	clean := buildBytes(t, []File{file("x", []byte("x"))}, Options{})
	for _, c := range []struct {
		name   string
		mutate func(b []byte) []byte
		want   string
	}{
		{"tiny", func(b []byte) []byte { return b[:100] }, "smaller than a boot sector"},
		{"signature", func(b []byte) []byte { b[510] = 0; return b }, "not a FAT file system"},
		{"sector size", func(b []byte) []byte { le.PutUint16(b[11:], 300); return b }, "300 bytes per sector"},
		{"cluster size", func(b []byte) []byte { b[13] = 3; return b }, "3 sectors per cluster"},
		{"no FATs", func(b []byte) []byte { b[16] = 0; return b }, "0 FATs"},
		{"no root", func(b []byte) []byte { le.PutUint16(b[17:], 0); return b }, "root directory of 0 entries"},
		{"no data", func(b []byte) []byte { le.PutUint16(b[19:], 3); return b }, "leave no data area"},
		{"FAT beyond", func(b []byte) []byte { return b[:600] }, "the FAT (bytes 512 to 1024) extends beyond the end of the 600-byte image"},
		{"root beyond", func(b []byte) []byte { return b[:4096] }, "the root directory: bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := c.mutate(bytes.Clone(clean))
			_, err := Open(bytes.NewReader(b), int64(len(b)))
			require.ErrorContains(t, err, c.want)
			t.Log(err)
		})
	}
}

func TestReadWalkControl(t *testing.T) {
	files := []File{file("a/1", []byte("1")), file("a/2", []byte("2")), file("b/3", []byte("3")), file("c", nil)}
	im := openBytes(t, buildBytes(t, files, Options{}))
	require.Equal(t, "", im.VolumeLabel) // none in the boot sector ("NO NAME") or the root
	stop := errors.New("stop")
	for _, c := range []struct {
		at   string
		ret  error
		want []string
	}{
		{"a", fs.SkipDir, []string{"a", "b", "b/3", "c"}},
		{"a/1", fs.SkipDir, []string{"a", "a/1", "b", "b/3", "c"}}, // the rest of a
		{"b", fs.SkipAll, []string{"a", "a/1", "a/2", "b"}},
		{"a/2", stop, []string{"a", "a/1", "a/2"}},
	} {
		var got []string
		err := im.Walk(func(e ReadEntry) error {
			got = append(got, e.Path)
			if e.Path == c.at {
				return c.ret
			}
			return nil
		})
		if c.ret == stop {
			require.ErrorIs(t, err, stop)
		} else {
			require.NoError(t, err)
		}
		require.Equal(t, c.want, got, "%v at %s", c.ret, c.at)
	}
	b, err := im.ReadFile("c")
	require.NoError(t, err)
	require.Equal(t, []byte{}, b)
}

// ---- fuzzing ----

// FuzzOpen's inputs are images with their zeros run-length encoded: a zero
// byte and the byte n after it stand for n+1 zeros. FAT images are mostly
// zeros; without them inputs stay near a KiB, so that mutations hit the
// structures, and the minimizer, which tries removing every run of bytes
// (quadratic in the length), finishes. Every image can still be expressed.
func unzero(in []byte) []byte {
	var out []byte
	for i := 0; i < len(in); i++ {
		if in[i] != 0 || i+1 == len(in) {
			out = append(out, in[i])
			continue
		}
		i++
		out = append(out, make([]byte, int(in[i])+1)...)
	}
	return out
}

func zeroRuns(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			out = append(out, b[i])
			continue
		}
		n := 0
		for ; n < 255 && i+1 < len(b) && b[i+1] == 0; n++ {
			i++
		}
		out = append(out, 0, byte(n))
	}
	return out
}

// fuzzSeeds are images of each type, cut after their used clusters (the
// rest is free space); for FAT32 with a FAT of one sector, which makes it
// a FAT32 with few clusters, as mkfs.fat makes for small images.
func fuzzSeeds(f *testing.F) [][]byte {
	small := []File{
		file("EFI/BOOT/BOOTX64.EFI", randomBytes(30, 600)),
		file("EFI/BOOT/grub.cfg", []byte("set timeout=5\n")),
		file("a long name.txt", []byte("long\n")),
		file("empty", nil),
		dir("d/e"),
	}
	var seeds [][]byte
	for _, typ := range []Type{FAT12, FAT16, FAT32} {
		var b bytes.Buffer
		l, err := Build(&b, small, Options{Type: typ, ClusterSize: 512})
		if err != nil {
			f.Fatal(err)
		}
		img := b.Bytes()
		meta := (l.ReservedSectors+2*l.FATSectors)*512 + l.RootEntries*32
		img = img[:meta+l.UsedClusters*512]
		if typ == FAT32 {
			fat := img[l.ReservedSectors*512:][:512]
			img = slices.Concat(img[:l.ReservedSectors*512], fat, fat, img[meta:])
			le.PutUint32(img[32:], uint32(len(img)/512)) // sectors
			le.PutUint32(img[36:], 1)                    // sectors per FAT
		}
		if !bytes.Equal(unzero(zeroRuns(img)), img) {
			f.Fatal("zeroRuns does not invert unzero")
		}
		seeds = append(seeds, zeroRuns(img))
	}
	return seeds
}

// FuzzOpen opens arbitrary images, walks them and reads every file: no
// panics, no hangs, and nothing larger than the image.
func FuzzOpen(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		data := unzero(in)
		im, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		var files []string
		n := 0
		im.Walk(func(e ReadEntry) error {
			n++
			if !e.Dir {
				files = append(files, e.Path)
			}
			return nil
		})
		// Each entry has a 32-byte slot of its own: Walk reads no cluster twice.
		if n > len(data)/32 {
			t.Fatalf("Walk gave %d entries from %d bytes", n, len(data))
		}
		for _, p := range files {
			if b, err := im.ReadFile(p); err == nil && len(b) > len(data) {
				t.Fatalf("ReadFile(%q) gave %d bytes from a %d-byte image", p, len(b), len(data))
			}
		}
	})
}
