package iso9660

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/sqfscheck"
)

// ckTreeImage is a NixOS-like bootable image of the varied test tree.
type ckTreeImage struct {
	src       string
	iso       string
	volID     string
	byPath    map[string]sqfscheck.Entry // the source, root included (".")
	isoinfoRR []ckIsoinfoEntry           // isoinfo -R -l
}

// Longest symlink targets libisofs (xorriso) accepts are 1023 bytes: it
// refuses to load an image with a longer one ("Rock Ridge path too long"),
// whoever wrote it. The tree's 4095-byte target is replaced here and
// tested on its own in TestLongSymlinkTarget.
var ckTreeLinks = map[string]string{
	"links/target-1023":     strings.Repeat("c", 300) + "/" + strings.Repeat("seg/", 170) + strings.Repeat("e", 1023-301-680),
	"links/abs-long":        "/" + strings.Repeat("a", 249) + "/" + strings.Repeat("b/", 200) + "end",
	"links/dangling-long":   strings.Repeat("../", 90) + "nowhere",
	"links/component-248":   strings.Repeat("q", 248),
	"links/component-249":   strings.Repeat("r", 249),
	"links/component-255-2": strings.Repeat("s", 255) + "/" + strings.Repeat("t", 255),
}

func ckBuildTreeImage(t *testing.T, dir string) *ckTreeImage {
	t.Helper()
	ckNeedFiles(t, ckIsolinuxBin, ckIsohdpfxBin, ckLdlinuxC32)
	src := filepath.Join(dir, "src")
	t.Cleanup(func() { sqfscheck.RemoveAll(src) })
	_, err := sqfscheck.Build(src, sqfscheck.Options{BlockSize: 4096, BigDir: 3000})
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(src, "links/target-4095")))
	for p, target := range ckTreeLinks {
		require.NoError(t, os.Symlink(target, filepath.Join(src, p)))
	}
	require.NoError(t, ckCopyTestFile(filepath.Join(src, "isolinux/isolinux.bin"), ckIsolinuxBin, 0o444))
	require.NoError(t, ckCopyTestFile(filepath.Join(src, "isolinux/ldlinux.c32"), ckLdlinuxC32, 0o444))
	require.NoError(t, ckCopyTestFile(filepath.Join(src, "boot/efi.img"), ckEfiImage(t, dir), 0o444))
	require.NoError(t, os.WriteFile(filepath.Join(src, "version.txt"), []byte("25.05\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(src, "nixos-marker"), nil, 0o644))
	// setuid, setgid and sticky bits (the tree has none)
	for name, mode := range map[string]fs.FileMode{"setuid": 0o755 | fs.ModeSetuid, "setgid": 0o750 | fs.ModeSetgid, "sticky-dir": 0o777 | fs.ModeSticky | fs.ModeDir} {
		p := filepath.Join(src, "special-bits", name)
		if mode.IsDir() {
			require.NoError(t, os.MkdirAll(p, 0o755))
		} else {
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
			require.NoError(t, os.WriteFile(p, []byte(name+"\n"), 0o644))
		}
		require.NoError(t, os.Chmod(p, mode))
	}

	ti := &ckTreeImage{src: src, iso: filepath.Join(dir, "tree.iso"), volID: "nixos-minimal-25.05-x86_64", byPath: map[string]sqfscheck.Entry{}}
	entries, err := sqfscheck.ListDir(src)
	require.NoError(t, err)
	for _, e := range entries {
		ti.byPath[e.Path] = e
	}
	ckWriteImage(t, ti.iso, ckBootOptions(t, ti.volID), func(w *Writer) error { return ckAddTree(w, src) })
	return ti
}

// ckWantTarget is how a symlink target reads back: Rock Ridge has no way to
// say "trailing slash" (xorriso drops it too) and empty components vanish.
func ckWantTarget(target string) string {
	if target == "/" {
		return target
	}
	return strings.TrimSuffix(target, "/")
}

// subdirs counts the directories directly in dir.
func (ti *ckTreeImage) subdirs(dir string) int {
	n := 0
	for p, e := range ti.byPath {
		if p != "." && e.Mode.IsDir() && path.Dir(p) == dir {
			n++
		}
	}
	return n
}

func (ti *ckTreeImage) entry(t *testing.T, p string) ckIsoinfoEntry {
	t.Helper()
	for _, e := range ti.isoinfoRR {
		if e.path() == p {
			return e
		}
	}
	t.Fatalf("isoinfo -R -l does not list %s", p)
	return ckIsoinfoEntry{}
}

func ckLE32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

// TestTreeImage writes the varied test tree (255-byte and unicode names,
// 48 nested directories, a 3,000-entry directory, symlinks of every kind,
// empty files, modes 0755/0644/0555/0444...) with the NixOS boot setup and
// reads it back with xorriso, isoinfo and our own reader.
func TestTreeImage(t *testing.T) {
	ckNeedTools(t, "xorriso", "osirrox", "isoinfo")
	ti := ckBuildTreeImage(t, t.TempDir())
	out := ckRunTool(t, "isoinfo", "-R", "-l", "-i", ti.iso)
	var err error
	ti.isoinfoRR, err = ckParseIsoinfo(out)
	require.NoError(t, err)

	t.Run("RockRidgeListing", func(t *testing.T) { ckTestRockRidgeListing(t, ti) })
	t.Run("ElTorito", func(t *testing.T) { ckTestElTorito(t, ti) })
	t.Run("IsoinfoDescriptors", func(t *testing.T) { ckTestIsoinfoDescriptors(t, ti) })
	t.Run("OsirroxExtract", func(t *testing.T) { ckTestExtract(t, ti) })
	t.Run("Joliet", func(t *testing.T) { ckTestJoliet(t, ti) })
	t.Run("ISONames", func(t *testing.T) { ckTestISONames(t, ti) })
	t.Run("RawStructure", func(t *testing.T) { ckTestRawStructure(t, ti) })
}

// ckTestRockRidgeListing: `isoinfo -R -l` lists exactly the source tree (and
// the boot catalog), with the same types, permissions, sizes, symlink
// targets and link counts.
func ckTestRockRidgeListing(t *testing.T, ti *ckTreeImage) {
	type info struct {
		mode  string
		nlink int
		size  int64
	}
	want := map[string]info{"isolinux/boot.cat": {"-r--r--r--", 1, 2048}}
	for p, e := range ti.byPath {
		if p == "." {
			continue
		}
		// isoinfo 1.1.11 does not show setuid, setgid and sticky bits
		// (osirrox and our reader check them)
		key, in := p, info{mode: ckLsMode(e.Mode &^ (fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)), nlink: 1}
		switch {
		case e.Mode.IsDir():
			in.nlink = 2 + ti.subdirs(p)
			in.size = -1
		case e.Mode&fs.ModeSymlink != 0:
			target := ckWantTarget(e.Target)
			if target == "/" {
				target = "" // isoinfo prints a lone ROOT component so, whoever wrote the image
			}
			key += " -> " + target
		default:
			in.size = e.Size
		}
		want[key] = in
	}
	got := map[string]info{}
	for _, e := range ti.isoinfoRR {
		in := info{e.mode, e.nlink, e.size}
		if e.mode[0] == 'd' {
			in.size = -1
		}
		require.NotContains(t, got, e.path(), "listed twice")
		got[e.path()] = in
	}
	var diffs []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("missing %q %+v", k, w))
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%q: got %+v, want %+v", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected %q %+v", k, g))
		}
	}
	sort.Strings(diffs)
	require.Empty(t, diffs, "isoinfo -R -l differs from the source tree (%d entries)", len(want))
}

var (
	ckReBootImg = regexp.MustCompile(`(?m)^El Torito boot img : +([0-9]+) +(\S+) +([yn]) +(\S+) +(0x[0-9a-f]+) +(0x[0-9a-f]+) +([0-9]+) +([0-9]+)$`)
	ckReImgPath = regexp.MustCompile(`(?m)^El Torito img path : +([0-9]+) +(\S+)$`)
	ckReImgOpts = regexp.MustCompile(`(?m)^El Torito img opts : +([0-9]+) +(.*)$`)
	ckReMBRPart = regexp.MustCompile(`(?m)^MBR partition +: +([0-9]+) +(0x[0-9a-f]{2}) +(0x[0-9a-f]{2}) +([0-9]+) +([0-9]+)$`)
	ckReField   = func(name string) *regexp.Regexp {
		return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` *: *(.*)$`)
	}
)

func ckXorrisoField(t *testing.T, out, name string) string {
	t.Helper()
	m := ckReField(name).FindStringSubmatch(out)
	require.NotNil(t, m, "xorriso report has no %q line:\n%s", name, out)
	return strings.TrimSpace(m[1])
}

// ckTestElTorito: xorriso's reports of the boot catalog and the system area
// agree with where isoinfo finds the files.
func ckTestElTorito(t *testing.T, ti *ckTreeImage) {
	out := ckRunCombined(t, "xorriso", "-indev", ti.iso, "-report_el_torito", "plain", "-report_system_area", "plain")
	isolinux := ti.entry(t, "isolinux/isolinux.bin")
	efi := ti.entry(t, "boot/efi.img")
	cat := ti.entry(t, "isolinux/boot.cat")
	st, err := os.Stat(ti.iso)
	require.NoError(t, err)
	secs512 := st.Size() / 512

	assert.Equal(t, "'"+ti.volID+"'", ckXorrisoField(t, out, "Volume id"))
	assert.Equal(t, "/isolinux/boot.cat", ckXorrisoField(t, out, "El Torito cat path"))
	assert.Equal(t, fmt.Sprintf("%d  1", cat.lba), ckXorrisoField(t, out, "El Torito catalog"))

	imgs := ckReBootImg.FindAllStringSubmatch(out, -1)
	require.Len(t, imgs, 2, out)
	// N Pltf B Emul Ld_seg Hdpt Ldsiz LBA
	assert.Equal(t, []string{"1", "BIOS", "y", "none", "0x0000", "0x00", "4", strconv.Itoa(int(isolinux.lba))}, imgs[0][1:], "BIOS entry")
	assert.Equal(t, []string{"2", "UEFI", "y", "none", "0x0000", "0x00", strconv.FormatInt((efi.size+511)/512, 10), strconv.Itoa(int(efi.lba))}, imgs[1][1:], "UEFI entry")
	paths := ckReImgPath.FindAllStringSubmatch(out, -1)
	require.Len(t, paths, 2, out)
	assert.Equal(t, []string{"1", "/isolinux/isolinux.bin"}, paths[0][1:])
	assert.Equal(t, []string{"2", "/boot/efi.img"}, paths[1][1:])
	opts := ckReImgOpts.FindAllStringSubmatch(out, -1)
	require.NotEmpty(t, opts, out)
	assert.Equal(t, "1", opts[0][1])
	assert.Contains(t, strings.Fields(opts[0][2]), "boot-info-table", "xorriso finds no valid boot-info-table in isolinux.bin")
	assert.Contains(t, strings.Fields(opts[0][2]), "isohybrid-suitable")

	assert.Equal(t, "MBR isohybrid cyl-align-on GPT", ckXorrisoField(t, out, "System area summary"))
	assert.Equal(t, strconv.FormatInt(secs512, 10), ckXorrisoField(t, out, "ISO image size/512"))
	assert.Equal(t, "64", ckXorrisoField(t, out, "MBR heads per cyl"))
	assert.Equal(t, "32", ckXorrisoField(t, out, "MBR secs per head"))
	assert.Zero(t, secs512%2048, "isohybrid images are whole 1 MiB cylinders")
	parts := ckReMBRPart.FindAllStringSubmatch(out, -1)
	require.Len(t, parts, 2, out)
	assert.Equal(t, []string{"1", "0x80", "0x00", "0", strconv.FormatInt(secs512, 10)}, parts[0][1:], "MBR partition 1: bootable, the whole image")
	assert.Equal(t, []string{"2", "0x00", "0xef", strconv.Itoa(int(efi.lba) * 4), strconv.FormatInt((efi.size+511)/512, 10)}, parts[1][1:], "MBR partition 2: efi.img")
	assert.Equal(t, "2  /boot/efi.img", ckXorrisoField(t, out, "MBR partition path"))

	assert.Equal(t, "2  128  separated", ckXorrisoField(t, out, "GPT entry array"))
	assert.Equal(t, fmt.Sprintf("34  %d  %d", secs512-34, secs512-1), ckXorrisoField(t, out, "GPT lba range"))
	assert.Equal(t, "1  28732ac11ff8d211ba4b00a0c93ec93b", ckXorrisoField(t, out, "GPT type GUID"), "EFI System Partition type")
	assert.Equal(t, fmt.Sprintf("1  %d  %d", efi.lba*4, (efi.size+511)/512), ckXorrisoField(t, out, "GPT start and size"))
	assert.Equal(t, "1  /boot/efi.img", ckXorrisoField(t, out, "GPT partition path"))
	assert.NotContains(t, out, "GPT backup problems", out)
	assert.NotContains(t, out, "CRC", out)

	// The GPT, checked by hand too: both headers and their CRCs, the entry
	// array and its CRC, the partition.
	ckCheckGPT(t, ti.iso, secs512, int64(efi.lba)*4, (efi.size+511)/512)

	// The MBR points the isohybrid boot code at isolinux.bin (in 512-byte
	// sectors) and keeps the boot code.
	f, err := os.Open(ti.iso)
	require.NoError(t, err)
	defer f.Close()
	mbr := make([]byte, 512)
	_, err = f.ReadAt(mbr, 0)
	require.NoError(t, err)
	code, err := os.ReadFile(ckIsohdpfxBin)
	require.NoError(t, err)
	assert.Equal(t, code[:432], mbr[:432], "MBR boot code")
	assert.Equal(t, uint64(isolinux.lba)*4, binary.LittleEndian.Uint64(mbr[432:]), "isohybrid boot file address")
	assert.Equal(t, []byte{0x55, 0xAA}, mbr[510:])
}

var (
	ckReVolID   = regexp.MustCompile(`(?m)^Volume id: (.*)$`)
	ckReCatalog = regexp.MustCompile(`(?m)^El Torito VD version 1 found, boot catalog is in sector ([0-9]+)$`)
	ckReBootOff = regexp.MustCompile(`(?m)^\s*Bootoff ([0-9A-F]+) ([0-9]+)$`)
	ckReNsect   = regexp.MustCompile(`(?m)^\s*Nsect ([0-9]+)$`)
)

// ckTestIsoinfoDescriptors: `isoinfo -d` sees the volume ID byte for byte,
// Rock Ridge, Joliet and the El Torito catalog and BIOS entry where
// isoinfo -l finds them.
func ckTestIsoinfoDescriptors(t *testing.T, ti *ckTreeImage) {
	out := ckRunTool(t, "isoinfo", "-d", "-i", ti.iso)
	m := ckReVolID.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	assert.Equal(t, ti.volID, m[1])
	assert.Contains(t, out, "\nRock Ridge signatures version 1 found\n")
	assert.Contains(t, out, "\nJoliet with UCS level 3 found\n")
	m = ckReCatalog.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	assert.Equal(t, strconv.Itoa(int(ti.entry(t, "isolinux/boot.cat").lba)), m[1])
	m = ckReBootOff.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	lba := ti.entry(t, "isolinux/isolinux.bin").lba
	assert.Equal(t, []string{fmt.Sprintf("%X", lba), strconv.Itoa(int(lba))}, m[1:])
	m = ckReNsect.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	assert.Equal(t, "4", m[1])
	st, err := os.Stat(ti.iso)
	require.NoError(t, err)
	assert.Contains(t, out, fmt.Sprintf("\nVolume size is: %d\n", st.Size()/2048))
}

// ckCheckBootInfoTable checks isolinux.bin as found in the image: bytes 8–63
// are the boot-info-table, the rest is the original.
func ckCheckBootInfoTable(t *testing.T, got, orig []byte, lba uint32) {
	t.Helper()
	require.Len(t, got, len(orig))
	assert.Equal(t, orig[:8], got[:8])
	assert.True(t, bytes.Equal(orig[64:], got[64:]), "isolinux.bin differs after byte 64")
	var sum uint32
	for i := 64; i+4 <= len(orig); i += 4 {
		sum += ckLE32(orig[i:])
	}
	assert.Equal(t, uint32(16), ckLE32(got[8:]), "boot-info-table: primary volume descriptor sector")
	assert.Equal(t, lba, ckLE32(got[12:]), "boot-info-table: the file's sector")
	assert.Equal(t, uint32(len(orig)), ckLE32(got[16:]), "boot-info-table: the file's length")
	assert.Equal(t, sum, ckLE32(got[20:]), "boot-info-table: checksum")
	assert.Equal(t, make([]byte, 40), got[24:64], "boot-info-table: reserved bytes")
}

// ckTestExtract: osirrox extracts the same tree: paths, types, modes,
// sizes, contents, symlink targets and modification times.
func ckTestExtract(t *testing.T, ti *ckTreeImage) {
	dst := filepath.Join(t.TempDir(), "x")
	t.Cleanup(func() { sqfscheck.RemoveAll(dst) })
	ckRunTool(t, "osirrox", "-indev", ti.iso, "-extract", "/", dst)
	got, err := sqfscheck.ListDir(dst)
	require.NoError(t, err)
	seen := map[string]bool{}
	var diffs []string
	for _, g := range got {
		seen[g.Path] = true
		s, ok := ti.byPath[g.Path]
		if g.Path == "isolinux/boot.cat" {
			assert.Equal(t, int64(2048), g.Size)
			continue
		}
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%q: not in the source", g.Path))
		case g.Mode != s.Mode:
			diffs = append(diffs, fmt.Sprintf("%q: mode %v, want %v", g.Path, g.Mode, s.Mode))
		case g.Mode.IsRegular() && g.Size != s.Size:
			diffs = append(diffs, fmt.Sprintf("%q: size %d, want %d", g.Path, g.Size, s.Size))
		case g.Mode&fs.ModeSymlink != 0 && g.Target != ckWantTarget(s.Target):
			diffs = append(diffs, fmt.Sprintf("%q: target %q, want %q", g.Path, g.Target, ckWantTarget(s.Target)))
		case g.Mode&fs.ModeSymlink == 0 && g.Path != "." && g.ModTime.Unix() != s.ModTime.Unix():
			// osirrox does not set symlink times
			diffs = append(diffs, fmt.Sprintf("%q: mtime %v, want %v", g.Path, g.ModTime, s.ModTime))
		case g.Mode.IsRegular() && g.Path != "isolinux/isolinux.bin":
			a, err1 := os.ReadFile(filepath.Join(ti.src, filepath.FromSlash(g.Path)))
			b, err2 := os.ReadFile(filepath.Join(dst, filepath.FromSlash(g.Path)))
			if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
				diffs = append(diffs, fmt.Sprintf("%q: content differs (%v, %v)", g.Path, err1, err2))
			}
		}
	}
	for p := range ti.byPath {
		if !seen[p] {
			diffs = append(diffs, fmt.Sprintf("%q: missing", p))
		}
	}
	sort.Strings(diffs)
	require.Empty(t, diffs)

	got2, err := os.ReadFile(filepath.Join(dst, "isolinux/isolinux.bin"))
	require.NoError(t, err)
	orig, err := os.ReadFile(ckIsolinuxBin)
	require.NoError(t, err)
	ckCheckBootInfoTable(t, got2, orig, ti.entry(t, "isolinux/isolinux.bin").lba)
}

// ckJolietWant is the Joliet name a POSIX name should get: UCS-2, the
// characters Joliet forbids (controls, * / : ; ? \) replaced by '_', at
// most 64 characters. It is decoded as Go decodes strings: each invalid
// UTF-8 byte is U+FFFD.
func ckJolietWant(name string) string {
	var u []uint16
	for _, r := range name {
		switch {
		case r < 0x20 || strings.ContainsRune(`*/:;?\`, r):
			u = append(u, '_')
		case r > 0xFFFF: // a surrogate pair: not UCS-2
			u = append(u, '_', '_')
		default:
			u = append(u, uint16(r))
		}
	}
	if len(u) > 64 {
		u = u[:64]
	}
	return string(utf16.Decode(u))
}

// ckLatin1 is how isoinfo prints a Joliet name in the C locale.
func ckLatin1(s string) string {
	var b []byte
	for _, r := range s {
		if r > 0xFF {
			r = '_'
		}
		b = append(b, byte(r))
	}
	return string(b)
}

// ckTestJoliet: the Joliet hierarchy has every regular file and directory
// (no symlinks), under names truncated to 64 UCS-2 characters, with valid
// characters only, pointing at the same data; checked with isoinfo -J -l
// (which prints names in Latin-1) and exactly with our reader.
func ckTestJoliet(t *testing.T, ti *ckTreeImage) {
	type info struct {
		dir  bool
		size int64
	}
	want := map[string]info{"isolinux/boot.cat": {false, 2048}} // exact names
	for p, e := range ti.byPath {
		if p == "." || e.Mode&fs.ModeSymlink != 0 {
			continue
		}
		parts := strings.Split(p, "/")
		for i := range parts {
			parts[i] = ckJolietWant(parts[i])
		}
		in := info{dir: e.Mode.IsDir()}
		if !in.dir {
			in.size = e.Size
		}
		want[strings.Join(parts, "/")] = in
	}

	// isoinfo
	out := ckRunTool(t, "isoinfo", "-J", "-l", "-i", ti.iso)
	listed, err := ckParseIsoinfo(out)
	require.NoError(t, err)
	wantDisplay := map[string]info{}
	for p, in := range want {
		parts := strings.Split(p, "/")
		for i := range parts {
			parts[i] = ckLatin1(parts[i])
		}
		d := strings.Join(parts, "/")
		if !in.dir {
			d += ";1"
		}
		require.NotContains(t, wantDisplay, d, "test tree has two names that look the same in Latin-1")
		wantDisplay[d] = in
	}
	got := map[string]info{}
	for _, e := range listed {
		in := info{dir: e.mode[0] == 'd'}
		if !in.dir {
			in.size = e.size
		}
		got[e.path()] = in
	}
	assert.Equal(t, len(wantDisplay), len(got))
	var diffs []string
	for k, w := range wantDisplay {
		if g, ok := got[k]; !ok || g != w {
			diffs = append(diffs, fmt.Sprintf("%q: got %+v (listed: %v), want %+v", k, g, ok, w))
		}
	}
	sort.Strings(diffs)
	require.Empty(t, diffs, "isoinfo -J -l")

	// our reader: exact UCS-2 names, valid characters, same extents as the
	// Rock Ridge hierarchy
	f, err := os.Open(ti.iso)
	require.NoError(t, err)
	defer f.Close()
	st, _ := f.Stat()
	ir := &ckReader{r: f, size: st.Size()}
	vols, _, err := ir.descriptors()
	require.NoError(t, err)
	require.Len(t, vols, 2)
	require.Equal(t, byte(2), vols[1].typ)
	assert.Equal(t, "%/E", string(bytes.TrimRight(vols[1].escapes, "\x00")))
	jol, err := ir.hierarchy(vols[1].root, true, false)
	require.NoError(t, err)
	prim, err := ir.hierarchy(vols[0].root, false, true)
	require.NoError(t, err)
	for p, e := range jol {
		if p == "." {
			continue
		}
		for _, u := range utf16.Encode([]rune(ckJolietName(e.id))) {
			if u < 0x20 || strings.ContainsRune(`*/:\?`, rune(u)) {
				t.Errorf("Joliet name %q has the forbidden character %q", ckJolietName(e.id), rune(u))
			}
		}
		base := strings.TrimSuffix(ckJolietName(e.id), ";1")
		if n := len(utf16.Encode([]rune(base))); n > 64 {
			t.Errorf("Joliet name %q is %d characters", base, n)
		}
		if strings.Contains(base, ";") {
			t.Errorf("Joliet name %q has a ';' besides the version", base)
		}
	}
	var jdiffs []string
	for p, w := range want {
		e := jol[p]
		if e == nil {
			jdiffs = append(jdiffs, fmt.Sprintf("%q: not in the Joliet hierarchy", p))
			continue
		}
		if e.dir != w.dir || !e.dir && e.size() != w.size {
			jdiffs = append(jdiffs, fmt.Sprintf("%q: dir %v size %d, want %+v", p, e.dir, e.size(), w))
		}
	}
	sort.Strings(jdiffs)
	require.Empty(t, jdiffs)
	assert.Equal(t, len(want)+1, len(jol), "Joliet entries (root included)")
	// The same data: each file's extent equals the Rock Ridge one.
	jolByExtent := map[uint32]int64{}
	for _, e := range jol {
		if !e.dir {
			jolByExtent[e.records[0].extent] = e.size()
		}
	}
	for p, e := range prim {
		if !e.dir && e.rr.mode&0o170000 == 0o100000 && e.size() > 0 {
			s, ok := jolByExtent[e.records[0].extent]
			assert.True(t, ok && s == e.size(), "%s: no Joliet file at sector %d with %d bytes", p, e.records[0].extent, e.size())
		}
	}
}

var (
	ckReISOFile = regexp.MustCompile(`^([A-Z0-9_]*)\.([A-Z0-9_]*);([0-9]+)$`)
	ckReISODir  = regexp.MustCompile(`^[A-Z0-9_]{1,31}$`)
)

// ckEcmaLess orders two identifiers of one directory as ECMA-119 9.3 says:
// file names compared with the shorter padded with spaces, then the
// extensions likewise, then the version numbers, higher first.
func ckEcmaLess(a, b string) bool {
	split := func(s string) (name, ext string, ver int) {
		s, v, _ := strings.Cut(s, ";")
		ver, _ = strconv.Atoi(v)
		name, ext, _ = strings.Cut(s, ".")
		return
	}
	pad := func(x, y string) (string, string) {
		n := max(len(x), len(y))
		return x + strings.Repeat(" ", n-len(x)), y + strings.Repeat(" ", n-len(y))
	}
	an, ae, av := split(a)
	bn, be, bv := split(b)
	if x, y := pad(an, bn); x != y {
		return x < y
	}
	if x, y := pad(ae, be); x != y {
		return x < y
	}
	return av > bv
}

// ckTestISONames: the plain ISO 9660 identifiers (isoinfo -l) are
// d-characters within the level 2/3 lengths, unique in their directory and
// recorded in ECMA-119 9.3 order; each directory has as many entries as the
// source.
func ckTestISONames(t *testing.T, ti *ckTreeImage) {
	out := ckRunTool(t, "isoinfo", "-l", "-i", ti.iso)
	listed, err := ckParseIsoinfo(out)
	require.NoError(t, err)
	byDir := map[string][]string{}
	var order []string
	for _, e := range listed {
		if _, ok := byDir[e.dir]; !ok {
			order = append(order, e.dir)
		}
		byDir[e.dir] = append(byDir[e.dir], e.text)
		if e.mode[0] == 'd' {
			assert.Regexp(t, ckReISODir, e.text, "directory identifier in /%s", e.dir)
			continue
		}
		m := ckReISOFile.FindStringSubmatch(e.text)
		if assert.NotNil(t, m, "file identifier %q in /%s", e.text, e.dir) {
			assert.LessOrEqual(t, len(m[1])+len(m[2]), 30, "file identifier %q", e.text)
			assert.NotEqual(t, "", m[1]+m[2], "file identifier %q", e.text)
			assert.Equal(t, "1", m[3])
		}
	}
	for _, d := range order {
		ids := byDir[d]
		seen := map[string]bool{}
		for i, id := range ids {
			assert.False(t, seen[id], "/%s: identifier %q twice", d, id)
			seen[id] = true
			if i > 0 && !ckEcmaLess(ids[i-1], id) {
				t.Errorf("/%s: %q recorded before %q, against ECMA-119 9.3", d, ids[i-1], id)
			}
		}
	}
	// Every source entry is there (symlinks as empty files).
	dirs := 0
	for p, e := range ti.byPath {
		if p != "." && e.Mode.IsDir() {
			dirs++
		}
	}
	gotDirs := 0
	for _, e := range listed {
		if e.mode[0] == 'd' {
			gotDirs++
		}
	}
	assert.Equal(t, len(ti.byPath), len(listed), "identifiers listed: the source but its root, and the boot catalog")
	assert.Equal(t, dirs, gotDirs, "directories listed")
}

// ckTestRawStructure reads the image with our own reader: every directory
// record within its sector, every continuation area within its sector, no
// two structures overlapping, path tables matching the directories, and
// the Rock Ridge view equal to the source (names, modes, link counts,
// owners, times, targets, sizes, contents).
func ckTestRawStructure(t *testing.T, ti *ckTreeImage) {
	f, err := os.Open(ti.iso)
	require.NoError(t, err)
	defer f.Close()
	st, _ := f.Stat()
	ir := &ckReader{r: f, size: st.Size()}
	vols, boot, err := ir.descriptors()
	require.NoError(t, err)
	require.Len(t, vols, 2)
	require.NotNil(t, boot)
	assert.Equal(t, "EL TORITO SPECIFICATION", string(bytes.TrimRight(boot[7:39], "\x00")))
	pvd := vols[0]
	assert.Equal(t, []byte(fmt.Sprintf("%-32s", ti.volID)), pvd.volumeID, "volume ID, padded with spaces")
	assert.Equal(t, st.Size()/ckSector, int64(pvd.blocks), "volume space size")
	assert.Equal(t, uint32(16), pvd.sector)
	assert.Equal(t, uint32(17), ir.bootSector, "El Torito boot record right after the PVD")

	prim, err := ir.hierarchy(pvd.root, false, true)
	require.NoError(t, err, "Rock Ridge hierarchy")
	require.True(t, ir.rr, "root has no SP entry")
	assert.Contains(t, prim["."].rr.erIDs, "RRIP_1991A")
	jol, err := ir.hierarchy(vols[1].root, true, false)
	require.NoError(t, err, "Joliet hierarchy")

	// The structures this image depends on were really exercised.
	big := prim["bigdir"]
	require.NotNil(t, big)
	assert.Greater(t, big.records[0].size, uint32(50*ckSector), "bigdir spans many sectors")
	ces := map[string]int{}
	for p, e := range prim {
		for range e.rr.ces {
			ces[path.Dir(p)]++
		}
	}
	assert.Greater(t, ces["links"], 3, "continuation areas in links/")
	assert.Greater(t, ces["names"], 3, "continuation areas in names/")
	assert.Greater(t, ces["bigdir"], 10, "continuation areas in bigdir/")

	// Rock Ridge entries against the source.
	var diffs []string
	for p, s := range ti.byPath {
		e := prim[p]
		if e == nil {
			diffs = append(diffs, fmt.Sprintf("%q: missing", p))
			continue
		}
		if !e.rr.hasPX || !e.rr.hasTF {
			diffs = append(diffs, fmt.Sprintf("%q: no PX or TF (%v)", p, e.rr.sigs))
			continue
		}
		if e.fileMode() != s.Mode {
			diffs = append(diffs, fmt.Sprintf("%q: mode %v, want %v", p, e.fileMode(), s.Mode))
		}
		if e.rr.uid != 0 || e.rr.gid != 0 {
			diffs = append(diffs, fmt.Sprintf("%q: owner %d:%d", p, e.rr.uid, e.rr.gid))
		}
		if p != "." && !e.rr.mtime.Equal(s.ModTime.Truncate(1e9)) {
			diffs = append(diffs, fmt.Sprintf("%q: mtime %v, want %v", p, e.rr.mtime, s.ModTime))
		}
		nlink := uint32(1)
		if s.Mode.IsDir() {
			nlink = uint32(2 + ti.subdirs(p))
		}
		if e.rr.nlink != nlink {
			diffs = append(diffs, fmt.Sprintf("%q: nlink %d, want %d", p, e.rr.nlink, nlink))
		}
		switch {
		case s.Mode&fs.ModeSymlink != 0:
			if e.rr.target != ckWantTarget(s.Target) || e.size() != 0 {
				diffs = append(diffs, fmt.Sprintf("%q: target %q (size %d), want %q", p, e.rr.target, e.size(), s.Target))
			}
		case s.Mode.IsRegular():
			if e.size() != s.Size {
				diffs = append(diffs, fmt.Sprintf("%q: size %d, want %d", p, e.size(), s.Size))
				continue
			}
			if p == "isolinux/isolinux.bin" {
				continue
			}
			a, err1 := os.ReadFile(filepath.Join(ti.src, filepath.FromSlash(p)))
			b, err2 := ir.readFile(e, 0, int(e.size()))
			if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
				diffs = append(diffs, fmt.Sprintf("%q: content differs (%v, %v)", p, err1, err2))
			}
		}
	}
	assert.Equal(t, len(ti.byPath)+1, len(prim), "entries: the source and the boot catalog")
	sort.Strings(diffs)
	require.Empty(t, diffs)

	// Nothing overlaps, and everything lies within the volume.
	type span struct {
		start, end int64
		what       string
	}
	var spans []span
	add := func(start, n int64, what string) {
		if n > 0 {
			spans = append(spans, span{start, start + n, what})
		}
	}
	add(0, 16*ckSector, "system area")
	add(16*ckSector, 4*ckSector, "volume descriptors")
	for _, h := range []struct {
		m    map[string]*ckEntry
		name string
	}{{prim, "rock ridge"}, {jol, "joliet"}} {
		for p, e := range h.m {
			for i, r := range e.records {
				add(int64(r.extent)*ckSector, int64(r.size), fmt.Sprintf("%s %s extent %d", h.name, p, i))
			}
			for _, c := range e.rr.ces {
				add(int64(c.lba)*ckSector+int64(c.offset), int64(c.length), fmt.Sprintf("%s %s continuation area", h.name, p))
			}
		}
	}
	for i, v := range vols {
		add(int64(v.ptL)*ckSector, int64(v.ptSize), fmt.Sprintf("volume %d L path table", i))
		add(int64(v.ptM)*ckSector, int64(v.ptSize), fmt.Sprintf("volume %d M path table", i))
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].start != spans[j].start {
			return spans[i].start < spans[j].start
		}
		return spans[i].end < spans[j].end
	})
	var last span
	for _, s := range spans {
		if s.start == last.start && s.end == last.end {
			continue // Joliet and Rock Ridge share file data
		}
		if s.start < last.end {
			t.Errorf("%s [%d, %d) overlaps %s [%d, %d)", s.what, s.start, s.end, last.what, last.start, last.end)
		}
		if s.end > int64(pvd.blocks)*ckSector {
			t.Errorf("%s ends past the volume", s.what)
		}
		if s.end > last.end {
			last = s
		}
	}

	// Path tables: every directory once, breadth first, in the order ECMA-119
	// 9.4 wants, with its sector and its parent's number; the M table the
	// same in big-endian.
	ckCheckPathTable(t, ir, vols[0], prim, false)
	ckCheckPathTable(t, ir, vols[1], jol, true)
}

func ckCheckPathTable(t *testing.T, ir *ckReader, v ckVolume, h map[string]*ckEntry, joliet bool) {
	t.Helper()
	read := func(lba uint32) []byte {
		b := make([]byte, v.ptSize)
		_, err := ir.r.ReadAt(b, int64(lba)*ckSector)
		require.NoError(t, err)
		return b
	}
	l, m := read(v.ptL), read(v.ptM)
	byLBA := map[uint32]string{}
	for p, e := range h {
		if e.dir {
			byLBA[e.records[0].extent] = p
		}
	}
	type pt struct {
		lba    uint32
		parent uint16
		id     []byte
	}
	var rows []pt
	for off := 0; off < len(l); {
		n := int(l[off])
		require.NotZero(t, n, "path table entry at %d has an empty identifier", off)
		r := pt{ckLE32(l[off+2:]), binary.LittleEndian.Uint16(l[off+6:]), l[off+8 : off+8+n]}
		require.Equal(t, r.lba, binary.BigEndian.Uint32(m[off+2:]), "M path table sector at %d", off)
		require.Equal(t, r.parent, binary.BigEndian.Uint16(m[off+6:]), "M path table parent at %d", off)
		require.Equal(t, r.id, m[off+8:off+8+n])
		rows = append(rows, r)
		off += 8 + n + n%2
	}
	require.Len(t, rows, len(byLBA), "path table entries (joliet %v)", joliet)
	num := map[string]int{} // path → 1-based number
	for i, r := range rows {
		p, ok := byLBA[r.lba]
		require.True(t, ok, "path table entry %d points at sector %d, no directory", i+1, r.lba)
		num[p] = i + 1
		if p == "." {
			require.Equal(t, 0, i)
			require.Equal(t, uint16(1), r.parent)
			continue
		}
		pn, ok := num[path.Dir(p)]
		if path.Dir(p) == "." {
			pn, ok = 1, true
		}
		require.True(t, ok, "%s listed before its parent", p)
		require.Equal(t, uint16(pn), r.parent, "%s: parent number", p)
		require.Equal(t, h[p].id, r.id, "%s: identifier", p)
		if i > 1 {
			prev := rows[i-1]
			pp := byLBA[prev.lba]
			dp, dq := strings.Count(pp, "/"), strings.Count(p, "/")
			if pp == "." {
				dp = -1
			}
			require.True(t, dp < dq || dp == dq && (prev.parent < r.parent || prev.parent == r.parent && !joliet && ckEcmaLess(string(prev.id), string(r.id)) || prev.parent == r.parent && joliet && bytes.Compare(prev.id, r.id) < 0),
				"path table order: %s before %s", pp, p)
		}
	}
}

// ckCheckGPT checks the primary GPT at sector 1 and the backup at the last
// sector (512-byte sectors): signatures, header and entry array CRCs, the
// location fields, and one EFI System Partition over [start, start+count).
func ckCheckGPT(t *testing.T, iso string, secs, start, count int64) {
	t.Helper()
	f, err := os.Open(iso)
	require.NoError(t, err)
	defer f.Close()
	read := func(sector, n int64) []byte {
		b := make([]byte, n*512)
		_, err := f.ReadAt(b, sector*512)
		require.NoError(t, err)
		return b
	}
	var entries [][]byte
	for _, h := range []struct{ my, alt int64 }{{1, secs - 1}, {secs - 1, 1}} {
		hdr := read(h.my, 1)
		require.Equal(t, "EFI PART", string(hdr[:8]), "GPT header at sector %d", h.my)
		size := ckLE32(hdr[12:])
		require.Equal(t, uint32(92), size)
		crc := ckLE32(hdr[16:])
		c := append([]byte{}, hdr[:size]...)
		clear(c[16:20])
		assert.Equal(t, crc32.ChecksumIEEE(c), crc, "GPT header CRC at sector %d", h.my)
		assert.Equal(t, uint64(h.my), binary.LittleEndian.Uint64(hdr[24:]), "my LBA")
		assert.Equal(t, uint64(h.alt), binary.LittleEndian.Uint64(hdr[32:]), "alternate LBA")
		first, last := binary.LittleEndian.Uint64(hdr[40:]), binary.LittleEndian.Uint64(hdr[48:])
		table := int64(binary.LittleEndian.Uint64(hdr[72:]))
		n, esize := int64(ckLE32(hdr[80:])), int64(ckLE32(hdr[84:]))
		require.Equal(t, int64(128), esize)
		arr := read(table, n*esize/512)
		assert.Equal(t, crc32.ChecksumIEEE(arr), ckLE32(hdr[88:]), "GPT entry array CRC (header at %d)", h.my)
		if h.my == 1 {
			assert.LessOrEqual(t, table+n*esize/512, int64(first), "entries before the first usable sector")
		} else {
			assert.Greater(t, table, int64(last), "backup entries after the last usable sector")
		}
		assert.LessOrEqual(t, uint64(start+count-1), last)
		assert.GreaterOrEqual(t, uint64(start), first)
		entries = append(entries, arr)
	}
	assert.Equal(t, entries[0], entries[1], "backup entry array")
	e := entries[0]
	assert.Equal(t, ckGuidOnDisk("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"), e[:16], "ESP type GUID")
	assert.NotEqual(t, make([]byte, 16), e[16:32], "partition GUID")
	assert.Equal(t, uint64(start), binary.LittleEndian.Uint64(e[32:]))
	assert.Equal(t, uint64(start+count-1), binary.LittleEndian.Uint64(e[40:]))
	assert.Equal(t, make([]byte, 128*127), e[128:128*128], "one partition only")
}

// ckGuidOnDisk converts a GUID's text form to its on-disk bytes (the first
// three fields little-endian).
func ckGuidOnDisk(s string) []byte {
	h, _ := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	return []byte{h[3], h[2], h[1], h[0], h[5], h[4], h[7], h[6], h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]}
}
