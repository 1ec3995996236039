package fat

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testTime is the ModTime of the test images: an odd second, so that the
// 2-second rounding shows.
var testTime = time.Date(2024, 2, 29, 13, 37, 43, 0, time.UTC)

// ---- contents ----

// pattern is cheap, seekless, reproducible content: 8-byte words derived
// from their offset and a seed.
type pattern struct {
	seed uint64
	size int64
}

func (p pattern) open() (io.ReadCloser, error) {
	return io.NopCloser(&patternReader{p: p}), nil
}

type patternReader struct {
	p   pattern
	off int64
}

func (r *patternReader) Read(b []byte) (int, error) {
	if r.off >= r.p.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(b)), r.p.size-r.off))
	b = b[:n]
	i := 0
	for i < n {
		o := r.off + int64(i)
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], (uint64(o>>3)+r.p.seed)*0x9E3779B97F4A7C15)
		k := copy(b[i:], w[o&7:])
		i += k
	}
	r.off += int64(n)
	return n, nil
}

func bytesOpen(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	r.Read(b)
	return b
}

func file(name string, b []byte) File {
	return File{Name: name, Size: int64(len(b)), Open: bytesOpen(b)}
}

func dir(name string) File { return File{Name: name, Dir: true} }

// efiFiles is the EFI boot image's content and then some: lower case, long,
// non-ASCII and colliding names, an empty file, nested and large
// directories.
func efiFiles() []File {
	files := []File{
		file("EFI/BOOT/BOOTX64.EFI", randomBytes(1, 3<<20)),
		file("EFI/BOOT/grub.cfg", []byte("search --set=root --file /nixos-marker\nconfigfile /EFI/BOOT/grub-main.cfg\n")),
		file("EFI/nixos-marker-for-the-loader", nil),
		file("loader/entries/nixos-generation-1.conf", []byte("title NixOS\n")),
		file("Long Name With Spaces.txt", []byte("spaces\n")),
		file("UPPER.TXT", []byte("upper\n")),
		file("lower.txt", []byte("lower\n")),
		file("MiXeD.Case", []byte("mixed\n")),
		file("LONGFI~1.TXT", []byte("taken\n")),
		file("Long File 1.txt", []byte("1\n")),
		file("long file 2.txt", []byte("2\n")),
		file("a.b.c.d", []byte("dots\n")),
		file("+plus,comma;semi=eq[br].x", []byte("odd\n")),
		file(".hidden", []byte("dot\n")),
		file("café ünïcode ☃.txt", []byte("unicode\n")),
		file(strings.Repeat("x", 251)+".txt", []byte("255 units\n")),
		file("a/b/c/d/deep.txt", []byte("deep\n")),
		file("exactly-one-cluster", randomBytes(2, 2048)),
		file("EFIBOOT", []byte("named like the volume label\n")),
		dir("empty-dir"),
		dir("a/b"),
	}
	for i := range 300 {
		files = append(files, file(fmt.Sprintf("many/file number %03d with a long name.dat", i), []byte(strconv.Itoa(i))))
	}
	return files
}

// ---- building ----

func buildFile(t *testing.T, files []File, opts Options) (string, Layout) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fat.img")
	f, err := os.Create(img)
	require.NoError(t, err)
	l, err := Build(f, files, opts)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	st, err := os.Stat(img)
	require.NoError(t, err)
	require.Equal(t, l.Size, st.Size(), "Layout.Size")
	require.Zero(t, l.Size%(16<<10), "image size %d is not a multiple of 16 KiB", l.Size)
	pl, err := Plan(files, opts)
	require.NoError(t, err)
	require.Equal(t, l, pl, "Plan and Build disagree")
	return img, l
}

// writeWithWriter writes files through the tar-style Writer, in the order
// given.
func writeWithWriter(t *testing.T, out io.Writer, files []File, opts Options) Layout {
	t.Helper()
	w, err := NewWriter(out, opts)
	require.NoError(t, err)
	for _, f := range files {
		if f.Dir {
			require.NoError(t, w.Mkdir(f.Name))
			continue
		}
		fw, err := w.Create(f.Name, f.Size)
		require.NoError(t, err)
		if f.Size > 0 {
			r, err := f.Open()
			require.NoError(t, err)
			_, err = io.Copy(fw, r)
			require.NoError(t, err, f.Name)
			r.Close()
		}
	}
	require.NoError(t, w.Close())
	require.Equal(t, w.Layout().Size, w.Size())
	return w.Layout()
}

// ---- independent readers ----

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found (Debian packages dosfstools, mtools and file; make test installs them)", tool)
		}
	}
}

func run(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mtoolsEnv keeps mtools' sanity checks on and its long names in UTF-8.
var mtoolsEnv = []string{"LC_ALL=C.UTF-8", "MTOOLS_SKIP_CHECK=0", "MTOOLS_LOWER_CASE=0", "MTOOLSRC=/dev/null"}

var fsckSummary = regexp.MustCompile(`(?s)^fsck\.fat [^\n]*\n[^\n]*: (\d+) files, (\d+)/(\d+) clusters\n$`)

// checkFsck runs fsck.fat -n (no problems, exit 0, the cluster counts of
// the layout) and fsck.fat -n -v (the FAT type).
func checkFsck(t *testing.T, img string, l Layout, entries int) {
	t.Helper()
	out, err := run(t, nil, "fsck.fat", "-n", img)
	require.NoError(t, err, "fsck.fat -n %s:\n%s", img, out)
	m := fsckSummary.FindStringSubmatch(out)
	require.NotNil(t, m, "fsck.fat -n reports more than the summary:\n%s", out)
	require.Equal(t, strconv.Itoa(entries), m[1], "fsck.fat's file count:\n%s", out)
	require.Equal(t, strconv.Itoa(l.UsedClusters), m[2], "fsck.fat's used clusters:\n%s", out)
	require.Equal(t, strconv.Itoa(l.Clusters), m[3], "fsck.fat's cluster count:\n%s", out)

	out, err = run(t, nil, "fsck.fat", "-n", "-v", "-V", img)
	require.NoError(t, err, "fsck.fat -n -v -V %s:\n%s", img, out)
	require.Contains(t, out, fmt.Sprintf("2 FATs, %d bit entries", int(l.Type)), "fsck.fat -v:\n%s", out)
	require.Contains(t, out, fmt.Sprintf("%d bytes per cluster", l.ClusterSize), "fsck.fat -v:\n%s", out)
	for _, bad := range []string{"differ", "wrong", "invalid", "Invalid", "bad", "Bad", "Free cluster", "Reclaim", "Fixing", "Dirty"} {
		require.NotContains(t, out, bad, "fsck.fat -v:\n%s", out)
	}
}

// checkType asks minfo and file what FAT type the image is.
func checkType(t *testing.T, img string, l Layout, label string) {
	t.Helper()
	out, err := run(t, mtoolsEnv, "minfo", "-i", img, "::")
	require.NoError(t, err, "minfo:\n%s", out)
	require.Contains(t, out, fmt.Sprintf(`disk type="FAT%d   "`, int(l.Type)), "minfo:\n%s", out)
	require.Contains(t, out, "media descriptor byte: 0xf8", "minfo:\n%s", out)
	require.Contains(t, out, "fats: 2", "minfo:\n%s", out)
	if label == "" {
		label = "NO NAME"
	}
	require.Contains(t, out, fmt.Sprintf("disk label=\"%-11s\"", label), "minfo:\n%s", out)

	out, err = run(t, nil, "file", "-b", img)
	require.NoError(t, err, "file:\n%s", out)
	require.Contains(t, out, fmt.Sprintf("FAT (%d bit)", int(l.Type)), "file -b: %s", out)
}

type listed struct {
	dir   bool
	size  int64
	short string
	date  string
	time  string
}

var (
	mdirDirectory = regexp.MustCompile(`^Directory for ::(/.*)$`)
	mdirEntry     = regexp.MustCompile(`^(.{8}) (.{3}) +(<DIR>|\d+) +(\d{4}-\d\d-\d\d) +(\d{1,2}:\d\d)(?:  (.*))?\s*$`)
)

// mdirTree lists the image with mdir -/ -a: path -> entry ("." and ".."
// left out).
func mdirTree(t *testing.T, img string) map[string]listed {
	t.Helper()
	out, err := run(t, mtoolsEnv, "mdir", "-i", img, "-/", "-a", "::")
	if err != nil && strings.Contains(out, `File "::" not found`) {
		// mdir -/ fails on an empty root (mkfs.fat's images too); a plain
		// mdir says "No files".
		out, err = run(t, mtoolsEnv, "mdir", "-i", img, "-a", "::")
		require.NoError(t, err, "mdir:\n%s", out)
		require.Contains(t, out, "No files", "mdir -/ found no root, mdir:\n%s", out)
		return map[string]listed{}
	}
	require.NoError(t, err, "mdir:\n%s", out)
	got := map[string]listed{}
	cur := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := mdirDirectory.FindStringSubmatch(line); m != nil {
			cur = strings.TrimPrefix(m[1], "/")
			continue
		}
		m := mdirEntry.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		base, ext := strings.TrimRight(m[1], " "), strings.TrimRight(m[2], " ")
		short := base
		if ext != "" {
			short += "." + ext
		}
		if short == "." || short == ".." {
			continue
		}
		name := short
		if m[6] != "" {
			name = strings.TrimRight(m[6], " ")
		}
		e := listed{dir: m[3] == "<DIR>", short: short, date: m[4], time: m[5]}
		if !e.dir {
			e.size, _ = strconv.ParseInt(m[3], 10, 64)
		}
		got[path.Join(cur, name)] = e
	}
	return got
}

// expected is the tree the files make: path -> File, parents included.
func expected(files []File) map[string]File {
	want := map[string]File{}
	for _, f := range files {
		name := strings.Trim(f.Name, "/")
		want[name] = f
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if _, ok := want[d]; !ok {
				want[d] = File{Name: d, Dir: true}
			}
		}
	}
	return want
}

func checkMdir(t *testing.T, img string, files []File) map[string]listed {
	t.Helper()
	got := mdirTree(t, img)
	want := expected(files)
	var missing, extra, wrong []string
	for p, f := range want {
		g, ok := got[p]
		switch {
		case !ok:
			missing = append(missing, p)
		case g.dir != f.Dir || g.size != f.Size:
			wrong = append(wrong, fmt.Sprintf("%s: dir %v size %d, want dir %v size %d", p, g.dir, g.size, f.Dir, f.Size))
		case g.date != testTime.Format("2006-01-02") || g.time != "13:37":
			wrong = append(wrong, fmt.Sprintf("%s: dated %s %s", p, g.date, g.time))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			extra = append(extra, p)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	sort.Strings(wrong)
	require.Empty(t, missing, "mdir misses these")
	require.Empty(t, extra, "mdir lists these, which were not added")
	require.Empty(t, wrong, "mdir differs")
	return got
}

// checkTree compares a directory on disk with the files: exactly the same
// paths (case included), types, sizes and contents.
func checkTree(t *testing.T, root string, files []File, what string) {
	t.Helper()
	want := expected(files)
	got := map[string]fs.FileInfo{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := d.Info()
		got[filepath.ToSlash(rel)] = fi
		return err
	})
	require.NoError(t, err)
	var missing, extra []string
	for p := range want {
		if _, ok := got[p]; !ok {
			missing = append(missing, p)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			extra = append(extra, p)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	require.Empty(t, missing, "%s: missing", what)
	require.Empty(t, extra, "%s: not added", what)
	for p, f := range want {
		fi := got[p]
		require.Equal(t, f.Dir, fi.IsDir(), "%s: %s is a directory", what, p)
		if f.Dir {
			continue
		}
		require.Equal(t, f.Size, fi.Size(), "%s: size of %s", what, p)
		if f.Size > 0 {
			sameContent(t, filepath.Join(root, p), f, what)
		}
	}
}

func sameContent(t *testing.T, onDisk string, f File, what string) {
	t.Helper()
	g, err := os.Open(onDisk)
	require.NoError(t, err)
	defer g.Close()
	w, err := f.Open()
	require.NoError(t, err)
	defer w.Close()
	gb, wb := make([]byte, 1<<20), make([]byte, 1<<20)
	var off int64
	for {
		n, err := io.ReadFull(w, wb)
		if n == 0 {
			break
		}
		m, _ := io.ReadFull(g, gb[:n])
		if m != n || !bytes.Equal(gb[:n], wb[:n]) {
			t.Fatalf("%s: %s differs from its input in the MiB at %d", what, f.Name, off)
		}
		off += int64(n)
		if err != nil {
			break
		}
	}
}

func checkMcopy(t *testing.T, img string, files []File) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "mcopy")
	require.NoError(t, os.Mkdir(out, 0o755))
	o, err := run(t, mtoolsEnv, "mcopy", "-i", img, "-s", "-n", "::/", out+"/")
	require.NoError(t, err, "mcopy:\n%s", o)
	checkTree(t, out, files, "mcopy")
}

// canMountVFAT says whether this machine can loop-mount a FAT image, and if
// not, why.
var canMountVFAT = sync.OnceValues(func() (bool, string) {
	if os.Geteuid() != 0 {
		return false, "mounting needs root"
	}
	if f, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0); err != nil {
		return false, fmt.Sprintf("no loop devices: %v", err)
	} else {
		f.Close()
	}
	has := func() bool {
		b, _ := os.ReadFile("/proc/filesystems")
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[len(f)-1] == "vfat" {
				return true
			}
		}
		return false
	}
	if !has() {
		exec.Command("modprobe", "-q", "vfat").Run()
		if !has() {
			return false, "the kernel has no vfat (not in /proc/filesystems, modprobe -q vfat did not help)"
		}
	}
	return true, ""
})

// checkMount loop-mounts the image read-only and compares the tree,
// including the modification times (tz=UTC: the image stores UTC).
func checkMount(t *testing.T, img string, files []File) {
	t.Run("mount", func(t *testing.T) {
		if ok, why := canMountVFAT(); !ok {
			t.Skip("host kernel mount skipped (TestLinuxVFAT mounts under QEMU): " + why)
		}
		mnt := t.TempDir()
		out, err := exec.Command("mount", "-t", "vfat", "-o", "loop,ro,utf8,tz=UTC", img, mnt).CombinedOutput()
		require.NoError(t, err, "mount: %s", out)
		defer func() {
			if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
				exec.Command("umount", "-l", mnt).Run()
				t.Errorf("umount: %v: %s", err, out)
			}
		}()
		checkTree(t, mnt, files, "mounted")
		want := testTime.Truncate(2 * time.Second)
		err = filepath.WalkDir(mnt, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == mnt {
				return err
			}
			fi, err := d.Info()
			if err == nil && !fi.ModTime().Equal(want) {
				err = fmt.Errorf("%s: mtime %v, want %v", p, fi.ModTime().UTC(), want)
			}
			return err
		})
		require.NoError(t, err)
	})
}

// countEntries is what fsck.fat counts as files: every file and directory
// but the root.
func countEntries(files []File) int { return len(expected(files)) }

// checkAll runs every independent reader on the image.
func checkAll(t *testing.T, img string, l Layout, files []File, opts Options, wantType Type) {
	t.Helper()
	needTools(t, "fsck.fat", "mdir", "mcopy", "minfo", "file")
	require.Equal(t, wantType, l.Type, "chosen FAT type (layout %+v)", l)
	entries := countEntries(files)
	if opts.VolumeLabel != "" {
		entries++ // fsck.fat counts the label entry
	}
	checkFsck(t, img, l, entries)
	checkType(t, img, l, opts.VolumeLabel)
	checkMdir(t, img, files)
	checkMcopy(t, img, files)
	checkMount(t, img, files)
}

// ---- tests ----

func TestEmpty(t *testing.T) {
	opts := Options{VolumeLabel: "EFIBOOT", VolumeID: 0x1234abcd, ModTime: testTime}
	img, l := buildFile(t, nil, opts)
	require.Equal(t, Layout{Type: FAT12, Size: 96 << 10, ClusterSize: 4096, Clusters: 19, ReservedSectors: 1, FATSectors: 1, RootEntries: 512}, l)
	checkAll(t, img, l, nil, opts, FAT12)

	// No label at all.
	img, l = buildFile(t, nil, Options{})
	checkAll(t, img, l, nil, Options{}, FAT12)
}

func TestEFILayout(t *testing.T) {
	files := efiFiles()
	opts := Options{VolumeLabel: "EFIBOOT", VolumeID: 0xdeadbeef, ModTime: testTime}
	img := filepath.Join(t.TempDir(), "efi.img")
	f, err := os.Create(img)
	require.NoError(t, err)
	l := writeWithWriter(t, f, files, opts)
	require.NoError(t, f.Close())
	t.Logf("layout: %+v", l)
	pl, err := Plan(files, opts)
	require.NoError(t, err)
	require.Equal(t, pl, l, "Plan and Writer disagree")
	checkAll(t, img, l, files, opts, FAT12)

	// Short names: exact where the name allows, numeric tails that skip
	// the names taken, and the boot files' names as firmware looks them up.
	got := mdirTree(t, img)
	for name, short := range map[string]string{
		"EFI/BOOT/BOOTX64.EFI":      "BOOTX64.EFI",
		"EFI/BOOT/grub.cfg":         "GRUB.CFG",
		"UPPER.TXT":                 "UPPER.TXT",
		"EFIBOOT":                   "EFIBOO~1", // the label's name is taken
		"lower.txt":                 "LOWER.TXT",
		"MiXeD.Case":                "MIXED~1.CAS",
		"LONGFI~1.TXT":              "LONGFI~1.TXT",
		"Long File 1.txt":           "LONGFI~2.TXT",
		"long file 2.txt":           "LONGFI~3.TXT",
		"a.b.c.d":                   "ABC~1.D",
		".hidden":                   "HIDDEN~1",
		"+plus,comma;semi=eq[br].x": "_PLUS_~1.X",
		"Long Name With Spaces.txt": "LONGNA~1.TXT",
		"many/file number 000 with a long name.dat": "FILENU~1.DAT",
		"many/file number 299 with a long name.dat": "FILE~300.DAT",
	} {
		require.Equal(t, short, got[name].short, "short name of %s", name)
	}
	// The same short name cannot appear twice in a directory (fsck.fat
	// checks it too).
	seen := map[string]string{}
	for p, e := range got {
		k := path.Dir(p) + "/" + e.short
		require.Empty(t, seen[k], "%s and %s share the short name %s", p, seen[k], e.short)
		seen[k] = p
	}
}

// TestManyRootEntries makes the fixed root directory of FAT12 grow past
// its usual 512 slots.
func TestManyRootEntries(t *testing.T) {
	var files []File
	for i := range 520 {
		files = append(files, file(fmt.Sprintf("F%03d.TXT", i), []byte{byte(i)}))
	}
	opts := Options{VolumeLabel: "MANY", ModTime: testTime}
	img, l := buildFile(t, files, opts)
	require.Equal(t, 528, l.RootEntries) // 520 files and the label, rounded up to a sector
	checkAll(t, img, l, files, opts, FAT12)
}

func TestFAT16(t *testing.T) {
	files := []File{
		{Name: "big.bin", Size: 40 << 20, Open: pattern{seed: 1, size: 40 << 20}.open},
		file("EFI/BOOT/grub.cfg", []byte("set timeout=5\n")),
		file("odd-size.bin", randomBytes(3, 12345)),
	}
	// Through the Writer, with contents past the 32 MiB held in memory
	// going to a temporary file that Close removes.
	spool := t.TempDir()
	opts := Options{VolumeLabel: "DATA16", VolumeID: 16, ModTime: testTime, TempDir: spool}
	img := filepath.Join(t.TempDir(), "fat16.img")
	f, err := os.Create(img)
	require.NoError(t, err)
	l := writeWithWriter(t, f, files, opts)
	require.NoError(t, f.Close())
	left, err := os.ReadDir(spool)
	require.NoError(t, err)
	require.Empty(t, left, "Close left the temporary file behind")
	t.Logf("layout: %+v", l)
	checkAll(t, img, l, files, opts, FAT16)
}

func TestFAT32(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and reads a 300 MiB image; skipped with -short")
	}
	files := []File{
		{Name: "nix-store-part.bin", Size: 300 << 20, Open: pattern{seed: 2, size: 300 << 20}.open},
		{Name: "EFI/BOOT/BOOTX64.EFI", Size: 3<<20 + 17, Open: pattern{seed: 3, size: 3<<20 + 17}.open},
		file("EFI/BOOT/grub.cfg", []byte("set timeout=5\n")),
		file("empty", nil),
	}
	// A root directory of several clusters.
	for i := range 200 {
		files = append(files, file(fmt.Sprintf("root file %d.txt", i), []byte("x")))
	}
	opts := Options{VolumeLabel: "DATA32", VolumeID: 32, ModTime: testTime}
	img, l := buildFile(t, files, opts)
	t.Logf("layout: %+v", l)
	require.Equal(t, 4096, l.ClusterSize)
	checkAll(t, img, l, files, opts, FAT32)
	checkFAT32Sectors(t, img, l)
}

// checkFAT32Sectors reads the FSInfo sector and the backups.
func checkFAT32Sectors(t *testing.T, img string, l Layout) {
	f, err := os.Open(img)
	require.NoError(t, err)
	defer f.Close()
	b := make([]byte, 8*512)
	_, err = io.ReadFull(f, b)
	require.NoError(t, err)
	require.Equal(t, b[:512], b[6*512:7*512], "backup boot sector")
	require.Equal(t, b[512:1024], b[7*512:8*512], "backup FSInfo")
	info := b[512:1024]
	require.Equal(t, uint32(0x41615252), binary.LittleEndian.Uint32(info))
	require.Equal(t, uint32(l.Clusters-l.UsedClusters), binary.LittleEndian.Uint32(info[488:]), "free count")
	require.Equal(t, uint32(2+l.UsedClusters), binary.LittleEndian.Uint32(info[492:]), "next free")
}

// TestForced covers forced types and cluster sizes, at the edges of the
// cluster-count ranges: the readers must see the type we meant.
func TestForced(t *testing.T) {
	small := []File{file("EFI/BOOT/grub.cfg", []byte("x\n")), file("a", randomBytes(4, 5000))}
	cases := []struct {
		name     string
		files    []File
		opts     Options
		clusters int // > 0: at least this many; < 0: exactly -clusters
	}{
		{"FAT32 smallest", small, Options{Type: FAT32}, 65541},
		{"FAT16 smallest", small, Options{Type: FAT16}, 4101},
		{"FAT16 16K clusters", small, Options{Type: FAT16, ClusterSize: 16 << 10}, 4101},
		{"FAT12 32K clusters", small, Options{Type: FAT12, ClusterSize: 32 << 10}, 0},
		// The most clusters each type takes (16 below the boundary), all
		// used, no free space: the 16 KiB rounding must not add clusters.
		{"FAT12 fullest", []File{{Name: "f", Size: 4068 * 512, Open: pattern{size: 4068 * 512}.open}}, Options{ClusterSize: 512, FreeSpace: -1}, -4068},
		{"FAT16 fullest", []File{{Name: "f", Size: 65508 * 512, Open: pattern{size: 65508 * 512}.open}}, Options{Type: FAT16, ClusterSize: 512, FreeSpace: -1}, -65508},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.ModTime = testTime
			img, l := buildFile(t, c.files, c.opts)
			t.Logf("layout: %+v", l)
			want := c.opts.Type
			if want == 0 {
				want = FAT12
			}
			if c.clusters < 0 {
				require.Equal(t, -c.clusters, l.Clusters)
				require.Equal(t, l.Clusters, l.UsedClusters)
			}
			if c.clusters > 0 {
				// The least the type allows, and what rounding the image
				// up to 16 KiB adds.
				require.GreaterOrEqual(t, l.Clusters, c.clusters)
				require.Less(t, l.Clusters, c.clusters+32*512/l.ClusterSize)
			}
			if c.opts.ClusterSize != 0 {
				require.Equal(t, c.opts.ClusterSize, l.ClusterSize)
			}
			checkAll(t, img, l, c.files, c.opts, want)
		})
	}

	// One cluster more than the type holds: an error, not a wrong type.
	_, err := Plan([]File{{Name: "f", Size: 4069 * 512}}, Options{Type: FAT12, ClusterSize: 512, FreeSpace: -1})
	require.ErrorIs(t, err, ErrTooLarge)
	t.Log(err)
	_, err = Plan([]File{{Name: "f", Size: 65509 * 512}}, Options{Type: FAT16, ClusterSize: 512, FreeSpace: -1})
	require.ErrorIs(t, err, ErrTooLarge)
}

// TestAutoChoice checks the layout policy without writing images.
func TestAutoChoice(t *testing.T) {
	for _, c := range []struct {
		size int64
		typ  Type
	}{
		{0, FAT12},
		{3 << 20, FAT12},
		{15 << 20, FAT12},
		{17 << 20, FAT16},
		{200 << 20, FAT16},
		{255 << 20, FAT16},
		{257 << 20, FAT32},
		{MaxFileSize, FAT32},
	} {
		l, err := Plan([]File{{Name: "f", Size: c.size}}, Options{})
		require.NoError(t, err)
		require.Equal(t, c.typ, l.Type, "content %d bytes: %+v", c.size, l)
		require.GreaterOrEqual(t, (l.Clusters-l.UsedClusters)*l.ClusterSize, DefaultFreeSpace, "free space, %+v", l)
		require.Less(t, l.Size, c.size+c.size/50+1<<20, "image too large, %+v", l)
	}
}

func TestReproducible(t *testing.T) {
	files := efiFiles()
	opts := Options{VolumeLabel: "EFIBOOT", VolumeID: 7, ModTime: testTime}
	var a, b, c, d bytes.Buffer
	_, err := Build(&a, files, opts)
	require.NoError(t, err)
	// The Writer, entries in reverse order: the same bytes.
	rev := append([]File(nil), files...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	writeWithWriter(t, &b, rev, opts)
	require.True(t, bytes.Equal(a.Bytes(), b.Bytes()), "Build and Writer (reversed order) differ")
	_, err = Build(&c, rev, opts)
	require.NoError(t, err)
	require.True(t, bytes.Equal(a.Bytes(), c.Bytes()), "Build in another order differs")

	other := opts
	other.ModTime = testTime.Add(2 * time.Second)
	_, err = Build(&d, files, other)
	require.NoError(t, err)
	require.False(t, bytes.Equal(a.Bytes(), d.Bytes()), "a different ModTime gives the same bytes")

	d.Reset()
	other = opts
	other.VolumeID++
	_, err = Build(&d, files, other)
	require.NoError(t, err)
	require.False(t, bytes.Equal(a.Bytes(), d.Bytes()), "a different VolumeID gives the same bytes")
}

func TestTimestamps(t *testing.T) {
	for _, c := range []struct {
		in               time.Time
		date, tm         uint16
		hundredths, year int
	}{
		{time.Unix(315532800, 0), 0<<9 | 1<<5 | 1, 0, 0, 1980}, // SOURCE_DATE_EPOCH's default
		{time.Unix(0, 0), 0<<9 | 1<<5 | 1, 0, 0, 1980},         // clamped up
		{time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), 127<<9 | 12<<5 | 31, 23<<11 | 59<<5 | 29, 199, 2107},
		{testTime, 44<<9 | 2<<5 | 29, 13<<11 | 37<<5 | 21, 100, 2024},
		{time.Date(2024, 2, 29, 14, 37, 43, 250e6, time.FixedZone("CET", 3600)), 44<<9 | 2<<5 | 29, 13<<11 | 37<<5 | 21, 125, 2024},
	} {
		date, tm, hs := stamp(c.in)
		require.Equal(t, c.date, date, "%v", c.in)
		require.Equal(t, c.tm, tm, "%v", c.in)
		require.Equal(t, byte(c.hundredths), hs, "%v", c.in)
	}
}

func TestShortNameBasis(t *testing.T) {
	for in, want := range map[string]string{
		"grub.cfg":                   "GRUB.CFG",
		"nixos-generation-1.conf":    "NIXOS-GE.CON",
		"Long Name With Spaces.txt":  "LONGNAME.TXT",
		"a.b.c.d":                    "ABC.D",
		".hidden":                    "HIDDEN",
		"...x":                       "X",
		"café.txt":                   "CAF_.TXT",
		"+,;=[]":                     "______",
		"☃":                          "_",
		"noext":                      "NOEXT",
		"verylongbasename.extension": "VERYLONG.EXT",
	} {
		base, ext := basisName(in)
		got := base
		if ext != "" {
			got += "." + ext
		}
		require.Equal(t, want, got, "basis of %q", in)
	}
}

func TestBadInput(t *testing.T) {
	ok := []byte("ok\n")
	bad := []struct {
		name  string
		files []File
		kind  error
		path  string // the path the error must name
		opts  Options
	}{
		{"star", []File{file("EFI/a*b", ok)}, ErrInvalidName, "EFI/a*b", Options{}},
		{"question", []File{file("a?b", ok)}, ErrInvalidName, "a?b", Options{}},
		{"quote", []File{file(`a"b`, ok)}, ErrInvalidName, `a"b`, Options{}},
		{"less", []File{file("a<b", ok)}, ErrInvalidName, "a<b", Options{}},
		{"greater", []File{file("a>b", ok)}, ErrInvalidName, "a>b", Options{}},
		{"pipe", []File{file("a|b", ok)}, ErrInvalidName, "a|b", Options{}},
		{"colon", []File{file("dir/c:d", ok)}, ErrInvalidName, "dir/c:d", Options{}},
		{"backslash", []File{file(`a\b`, ok)}, ErrInvalidName, `a\b`, Options{}},
		{"control", []File{file("a\x01b", ok)}, ErrInvalidName, "a\x01b", Options{}},
		{"newline", []File{file("a\nb", ok)}, ErrInvalidName, "a\nb", Options{}},
		{"delete", []File{file("a\x7fb", ok)}, ErrInvalidName, "a\x7fb", Options{}},
		{"not UTF-8", []File{file("a\xffb", ok)}, ErrInvalidName, "a\xffb", Options{}},
		{"256 units", []File{file(strings.Repeat("y", 256), ok)}, ErrInvalidName, strings.Repeat("y", 256), Options{}},
		{"256 units of surrogates", []File{file(strings.Repeat("😀", 128), ok)}, ErrInvalidName, strings.Repeat("😀", 128), Options{}},
		{"trailing dot", []File{file("name.", ok)}, ErrInvalidName, "name.", Options{}},
		{"trailing space", []File{file("d/name ", ok)}, ErrInvalidName, "d/name ", Options{}},
		{"empty", []File{file("", ok)}, ErrInvalidName, "", Options{}},
		{"root", []File{dir("/")}, ErrInvalidName, "/", Options{}},
		{"empty component", []File{file("a//b", ok)}, ErrInvalidName, "a//b", Options{}},
		{"dot", []File{file("./a", ok)}, ErrInvalidName, "./a", Options{}},
		{"dot dot", []File{file("a/../b", ok)}, ErrInvalidName, "a/../b", Options{}},
		{"dir with size", []File{{Name: "d", Dir: true, Size: 1}}, ErrInvalidName, "d", Options{}},
		{"same name", []File{file("a.txt", ok), file("a.txt", ok)}, ErrDuplicate, "a.txt", Options{}},
		{"case", []File{file("Grub.cfg", ok), file("GRUB.CFG", ok)}, ErrDuplicate, "GRUB.CFG", Options{}},
		{"case of a parent", []File{file("EFI/BOOT/grub.cfg", ok), file("efi/boot/x", ok)}, ErrDuplicate, "efi/boot/x", Options{}},
		{"unicode case", []File{file("ä", ok), file("Ä", ok)}, ErrDuplicate, "Ä", Options{}},
		{"file and dir", []File{file("x", ok), dir("X")}, ErrDuplicate, "X", Options{}},
		{"parent is a file", []File{file("x", ok), file("x/y", ok)}, ErrDuplicate, "x/y", Options{}},
		{"dir twice", []File{dir("d"), dir("d")}, ErrDuplicate, "d", Options{}},
		{"4 GiB", []File{{Name: "EFI/huge.bin", Size: 1 << 32}}, ErrTooLarge, "EFI/huge.bin", Options{}},
		{"negative", []File{{Name: "neg", Size: -1}}, ErrTooLarge, "neg", Options{}},
		{"lower-case label", nil, ErrOptions, "", Options{VolumeLabel: "efiboot"}},
		{"long label", nil, ErrOptions, "", Options{VolumeLabel: "ABCDEFGHIJKL"}},
		{"label with a dot", nil, ErrOptions, "", Options{VolumeLabel: "A.B"}},
		{"cluster size", nil, ErrOptions, "", Options{ClusterSize: 1000}},
		{"type", nil, ErrOptions, "", Options{Type: 13}},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			check := func(err error, via string) {
				t.Helper()
				require.Error(t, err, via)
				require.ErrorIs(t, err, c.kind, via)
				var fe *Error
				require.ErrorAs(t, err, &fe, via)
				require.Equal(t, c.path, fe.Path, via)
				if c.path != "" {
					require.Contains(t, err.Error(), strconv.Quote(c.path), via)
				}
				t.Logf("%s: %v", via, err)
			}
			_, err := Plan(c.files, c.opts)
			check(err, "Plan")
			var out bytes.Buffer
			_, err = Build(&out, c.files, c.opts)
			check(err, "Build")
			require.Zero(t, out.Len(), "Build wrote before it found the error")

			w, err := NewWriter(&out, c.opts)
			if err != nil {
				check(err, "NewWriter")
				return
			}
			for _, f := range c.files {
				err = w.WriteHeader(&Header{Name: f.Name, Size: f.Size, Dir: f.Dir})
				if err != nil {
					break
				}
				if f.Size > 0 && f.Size < 100 {
					_, err = w.Write(make([]byte, f.Size))
					require.NoError(t, err)
				}
			}
			check(err, "WriteHeader")
			// The Writer is still usable after a rejected header.
			require.NoError(t, w.Close())
			require.NotZero(t, out.Len())
		})
	}
}

func TestDirectoryTooLarge(t *testing.T) {
	var files []File
	for i := range 33000 { // two slots each
		files = append(files, File{Name: fmt.Sprintf("big dir/f%05d.Txt", i)})
	}
	_, err := Plan(files, Options{})
	require.ErrorIs(t, err, ErrTooLarge)
	require.ErrorContains(t, err, `"big dir"`)
	t.Log(err)
	_, err = Plan(files[:32000], Options{})
	require.NoError(t, err)
}

type failingWriter struct{ left int }

func (w *failingWriter) Write(b []byte) (int, error) {
	if len(b) > w.left {
		n := w.left
		w.left = 0
		return n, io.ErrShortWrite
	}
	w.left -= len(b)
	return len(b), nil
}

func TestBadContent(t *testing.T) {
	short := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("abc")), nil }
	_, err := Build(io.Discard, []File{{Name: "d/short", Size: 4, Open: short}}, Options{})
	require.ErrorIs(t, err, ErrShortContent)
	require.ErrorContains(t, err, `"d/short"`)
	_, err = Build(io.Discard, []File{{Name: "d/long", Size: 2, Open: short}}, Options{})
	require.ErrorIs(t, err, ErrWriteTooLong)
	require.ErrorContains(t, err, `"d/long"`)
	_, err = Build(io.Discard, []File{{Name: "d/none", Size: 2}}, Options{})
	require.ErrorIs(t, err, ErrShortContent)
	failing := func() (io.ReadCloser, error) { return nil, fs.ErrPermission }
	_, err = Build(io.Discard, []File{{Name: "d/unreadable", Size: 2, Open: failing}}, Options{})
	require.ErrorIs(t, err, fs.ErrPermission)
	require.ErrorContains(t, err, `"d/unreadable"`)

	// The output fails: the error says so and blames no file.
	_, err = Build(&failingWriter{left: 100 << 10}, efiFiles(), Options{})
	require.ErrorIs(t, err, io.ErrShortWrite)
	require.ErrorContains(t, err, "writing the image")
	var fe *Error
	require.False(t, errors.As(err, &fe), "an output error blamed on a path: %v", err)

	// Writer: too much, too little.
	w, err := NewWriter(io.Discard, Options{})
	require.NoError(t, err)
	fw, err := w.Create("x/a", 2)
	require.NoError(t, err)
	n, err := fw.Write([]byte("abc"))
	require.Equal(t, 2, n)
	require.ErrorIs(t, err, ErrWriteTooLong)
	require.ErrorContains(t, err, `"x/a"`)
	_, err = w.Create("x/b", 5)
	require.NoError(t, err)
	_, err = fw.Write([]byte("late"))
	require.ErrorIs(t, err, ErrWriteTooLong, "write through an old Create writer")
	_, err = w.Write([]byte("ab"))
	require.NoError(t, err)
	err = w.Close()
	require.ErrorIs(t, err, ErrShortContent)
	require.ErrorContains(t, err, `"x/b"`)

	w, err = NewWriter(io.Discard, Options{})
	require.NoError(t, err)
	_, err = w.Write([]byte("x"))
	require.ErrorIs(t, err, ErrWriteTooLong, "write before any header")
	require.NoError(t, w.Mkdir("d"))
	_, err = w.Write([]byte("x"))
	require.ErrorIs(t, err, ErrWriteTooLong, "write to a directory")
}
