package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/imagegen"
	"github.com/nixlive/nixlive/internal/boottest/nixtest"
	"github.com/nixlive/nixlive/internal/boottest/testinit"
	"github.com/nixlive/nixlive/internal/boottest/vmtest"
	"github.com/nixlive/nixlive/live"
)

// testVolumeID is a NixOS-style label: lower case, which the ISO and the
// kernel line must keep byte for byte.
const testVolumeID = "nixos-minimal-25.05-x86_64"

// testParam is a kernelParams value every kernel line must carry.
const testParam = "nixlive.test=param-42"

// haveISOTools skips the test unless the bootloader files imagegen build
// copies (Debian's signed EFI loaders among them), grub-mkimage and the given reader tools are installed.
func haveISOTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, f := range []string{
		filepath.Join(imagegen.IsolinuxDir, "isolinux.bin"),
		filepath.Join(imagegen.IsolinuxDir, "isohdpfx.bin"),
		filepath.Join(imagegen.SyslinuxBIOS, "ldlinux.c32"),
		filepath.Join(imagegen.GrubEFIModDir, "linux.mod"),
		imagegen.DefaultEFIFiles.Shim, imagegen.DefaultEFIFiles.MokManager,
		imagegen.DefaultEFIFiles.Grub, imagegen.DefaultEFIFiles.SystemdBoot,
	} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("bootloader file missing (install isolinux, syslinux-common, grub-efi-amd64-bin, shim-signed, grub-efi-amd64-signed, systemd-boot-efi; make test does): %v", err)
		}
	}
	for _, tool := range append([]string{"grub-mkimage"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found (make test installs it)", tool)
		}
	}
}

// isoContent is one entry of a spec's contents, with what the ISO must
// hold for it.
type isoContent struct {
	source, target string // target as written in the spec
	path           string // the cleaned path on the ISO
	data           []byte
	exec           bool
}

// isoInputs is what a spec points at: a hand-made store (its paths get
// made-up hashes; the closure is found by scanning, which needs no Nix)
// and host files outside the store.
//
// The store holds "extra" (the storeContents root: a program, a symlink,
// a 300 KB file), "system" (a directory with init, which refers to extra
// and to "lib"), "lib", and "unrelated", which nothing refers to.
type isoInputs struct {
	storeRoot string
	system    string
	extra     string
	lib       string
	unrelated string
	closure   []string // sorted
	dir       string   // host inputs outside the store
	kernel    string
	initrd    string
	contents  []isoContent
}

// isoLongName is a file name of n bytes (Rock Ridge keeps it whole; Joliet
// cuts names at 64 UCS-2 characters).
func isoLongName(prefix string, n int) string {
	return prefix + strings.Repeat("x", n-len(prefix))
}

// newISOInputs makes the store and the host inputs. kernel and initrd are
// used as given, or made up when empty.
func newISOInputs(t *testing.T, kernel, initrd string) *isoInputs {
	t.Helper()
	in := &isoInputs{storeRoot: tempDir(t), dir: t.TempDir()}
	host := func(p string) string { return filepath.Join(in.storeRoot, p) }
	in.lib = fakePath('3', "lib")
	in.extra = fakePath('5', "extra")
	in.system = fakePath('7', "nixos-system-test")
	in.unrelated = fakePath('9', "unrelated")
	mustMkdir(t, host(in.lib), host(in.extra)+"/bin", host(in.extra)+"/share", host(in.system), host(in.unrelated))
	mustWrite(t, host(in.lib)+"/libfoo.so", blob(40<<10), 0o644)
	mustWrite(t, host(in.extra)+"/bin/hello", []byte("#!/bin/sh\necho hello\n"), 0o755)
	mustWrite(t, host(in.extra)+"/share/data", blob(300<<10), 0o644)
	if err := os.Symlink("../bin/hello", host(in.extra)+"/share/hello"); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, host(in.system)+"/init", []byte("#!/bin/sh\n# uses "+in.lib+"/libfoo.so\nexec "+in.extra+"/bin/hello\n"), 0o755)
	mustWrite(t, host(in.system)+"/nixos-version", []byte("25.05-test\n"), 0o644)
	mustWrite(t, host(in.unrelated)+"/file", []byte("nobody refers to me\n"), 0o644)
	in.closure = []string{in.lib, in.extra, in.system}
	slices.Sort(in.closure)

	in.kernel, in.initrd = kernel, initrd
	if in.kernel == "" {
		in.kernel = filepath.Join(in.dir, "bzImage")
		mustWrite(t, in.kernel, blob(200<<10), 0o644)
	}
	if in.initrd == "" {
		in.initrd = filepath.Join(in.dir, "initrd")
		mustWrite(t, in.initrd, blob(50<<10), 0o644)
	}

	src := filepath.Join(in.dir, "src")
	mustMkdir(t, src)
	long1 := isoLongName("a-long-file-name-that-rock-ridge-keeps-whole-", 200)
	add := func(name, target string, data []byte, exec bool) {
		p := filepath.Join(src, name)
		if data == nil {
			data = []byte{} // nil would mean "made by the build" to expectedTree
		}
		perm := os.FileMode(0o644)
		if exec {
			perm = 0o755
		}
		mustWrite(t, p, data, perm)
		clean := strings.TrimPrefix(path.Clean("/"+target), "/")
		in.contents = append(in.contents, isoContent{source: p, target: target, path: clean, data: data, exec: exec})
	}
	add("readme", "/docs/README.md", []byte("# the live CD\n"), false)
	add("long1", "docs/"+long1, blob(5000), false)
	// Two long names that Joliet's 64 characters cannot tell apart.
	add("long2", "docs/"+isoLongName("joliet-cuts-this-name-at-sixty-four-characters-", 100)+"-1", []byte("one\n"), false)
	add("long3", "docs/"+isoLongName("joliet-cuts-this-name-at-sixty-four-characters-", 100)+"-2", []byte("two\n"), false)
	// Names that ISO 9660's upper-case 8.3 names cannot tell apart.
	add("case1", "docs/Case.txt", []byte("upper\n"), false)
	add("case2", "docs/case.txt", []byte("lower\n"), false)
	add("space", "docs/with space ü.txt", []byte("unicode\n"), false)
	add("empty", "docs/empty", nil, false)
	add("run", "tools/run.sh", []byte("#!/bin/sh\necho run\n"), true)
	add("deep", "a/b/c/d/e/f/g/h/i/deep.txt", []byte("nine directories down\n"), false)
	add("multi", "tools/several.dots.in.name.tar.gz", blob(70<<10), false)
	// A host symlink as source: its target's content goes on the ISO.
	if err := os.Symlink("readme", filepath.Join(src, "link-to-readme")); err != nil {
		t.Fatal(err)
	}
	in.contents = append(in.contents, isoContent{source: filepath.Join(src, "link-to-readme"), target: "docs/via-link.md",
		path: "docs/via-link.md", data: []byte("# the live CD\n")})
	return in
}

// spec is the JSON spec of an ISO of in: the closure of extra and the
// system, BIOS + EFI + USB, a one-second menu.
func (in *isoInputs) spec() map[string]any {
	var contents []map[string]any
	for _, c := range in.contents {
		contents = append(contents, map[string]any{"source": c.source, "target": c.target})
	}
	return map[string]any{
		"isoName":       "nixos-test.iso",
		"volumeID":      testVolumeID,
		"system":        in.system,
		"kernel":        in.kernel,
		"initrd":        in.initrd,
		"kernelParams":  []string{"loglevel=4", testParam},
		"storeContents": []string{in.extra},
		"contents":      contents,
		"boot":          map[string]any{"timeout": 1},
		// Lower than NixOS's 19, which would cost seconds per build.
		"squashfsCompression": "zstd -Xcompression-level 3",
		"sourceDateEpoch":     testEpoch,
	}
}

// writeISOSpec writes spec as JSON into a new file in a fresh directory.
func writeISOSpec(t *testing.T, spec map[string]any) string {
	t.Helper()
	data, err := json.MarshalIndent(spec, "", "  ")
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "spec.json")
	mustWrite(t, p, data, 0o644)
	return p
}

// isoBuildOpts vary how the CLI is run.
type isoBuildOpts struct {
	dir string   // working directory
	env []string // added to the environment
}

// buildISO runs `imagegen build SPEC -o out --store-root ...` (the binary)
// and fails the test unless it succeeds. TMPDIR is a fresh directory that
// must be empty again afterwards. It returns stdout.
func (in *isoInputs) buildISO(t *testing.T, spec map[string]any, out string, o isoBuildOpts) string {
	t.Helper()
	return buildISOSpecFile(t, writeISOSpec(t, spec), out, in.storeRoot, o)
}

func buildISOSpecFile(t *testing.T, specFile, out, storeRoot string, o isoBuildOpts) string {
	t.Helper()
	tmp := t.TempDir()
	env := append([]string{"TMPDIR=" + tmp}, o.env...)
	res := runCLI(t, cliOpts{dir: o.dir, env: env}, "build", specFile, "-o", out, "--store-root", storeRoot)
	if res.code != 0 {
		t.Fatalf("imagegen build: exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	assertEmptyDir(t, tmp)
	return res.stdout
}

// isoTool runs a tool and returns its stdout, failing the test if it fails.
func isoTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC", "MTOOLS_SKIP_CHECK=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// isoExtractAll extracts the whole ISO into a new directory.
func isoExtractAll(t *testing.T, iso string) string {
	t.Helper()
	dir := filepath.Join(tempDir(t), "iso")
	isoTool(t, "osirrox", "-indev", iso, "-extract", "/", dir)
	return dir
}

// xorrisoInfo is what xorriso's -report_el_torito and -report_system_area
// say, as numbers.
type xorrisoInfo struct {
	raw        string
	catalogLBA int64
	catalog    string           // the catalog's path
	boot       []xorrisoBoot    // El Torito images
	sectors512 int64            // ISO image size/512
	summary    string           // System area summary
	mbr        []xorrisoPart    // MBR partition table
	gpt        map[int64][2]int // GPT: index -> start, size (512-byte sectors)
	gptPath    map[int64]string
	gptType    map[int64]string
	gptRange   [3]int64 // first usable, last usable, last sector
}

type xorrisoBoot struct {
	platform string
	bootable bool
	loadSize int64 // 512-byte sectors
	lba      int64
	path     string
	opts     string
}

type xorrisoPart struct {
	status, typ  string
	start, count int64
}

func isoAtoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 0, 64)
	require.NoError(t, err, "number %q", s)
	return n
}

// xorrisoReport runs xorriso on iso and parses its reports.
func xorrisoReport(t *testing.T, iso string) xorrisoInfo {
	t.Helper()
	out := isoTool(t, "xorriso", "-indev", iso, "-report_el_torito", "plain", "-report_system_area", "plain")
	x := xorrisoInfo{raw: out, gpt: map[int64][2]int{}, gptPath: map[int64]string{}, gptType: map[int64]string{}}
	for _, line := range strings.Split(out, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key, f := strings.TrimSpace(key), strings.Fields(val)
		switch {
		case key == "El Torito catalog" && len(f) >= 1:
			x.catalogLBA = isoAtoi(t, f[0])
		case key == "El Torito cat path":
			x.catalog = strings.TrimSpace(val)
		case key == "El Torito boot img" && len(f) == 8:
			x.boot = append(x.boot, xorrisoBoot{platform: f[1], bootable: f[2] == "y", loadSize: isoAtoi(t, f[6]), lba: isoAtoi(t, f[7])})
		case key == "El Torito img path" && len(f) == 2:
			if i := isoAtoi(t, f[0]) - 1; int(i) < len(x.boot) {
				x.boot[i].path = f[1]
			}
		case key == "El Torito img opts" && len(f) >= 1:
			if i := isoAtoi(t, f[0]) - 1; int(i) < len(x.boot) {
				x.boot[i].opts = strings.Join(f[1:], " ")
			}
		case key == "ISO image size/512":
			x.sectors512 = isoAtoi(t, f[0])
		case key == "System area summary":
			x.summary = strings.TrimSpace(val)
		case key == "MBR partition" && len(f) == 5:
			x.mbr = append(x.mbr, xorrisoPart{status: f[1], typ: f[2], start: isoAtoi(t, f[3]), count: isoAtoi(t, f[4])})
		case key == "GPT start and size" && len(f) == 3:
			x.gpt[isoAtoi(t, f[0])] = [2]int{int(isoAtoi(t, f[1])), int(isoAtoi(t, f[2]))}
		case key == "GPT partition path" && len(f) == 2:
			x.gptPath[isoAtoi(t, f[0])] = f[1]
		case key == "GPT type GUID" && len(f) == 2:
			x.gptType[isoAtoi(t, f[0])] = f[1]
		case key == "GPT lba range" && len(f) == 3:
			x.gptRange = [3]int64{isoAtoi(t, f[0]), isoAtoi(t, f[1]), isoAtoi(t, f[2])}
		}
	}
	return x
}

// isoinfoEntry is one line of `isoinfo -l`.
type isoinfoEntry struct {
	mode    string
	size    int64
	lba     int64
	link    string
	extents [][2]int64 // LBA, size: a file over 4 GiB has several
}

var isoinfoLine = regexp.MustCompile(`^([-dl][-rwxsStT]{9}) +\d+ +\d+ +\d+ +(\d+) [A-Z][a-z]{2} [ 0-9]\d \d{4} \[ *(\d+) [0-9A-F]+\]? +(.*?) ?$`)

// lsModeToGo turns ls's mode string into fs.FileMode's.
func lsModeToGo(ls string) string {
	if strings.HasPrefix(ls, "l") {
		return "L" + ls[1:]
	}
	return ls
}

// isoinfoListing lists iso with `isoinfo <flag> -l` (-R: Rock Ridge, -J:
// Joliet), by path. The extents of a multi-extent file add up.
func isoinfoListing(t *testing.T, iso, flag string) map[string]isoinfoEntry {
	t.Helper()
	out := isoTool(t, "isoinfo", flag, "-l", "-i", iso)
	entries := map[string]isoinfoEntry{}
	dir := ""
	for _, line := range strings.Split(out, "\n") {
		if d, ok := strings.CutPrefix(line, "Directory listing of /"); ok {
			dir = strings.TrimSuffix(d, "/")
			continue
		}
		m := isoinfoLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name, link := m[4], ""
		if m[1][0] == 'l' {
			name, link, _ = strings.Cut(name, " -> ")
		}
		if flag == "-J" {
			name = strings.TrimSuffix(name, ";1") // Joliet keeps ISO 9660's version
		}
		if name == "." || name == ".." {
			continue
		}
		p := path.Join(dir, name)
		e, seen := entries[p]
		if !seen {
			e = isoinfoEntry{mode: m[1], lba: isoAtoi(t, m[3]), link: link}
		}
		e.size += isoAtoi(t, m[2])
		e.extents = append(e.extents, [2]int64{isoAtoi(t, m[3]), isoAtoi(t, m[2])})
		entries[p] = e
	}
	require.NotEmpty(t, entries, "isoinfo %s -l printed no entries:\n%s", flag, out)
	return entries
}

// isoExpected is a file the ISO must hold, by its path on the ISO.
type isoExpected struct {
	mode fs.FileMode
	data []byte // nil: not compared here (made by the build)
	link string
}

// expectedTree is what the ISO of in.spec() must hold (Rock Ridge view):
// every file with its mode and, for the files taken from the inputs,
// contents. Made files (menus, loaders, efi.img, the store image, the
// catalog, the marker) are listed with data nil.
func (in *isoInputs) expectedTree(t *testing.T, isolinuxLBA int64) map[string]isoExpected {
	t.Helper()
	want := map[string]isoExpected{}
	dirs := func(p string) {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, ok := want[d]; !ok {
				want[d] = isoExpected{mode: fs.ModeDir | 0o755}
			}
		}
	}
	file := func(p string, data []byte, exec bool) {
		mode := fs.FileMode(0o444)
		if exec {
			mode = 0o555
		}
		want[p] = isoExpected{mode: mode, data: data}
		dirs(p)
	}
	for _, c := range in.contents {
		file(c.path, c.data, c.exec)
	}
	file("boot/bzImage", readFile(t, in.kernel), false)
	file("boot/initrd", readFile(t, in.initrd), false)
	isolinux := readFile(t, filepath.Join(imagegen.IsolinuxDir, "isolinux.bin"))
	file("isolinux/isolinux.bin", withBootInfoTable(isolinux, isolinuxLBA), false)
	for _, m := range []string{"ldlinux.c32", "menu.c32", "chain.c32", "libcom32.c32", "libutil.c32"} {
		file("isolinux/"+m, readFile(t, filepath.Join(imagegen.SyslinuxBIOS, m)), false)
	}
	// Debian's shim, signed GRUB and MokManager, as the EFI partition
	// holds them too.
	file("EFI/BOOT/BOOTX64.EFI", readFile(t, imagegen.DefaultEFIFiles.Shim), false)
	file("EFI/BOOT/grubx64.efi", readFile(t, imagegen.DefaultEFIFiles.Grub), false)
	file("EFI/BOOT/mmx64.efi", readFile(t, imagegen.DefaultEFIFiles.MokManager), false)
	for _, made := range []string{"isolinux/isolinux.cfg", "EFI/BOOT/grub.cfg", "boot/grub/grub.cfg", "boot/efi.img", "nix-store.squashfs", live.ImageIDFile, ".boot.cat", "EFI/nixlive-*"} {
		file(made, nil, false)
	}
	want["nix/store"] = isoExpected{mode: fs.ModeDir | 0o555}
	dirs("nix/store")
	want["system"] = isoExpected{mode: fs.ModeSymlink | 0o777, link: in.system}
	want["init"] = isoExpected{mode: fs.ModeSymlink | 0o777, link: in.system + "/init"}
	return want
}

// withBootInfoTable is isolinux.bin as mkisofs -boot-info-table patches it:
// bytes 8-63 hold the primary volume descriptor's sector (16), the file's
// sector and length, the 32-bit sum of the file from byte 64 on, and
// zeros.
func withBootInfoTable(b []byte, lba int64) []byte {
	b = slices.Clone(b)
	var sum uint32
	for i := 64; i+4 <= len(b); i += 4 {
		sum += binary.LittleEndian.Uint32(b[i:])
	}
	clear(b[8:64])
	binary.LittleEndian.PutUint32(b[8:], 16)
	binary.LittleEndian.PutUint32(b[12:], uint32(lba))
	binary.LittleEndian.PutUint32(b[16:], uint32(len(b)))
	binary.LittleEndian.PutUint32(b[20:], sum)
	return b
}

// resolveISOMarker replaces the "EFI/nixlive-*" key of want with the one
// matching name in got, which must be unique.
func resolveISOMarker[V any](t *testing.T, want map[string]isoExpected, got map[string]V) {
	t.Helper()
	var found []string
	for p := range got {
		if ok, _ := path.Match("EFI/nixlive-*", p); ok {
			found = append(found, p)
		}
	}
	if assert.Len(t, found, 1, "the EFI loader's marker file") {
		want[found[0]] = want["EFI/nixlive-*"]
	}
	delete(want, "EFI/nixlive-*")
}

// TestBuildReaders builds an ISO from a spec with varied contents and
// checks it with readers that share no code with imagegen:
//
//   - xorriso's El Torito report: a BIOS entry (isolinux.bin, 4 sectors,
//     boot-info-table) and a UEFI entry (/boot/efi.img, its whole size),
//     the catalog where the volume descriptor says;
//   - xorriso's system area report: an isohybrid MBR whose boot code is
//     isohdpfx.bin, a partition over the image and an EFI (0xEF) partition
//     on efi.img, and a GPT whose EFI system partition is efi.img, with
//     the backup at the image's end;
//   - isoinfo -d: the volume ID byte for byte, Rock Ridge, Joliet;
//   - isoinfo -R -l and osirrox -extract + diff -r: exactly the expected
//     files, with their modes (0444, 0555 for executables, 0555 for
//     /nix/store), contents, symlink targets (/system, /init), long and
//     case-different names, and every date at sourceDateEpoch; the LBAs
//     isoinfo gives agree with the El Torito and partition entries;
//     isolinux.bin carries a correct boot info table;
//   - isoinfo -J -l: Joliet has every file too, long names made unique;
//   - fsck.fat -n on efi.img is clean, and mdir/mcopy find
//     EFI/BOOT/BOOTX64.EFI and grub.cfg in it, equal to the ISO's copies;
//   - imagegen inspect agrees with xorriso on the volume ID, the El Torito
//     entries (platform, load size, sector, path), the MBR and the GPT.
func TestBuildReaders(t *testing.T) {
	t.Parallel()
	haveISOTools(t, "xorriso", "osirrox", "isoinfo", "fsck.fat", "mdir", "mcopy", "diff")
	in := newISOInputs(t, "", "")
	iso := filepath.Join(t.TempDir(), "out.iso")
	in.buildISO(t, in.spec(), iso, isoBuildOpts{})
	fi, err := os.Stat(iso)
	require.NoError(t, err)
	isoSize := fi.Size()
	require.Zero(t, isoSize%2048, "ISO size %d is not a whole number of 2048-byte sectors", isoSize)

	rr := isoinfoListing(t, iso, "-R")
	x := xorrisoReport(t, iso)
	t.Logf("xorriso:\n%s", x.raw)

	t.Run("ElTorito", func(t *testing.T) {
		require.Len(t, x.boot, 2, "El Torito images")
		bios, efi := x.boot[0], x.boot[1]
		assert.Equal(t, "BIOS", bios.platform)
		assert.True(t, bios.bootable)
		assert.Equal(t, int64(4), bios.loadSize, "BIOS load size (-boot-load-size 4)")
		assert.Equal(t, "/isolinux/isolinux.bin", bios.path)
		assert.Contains(t, bios.opts, "boot-info-table")
		assert.Equal(t, rr["isolinux/isolinux.bin"].lba, bios.lba, "BIOS image LBA vs isoinfo")
		assert.Equal(t, "UEFI", efi.platform)
		assert.True(t, efi.bootable)
		assert.Equal(t, "/boot/efi.img", efi.path)
		assert.Equal(t, rr["boot/efi.img"].lba, efi.lba, "UEFI image LBA vs isoinfo")
		assert.Equal(t, (rr["boot/efi.img"].size+511)/512, efi.loadSize, "UEFI load size: all of efi.img")
		require.NotEmpty(t, x.catalog, "xorriso names the catalog's file")
		cat, ok := rr[strings.TrimPrefix(x.catalog, "/")]
		if assert.True(t, ok, "catalog %s is a file on the ISO", x.catalog) {
			assert.Equal(t, x.catalogLBA, cat.lba, "catalog LBA vs isoinfo")
		}
	})

	t.Run("SystemArea", func(t *testing.T) {
		assert.Contains(t, x.summary, "MBR")
		assert.Contains(t, x.summary, "isohybrid")
		assert.Contains(t, x.summary, "GPT")
		assert.Equal(t, isoSize/512, x.sectors512, "ISO image size/512")
		efi := rr["boot/efi.img"]
		efiStart, efiCount := efi.lba*4, (efi.size+511)/512
		// isohybrid: a partition from sector 0 over the image, active, and
		// the EFI system partition on efi.img.
		if assert.Len(t, x.mbr, 2, "MBR partitions") {
			assert.Equal(t, xorrisoPart{"0x80", "0x00", 0, isoSize / 512}, x.mbr[0])
			assert.Equal(t, xorrisoPart{"0x00", "0xef", efiStart, efiCount}, x.mbr[1])
		}
		if assert.Len(t, x.gpt, 1, "GPT partitions") {
			assert.Equal(t, [2]int{int(efiStart), int(efiCount)}, x.gpt[1])
			assert.Equal(t, "/boot/efi.img", x.gptPath[1])
			// C12A7328-F81F-11D2-BA4B-00A0C93EC93B as stored on disk.
			assert.Equal(t, "28732ac11ff8d211ba4b00a0c93ec93b", x.gptType[1], "GPT type: EFI system partition")
		}
		assert.Equal(t, isoSize/512-1, x.gptRange[2], "GPT backup header in the last sector")
		assert.LessOrEqual(t, efiStart+efiCount-1, x.gptRange[1], "ESP inside the usable range")
		// The MBR's boot code is isohdpfx.bin's.
		mbr := readFile(t, filepath.Join(imagegen.IsolinuxDir, "isohdpfx.bin"))
		head := isoReadRange(t, iso, 0, 512)
		assert.Equal(t, mbr[:432], head[:432], "MBR boot code")
		assert.Equal(t, []byte{0x55, 0xAA}, head[510:], "MBR signature")
		assert.Equal(t, []byte("EFI PART"), isoReadRange(t, iso, 512, 8), "GPT header in sector 1")
		assert.Equal(t, []byte("EFI PART"), isoReadRange(t, iso, isoSize-512, 8), "backup GPT header in the last sector")
	})

	t.Run("VolumeDescriptor", func(t *testing.T) {
		out := isoTool(t, "isoinfo", "-d", "-i", iso)
		assert.Regexp(t, `(?m)^Volume id: `+regexp.QuoteMeta(testVolumeID)+`$`, out)
		assert.Contains(t, out, "Rock Ridge signatures")
		assert.Contains(t, out, "Joliet with UCS level")
		assert.Regexp(t, fmt.Sprintf(`(?m)^Volume size is: %d$`, isoSize/2048), out)
		pvd := isoTool(t, "xorriso", "-indev", iso, "-pvd_info")
		stamp := time.Unix(testEpoch, 0).UTC().Format("20060102150405") + "00"
		for _, k := range []string{"Creation Time", "Modif. Time"} {
			assert.Regexp(t, `(?m)^`+k+` *: `+stamp, pvd, "%s is sourceDateEpoch", k)
		}
	})

	want := in.expectedTree(t, rr["isolinux/isolinux.bin"].lba)
	resolveISOMarker(t, want, rr)

	t.Run("IsoinfoRockRidge", func(t *testing.T) {
		for p, w := range want {
			g, ok := rr[p]
			if !assert.True(t, ok, "isoinfo -R -l lacks /%s", p) {
				continue
			}
			assert.Equal(t, w.mode.String(), lsModeToGo(g.mode), "/%s: mode", p)
			assert.Equal(t, w.link, g.link, "/%s: symlink target", p)
			if w.data != nil {
				assert.Equal(t, int64(len(w.data)), g.size, "/%s: size", p)
			}
		}
		for p := range rr {
			_, ok := want[p]
			assert.True(t, ok, "isoinfo -R -l lists an unexpected /%s", p)
		}
	})

	t.Run("Joliet", func(t *testing.T) {
		jol := isoinfoListing(t, iso, "-J")
		files := 0
		for p, w := range want {
			if w.mode.IsRegular() {
				files++
				if name := path.Base(p); len(name) <= 64 && !strings.ContainsFunc(name, func(r rune) bool { return r > 0x7e }) {
					_, ok := jol[p]
					assert.True(t, ok, "Joliet lacks /%s", p)
				}
			}
		}
		jfiles := 0
		for _, e := range jol {
			if e.mode[0] == '-' {
				jfiles++
			}
		}
		assert.Equal(t, files, jfiles, "regular files in the Joliet tree (long names must stay distinct)")
	})

	dir := isoExtractAll(t, iso)
	t.Run("OsirroxExtract", func(t *testing.T) {
		got := map[string]fs.FileMode{}
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == dir {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			got[filepath.ToSlash(rel)] = fi.Mode()
			if fi.Mode()&fs.ModeSymlink == 0 {
				assert.Equal(t, int64(testEpoch), fi.ModTime().Unix(), "/%s: mtime", rel)
			}
			return nil
		})
		require.NoError(t, err)
		for p, w := range want {
			g, ok := got[p]
			if !assert.True(t, ok, "extracted tree lacks /%s", p) {
				continue
			}
			assert.Equal(t, w.mode, g, "/%s: mode", p)
		}
		for p := range got {
			_, ok := want[p]
			assert.True(t, ok, "extracted tree has an unexpected /%s", p)
		}
		// diff -r against a tree laid out from the inputs; made files are
		// left out of it (checked elsewhere) and excluded from diff.
		exp := filepath.Join(tempDir(t), "want")
		var exclude []string
		for p, w := range want {
			h := filepath.Join(exp, filepath.FromSlash(p))
			switch {
			case w.mode.IsDir():
				mustMkdir(t, h)
			case w.mode&fs.ModeSymlink != 0:
				mustMkdir(t, filepath.Dir(h))
				require.NoError(t, os.Symlink(w.link, h))
			case w.data == nil:
				exclude = append(exclude, "-x", path.Base(p))
			default:
				mustMkdir(t, filepath.Dir(h))
				mustWrite(t, h, w.data, 0o644)
			}
		}
		args := append(append([]string{"-r", "--no-dereference"}, exclude...), exp, dir)
		out, err := exec.Command("diff", args...).CombinedOutput()
		assert.NoError(t, err, "diff -r the inputs and the extracted ISO:\n%s", out)
	})

	t.Run("EFIImage", func(t *testing.T) {
		img := filepath.Join(dir, "boot", "efi.img")
		out, err := exec.Command("fsck.fat", "-n", img).CombinedOutput()
		assert.NoError(t, err, "fsck.fat -n efi.img:\n%s", out)
		// A clean check prints the version and one summary line, nothing else.
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		assert.Len(t, lines, 2, "fsck.fat -n says more than its summary:\n%s", out)
		assert.Regexp(t, `: \d+ files, \d+/\d+ clusters$`, lines[len(lines)-1])
		t.Logf("fsck.fat -n:\n%s", out)
		ls := isoTool(t, "mdir", "-i", img, "-b", "::/EFI/BOOT")
		names := []string{"BOOTX64.EFI", "grubx64.efi", "mmx64.efi", "grub.cfg"}
		var want []string
		for _, n := range names {
			want = append(want, "::/EFI/BOOT/"+n)
		}
		assert.ElementsMatch(t, want, strings.Fields(ls), "mdir -b ::/EFI/BOOT")
		for _, name := range names {
			got := filepath.Join(t.TempDir(), name)
			isoTool(t, "mcopy", "-n", "-i", img, "::/EFI/BOOT/"+name, got)
			assert.True(t, bytes.Equal(readFile(t, filepath.Join(dir, "EFI", "BOOT", name)), readFile(t, got)),
				"efi.img's EFI/BOOT/%s differs from the ISO's", name)
		}
		loader := readFile(t, filepath.Join(dir, "EFI", "BOOT", "BOOTX64.EFI"))
		assert.Equal(t, []byte("MZ"), loader[:2], "BOOTX64.EFI is a PE file")
	})

	t.Run("Inspect", func(t *testing.T) {
		res := runCLI(t, cliOpts{}, "inspect", iso)
		require.Zero(t, res.code, "imagegen inspect: %s", res.stderr)
		out := res.stdout
		assert.Contains(t, out, fmt.Sprintf("volume ID:   %q", testVolumeID))
		assert.Contains(t, out, fmt.Sprintf("size:        %d sectors", isoSize/2048))
		assert.Contains(t, out, fmt.Sprintf("El Torito:   catalog at sector %d", x.catalogLBA))
		bootRE := regexp.MustCompile(`(?m)^  (\d+) (BIOS|UEFI) +(bootable|not bootable) +load +(\d+) × 512 bytes +sector (\d+) +(\S*)$`)
		var boots []xorrisoBoot
		for _, m := range bootRE.FindAllStringSubmatch(out, -1) {
			boots = append(boots, xorrisoBoot{platform: m[2], bootable: m[3] == "bootable", loadSize: isoAtoi(t, m[4]), lba: isoAtoi(t, m[5]), path: m[6]})
		}
		var xb []xorrisoBoot
		for _, b := range x.boot {
			b.opts = ""
			xb = append(xb, b)
		}
		assert.Equal(t, xb, boots, "El Torito entries: inspect vs xorriso\n%s", out)
		mbrRE := regexp.MustCompile(`(?m)^  (\d+) (active|      ) type 0x([0-9A-F]{2}) start (\d+) +count (\d+)`)
		var parts []xorrisoPart
		for _, m := range mbrRE.FindAllStringSubmatch(out, -1) {
			st := "0x00"
			if m[2] == "active" {
				st = "0x80"
			}
			parts = append(parts, xorrisoPart{st, "0x" + strings.ToLower(m[3]), isoAtoi(t, m[4]), isoAtoi(t, m[5])})
		}
		assert.Equal(t, x.mbr, parts, "MBR: inspect vs xorriso\n%s", out)
		gptRE := regexp.MustCompile(`(?m)^  (\d+) "[^"]*" type ([0-9A-F-]+) start (\d+) end (\d+) (\S*)$`)
		gpt := map[int64][2]int{}
		for _, m := range gptRE.FindAllStringSubmatch(out, -1) {
			start, end := isoAtoi(t, m[3]), isoAtoi(t, m[4])
			gpt[isoAtoi(t, m[1])] = [2]int{int(start), int(end - start + 1)}
			assert.Equal(t, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", m[2], "GPT type")
			assert.Equal(t, x.gptPath[isoAtoi(t, m[1])], m[5], "GPT partition's file")
		}
		assert.Equal(t, x.gpt, gpt, "GPT: inspect vs xorriso\n%s", out)
		// The file list agrees with isoinfo's.
		fileRE := regexp.MustCompile(`(?m)^  ([-dL][-rwx]{9}) +(\d+)  /(.*?)(?: -> (.*))?$`)
		listed := map[string]isoinfoEntry{}
		for _, m := range fileRE.FindAllStringSubmatch(out, -1) {
			listed[m[3]] = isoinfoEntry{mode: m[1], size: isoAtoi(t, m[2]), link: m[4]}
		}
		assert.Len(t, listed, len(rr), "inspect lists as many files as isoinfo -R -l")
		for p, e := range rr {
			l, ok := listed[p]
			if assert.True(t, ok, "inspect lacks /%s", p) && e.mode[0] == '-' {
				assert.Equal(t, e.size, l.size, "/%s: size", p)
			}
		}
	})
}

// isoReadRange reads n bytes of name at off.
func isoReadRange(t *testing.T, name string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(name)
	require.NoError(t, err)
	defer f.Close()
	b := make([]byte, n)
	_, err = f.ReadAt(b, off)
	require.NoError(t, err)
	return b
}

// isoExtractFile extracts one file of iso with osirrox.
func isoExtractFile(t *testing.T, iso, p string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "f")
	isoTool(t, "osirrox", "-indev", iso, "-extract", p, out)
	return readFile(t, out)
}

// menuBlock is one isolinux LABEL or GRUB menuentry.
type menuBlock struct {
	id, label, kernel, initrd, body string
	params                          []string
}

func isolinuxBlocks(cfg string) (head string, blocks []menuBlock) {
	parts := regexp.MustCompile(`(?m)^LABEL `).Split(cfg, -1)
	head = parts[0]
	for _, p := range parts[1:] {
		b := menuBlock{body: p}
		lines := strings.Split(p, "\n")
		b.id = strings.TrimSpace(lines[0])
		for _, l := range lines[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(l), " ")
			switch k {
			case "MENU":
				b.label = strings.TrimPrefix(v, "LABEL ")
			case "LINUX", "KERNEL":
				b.kernel = v
			case "INITRD":
				b.initrd = v
			case "APPEND":
				b.params = strings.Fields(v)
			}
		}
		blocks = append(blocks, b)
	}
	return head, blocks
}

var grubEntryRE = regexp.MustCompile(`(?s)menuentry "([^"]*)" --id (\S+) \{\n(.*?)\n\}`)

func grubBlocks(cfg string) []menuBlock {
	var blocks []menuBlock
	for _, m := range grubEntryRE.FindAllStringSubmatch(cfg, -1) {
		b := menuBlock{label: m[1], id: m[2], body: m[3]}
		for _, l := range strings.Split(m[3], "\n") {
			f := strings.Fields(l)
			switch {
			case len(f) >= 2 && f[0] == "linux":
				b.kernel, b.params = f[1], f[2:]
			case len(f) == 2 && f[0] == "initrd":
				b.initrd = f[1]
			}
		}
		blocks = append(blocks, b)
	}
	return blocks
}

// TestBuildMenus reads isolinux.cfg and grub.cfg off built ISOs: the
// default entry boots the system with init=, root=LABEL=<volumeID>,
// systemConfig= and the kernelParams; copy-to-RAM, serial-console and
// nomodeset entries add their parameter; a "Boot from hard disk" entry
// chains to hd0 (isolinux: chain.c32, which is on the ISO with its
// libraries) or leaves GRUB (exit); the timeout and serial settings follow
// boot.timeout and boot.serialConsole; the GRUB menu the loader reads is
// found from the loader by the marker file.
func TestBuildMenus(t *testing.T) {
	t.Parallel()
	haveISOTools(t, "osirrox", "isoinfo")
	in := newISOInputs(t, "", "")
	for _, tc := range []struct {
		name     string
		boot     map[string]any
		isoTime  string // isolinux TIMEOUT (tenths)
		grubTime string
		sdTime   string // systemd-boot's loader.conf timeout
		serial   bool
	}{
		{"Timeout1", map[string]any{"timeout": 1}, "TIMEOUT 10", "set timeout=1", "1", false},
		{"WaitSerial", map[string]any{"timeout": -1, "serialConsole": true, "label": "Custom Label"}, "TIMEOUT 0", "unset timeout", "menu-force", true},
		{"GrubMkimage", map[string]any{"timeout": 1, "efiLoader": "grub-mkimage"}, "TIMEOUT 10", "set timeout=1", "1", false},
		{"SystemdBoot", map[string]any{"timeout": -1, "efiLoader": "systemd-boot"}, "TIMEOUT 0", "unset timeout", "menu-force", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec := in.spec()
			spec["boot"] = tc.boot
			iso := filepath.Join(t.TempDir(), "out.iso")
			in.buildISO(t, spec, iso, isoBuildOpts{})
			label := "NixOS Live"
			if l, ok := tc.boot["label"].(string); ok {
				label = l
			}
			common := []string{"init=" + in.system + "/init", "root=LABEL=" + testVolumeID, "systemConfig=" + in.system, "loglevel=4", testParam}
			if tc.serial {
				common = append(common, "console=tty0", "console=ttyS0,115200n8")
			}
			entries := []struct{ id, label, extra string }{
				{"live", label, ""},
				{"copytoram", label + " (copy to RAM)", "copytoram"},
				{"serial", label + " (serial console)", "console=ttyS0,115200n8"},
				{"nomodeset", label + " (nomodeset)", "nomodeset"},
			}
			// check checks the entries; all but systemd-boot's menu end
			// with "Boot from hard disk" (systemd-boot has no way back to
			// the firmware's boot order but firmware setup, which it adds).
			check := func(t *testing.T, blocks []menuBlock, hd bool) {
				t.Helper()
				require.GreaterOrEqual(t, len(blocks), len(entries), "menu entries")
				assert.Equal(t, "live", blocks[0].id, "first (default) entry")
				for i, e := range entries {
					b := blocks[i]
					assert.Equal(t, e.id, b.id)
					assert.Equal(t, e.label, b.label, "entry %s: label", e.id)
					assert.Equal(t, "/boot/bzImage", b.kernel, "entry %s: kernel", e.id)
					assert.Equal(t, "/boot/initrd", b.initrd, "entry %s: initrd", e.id)
					want := slices.Clone(common)
					if e.extra != "" {
						want = append(want, e.extra)
					}
					assert.Equal(t, want, b.params, "entry %s: kernel parameters", e.id)
				}
				if !hd {
					assert.Len(t, blocks, len(entries), "no entry after the live ones")
					return
				}
				require.Greater(t, len(blocks), len(entries), "menu entries")
				assert.Equal(t, "Boot from hard disk", blocks[len(entries)].label)
				assert.Empty(t, blocks[len(entries)].kernel, "the hard disk entry boots no kernel")
			}

			cfg := string(isoExtractFile(t, iso, "/isolinux/isolinux.cfg"))
			t.Run("isolinux", func(t *testing.T) {
				head, blocks := isolinuxBlocks(cfg)
				assert.Contains(t, head, "DEFAULT live\n")
				assert.Contains(t, head, tc.isoTime+"\n")
				assert.Regexp(t, `(?m)^UI menu\.c32$`, head)
				assert.Equal(t, tc.serial, strings.Contains(head, "SERIAL 0 115200\n"), "SERIAL directive")
				check(t, blocks, true)
				if len(blocks) > len(entries) {
					hd := blocks[len(entries)]
					assert.Contains(t, hd.body, "COM32 chain.c32")
					assert.Regexp(t, `(?m)^\s*APPEND hd0$`, hd.body)
				}
				// What the menu loads is on the ISO.
				list := isoinfoListing(t, iso, "-R")
				for _, m := range []string{"ldlinux.c32", "menu.c32", "chain.c32", "libcom32.c32", "libutil.c32"} {
					_, ok := list["isolinux/"+m]
					assert.True(t, ok, "/isolinux/%s on the ISO", m)
				}
			})

			loader, _ := tc.boot["efiLoader"].(string)
			if loader == "systemd-boot" {
				t.Run("systemd-boot", func(t *testing.T) {
					checkLoaderEntries(t, iso, tc.sdTime, func(blocks []menuBlock) { check(t, blocks, false) })
				})
				return
			}
			// Debian's signed GRUB reads its menu from /boot/grub; ours has
			// it beside itself.
			menuPath, early := "/boot/grub/grub.cfg", "/EFI/BOOT/grub.cfg"
			if loader == "grub-mkimage" {
				menuPath, early = "/EFI/BOOT/grub.cfg", "/EFI/BOOT/BOOTX64.EFI"
			}
			grub := string(isoExtractFile(t, iso, menuPath))
			t.Run("grub", func(t *testing.T) {
				assert.Contains(t, grub, tc.grubTime+"\n")
				assert.Contains(t, grub, "set default=0\n")
				assert.Equal(t, tc.serial, strings.Contains(grub, "terminal_output console serial"), "serial terminal")
				blocks := grubBlocks(grub)
				check(t, blocks, true)
				if len(blocks) > len(entries) {
					assert.Equal(t, "exit", strings.TrimSpace(blocks[len(entries)].body))
				}
				// The early config (built into our GRUB, or beside Debian's
				// in the EFI partition) finds the ISO by its marker file and
				// reads this menu.
				strs := string(isoExtractFile(t, iso, early))
				m := regexp.MustCompile(`search --no-floppy --set=root --file /(EFI/nixlive-[0-9a-f]+)`).FindStringSubmatch(strs)
				if assert.NotNil(t, m, "the early config searches for a marker file") {
					list := isoinfoListing(t, iso, "-R")
					_, ok := list[m[1]]
					assert.True(t, ok, "marker /%s on the ISO", m[1])
				}
				assert.Contains(t, strs, "configfile ($root)"+menuPath)
			})
		})
	}
}

// checkLoaderEntries reads systemd-boot's menu out of the ISO's EFI image
// with mtools: loader.conf's timeout and default, and the entries in
// their sort-key order, as menu blocks.
func checkLoaderEntries(t *testing.T, iso, timeout string, check func([]menuBlock)) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "efi.img")
	mustWrite(t, img, isoExtractFile(t, iso, "/boot/efi.img"), 0o644)
	conf := isoTool(t, "mtype", "-i", img, "::loader/loader.conf")
	assert.Contains(t, conf, "timeout "+timeout+"\n")
	assert.Contains(t, conf, "default nixlive-live.conf\n")
	names := strings.Fields(isoTool(t, "mdir", "-i", img, "-b", "::loader/entries"))
	var blocks []menuBlock
	for _, n := range names {
		body := isoTool(t, "mtype", "-i", img, n)
		f := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(body), "\n") {
			k, v, _ := strings.Cut(l, " ")
			f[k] = v
		}
		id := strings.TrimSuffix(strings.TrimPrefix(path.Base(n), "nixlive-"), ".conf")
		blocks = append(blocks, menuBlock{id: id, label: f["title"], kernel: f["linux"], initrd: f["initrd"], params: strings.Fields(f["options"]), body: f["sort-key"]})
	}
	slices.SortFunc(blocks, func(a, b menuBlock) int { return strings.Compare(a.body, b.body) })
	check(blocks)
	for _, n := range []string{"::EFI/BOOT/BOOTX64.EFI", "::boot/bzImage", "::boot/initrd"} {
		isoTool(t, "mdir", "-i", img, n) // fails the test if missing
	}
}

// TestBuildBoot boots one ISO (Debian's cloud kernel and the test initrd,
// whose /init prints the kernel command line) four ways under QEMU (TCG),
// in parallel: SeaBIOS from a CD (El Torito, isolinux), SeaBIOS from a
// hard disk (the isohybrid MBR: the USB stick path), OVMF from a CD (the
// El Torito EFI image, GRUB) and OVMF from a hard disk (the GPT's EFI
// system partition). Each must reach the test init through the menu's
// default entry: its kernel line holds init=<system>/init,
// root=LABEL=<volume ID> (lower case, byte-exact), systemConfig=<system>
// and the spec's kernelParams, and not the other entries' extras.
func TestBuildBoot(t *testing.T) {
	t.Parallel()
	haveISOTools(t)
	vmtest.HaveQEMU(t)
	kernel := vmtest.Kernel(t)
	in := newISOInputs(t, kernel, testinit.Initrd(t))
	spec := in.spec()
	spec["kernelParams"] = []string{"quiet", testParam}
	spec["boot"] = map[string]any{"timeout": 1, "serialConsole": true}
	iso := filepath.Join(t.TempDir(), "boot.iso")
	in.buildISO(t, spec, iso, isoBuildOpts{})

	const timeout = 3 * time.Minute
	// Not anchored: the boot loaders' menus end without a newline.
	markerRE := regexp.MustCompile(regexp.QuoteMeta(testinit.Marker) + ` cmdline=(.*)$`)
	var mu sync.Mutex
	var first, last time.Time
	times := map[string]time.Duration{}
	t.Cleanup(func() {
		total := last.Sub(first)
		t.Logf("four boots in %v from the first QEMU start to the last exit (each: %v)", total.Round(100*time.Millisecond), times)
		if total > time.Minute {
			t.Logf("warning: the boots took over a minute")
		}
	})
	for _, tc := range []struct {
		name string
		fw   vmtest.Firmware
		disk bool
	}{
		{"SeaBIOS-CD", vmtest.SeaBIOS, false},
		{"SeaBIOS-disk", vmtest.SeaBIOS, true},
		{"OVMF-CD", vmtest.OVMF, false},
		{"OVMF-disk", vmtest.OVMF, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.fw == vmtest.OVMF {
				vmtest.HaveOVMF(t)
			}
			opts := vmtest.Options{Name: tc.name, Firmware: tc.fw}
			if tc.disk {
				opts.Disks = []vmtest.Disk{{Path: iso, Snapshot: true}}
			} else {
				opts.CDROM = iso
			}
			mu.Lock()
			if first.IsZero() {
				first = time.Now()
			}
			mu.Unlock()
			vm := vmtest.Start(t, opts)
			m := vm.MustExpect(markerRE, timeout)
			params := strings.Fields(m[1])
			for _, p := range []string{"init=" + in.system + "/init", "root=LABEL=" + testVolumeID, "systemConfig=" + in.system, testParam, "quiet"} {
				assert.Contains(t, params, p, "kernel command line")
			}
			for _, p := range []string{"copytoram", "nomodeset"} {
				assert.NotContains(t, params, p, "the default entry's kernel command line")
			}
			vm.MustWait(timeout)
			// The boot loader that took this path said so on the serial
			// console (boot.serialConsole).
			if tc.fw == vmtest.SeaBIOS {
				assert.Contains(t, vm.Console(), "ISOLINUX ", "isolinux's banner")
			} else {
				assert.Contains(t, vm.Console(), "Booting `NixOS Live'", "GRUB booting the default entry")
			}
			mu.Lock()
			times[tc.name] = vm.Elapsed().Round(100 * time.Millisecond)
			last = time.Now()
			mu.Unlock()
		})
	}
}

// TestBuildReproducible builds the same spec twice with the CLI: from
// different working directories (-o relative to each), with different
// TMPDIRs, GOMAXPROCS and host mtimes on every input outside the store
// (kernel, initrd, contents sources, the spec file); the ISOs are byte-
// identical. A different sourceDateEpoch changes the bytes;
// SOURCE_DATE_EPOCH is used when the spec has none (and dates the volume),
// the spec's value wins over it, and 315532800 is the default.
func TestBuildReproducible(t *testing.T) {
	t.Parallel()
	haveISOTools(t, "xorriso")
	in := newISOInputs(t, "", "")
	spec := in.spec()
	delete(spec, "sourceDateEpoch")
	specFile := writeISOSpec(t, spec)
	build := func(t *testing.T, specFile string, env ...string) []byte {
		t.Helper()
		cwd := t.TempDir()
		buildISOSpecFile(t, specFile, "out.iso", in.storeRoot, isoBuildOpts{dir: cwd, env: env})
		return readFile(t, filepath.Join(cwd, "out.iso"))
	}
	first := build(t, specFile, "SOURCE_DATE_EPOCH="+strconv.Itoa(testEpoch))

	inputs := []string{in.kernel, in.initrd, specFile}
	for _, c := range in.contents {
		inputs = append(inputs, c.source)
	}
	for i, p := range inputs {
		require.NoError(t, setMtime(p, time.Unix(1600000000+int64(i)*7777, 0)))
	}
	second := build(t, specFile, "SOURCE_DATE_EPOCH="+strconv.Itoa(testEpoch), "GOMAXPROCS=1")
	assert.True(t, bytes.Equal(first, second), "two builds differ (%s)", isoFirstDiff(first, second))

	spec["sourceDateEpoch"] = testEpoch
	withSpecEpoch := build(t, writeISOSpec(t, spec), "SOURCE_DATE_EPOCH=1500000000")
	assert.True(t, bytes.Equal(first, withSpecEpoch), "spec's sourceDateEpoch must win over SOURCE_DATE_EPOCH (%s)", isoFirstDiff(first, withSpecEpoch))

	other := build(t, specFile, "SOURCE_DATE_EPOCH=1500000000")
	assert.False(t, bytes.Equal(first, other), "a different SOURCE_DATE_EPOCH gives the same bytes")
	spec["sourceDateEpoch"] = testEpoch + 1
	otherSpec := build(t, writeISOSpec(t, spec))
	assert.False(t, bytes.Equal(first, otherSpec), "a different sourceDateEpoch gives the same bytes")

	// The dates are the ones asked for.
	for _, tc := range []struct {
		name  string
		iso   []byte
		epoch int64
	}{
		{"env", other, 1500000000},
		{"spec", otherSpec, testEpoch + 1},
		{"default", build(t, specFile), 315532800},
	} {
		p := filepath.Join(t.TempDir(), "x.iso")
		mustWrite(t, p, tc.iso, 0o644)
		pvd := isoTool(t, "xorriso", "-indev", p, "-pvd_info")
		stamp := time.Unix(tc.epoch, 0).UTC().Format("20060102150405") + "00"
		assert.Regexp(t, `(?m)^Creation Time *: `+stamp, pvd, "%s: volume creation date", tc.name)
	}
}

// isoFirstDiff describes where two byte slices first differ.
func isoFirstDiff(a, b []byte) string {
	if len(a) != len(b) {
		return fmt.Sprintf("sizes %d and %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			return fmt.Sprintf("first difference at byte %d (sector %d)", i, i/2048)
		}
	}
	return "equal"
}

// TestBuildCompressImage builds with compressImage "zstd" and "bzip2" into
// an output directory: the file is <isoName>.zst / .bz2, alone in the
// directory, and zstd -d / bzip2 -d give exactly the ISO built without
// compression.
func TestBuildCompressImage(t *testing.T) {
	t.Parallel()
	haveISOTools(t, "zstd", "bzip2")
	in := newISOInputs(t, "", "")
	plain := filepath.Join(t.TempDir(), "plain.iso")
	in.buildISO(t, in.spec(), plain, isoBuildOpts{})
	want := readFile(t, plain)
	for _, tc := range []struct {
		algo, ext string
		magic     []byte
		decomp    []string
	}{
		{"zstd", ".zst", []byte{0x28, 0xB5, 0x2F, 0xFD}, []string{"zstd", "-d", "-c", "-q"}},
		{"bzip2", ".bz2", []byte("BZh"), []string{"bzip2", "-d", "-c"}},
	} {
		t.Run(tc.algo, func(t *testing.T) {
			t.Parallel()
			spec := in.spec()
			spec["compressImage"] = tc.algo
			out := t.TempDir()
			stdout := in.buildISO(t, spec, out, isoBuildOpts{})
			name := filepath.Join(out, "nixos-test.iso"+tc.ext)
			assert.Contains(t, stdout, name)
			entries, err := os.ReadDir(out)
			require.NoError(t, err)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			require.Equal(t, []string{"nixos-test.iso" + tc.ext}, names, "output directory")
			data := readFile(t, name)
			assert.Equal(t, tc.magic, data[:len(tc.magic)], "%s magic", tc.algo)
			cmd := exec.Command(tc.decomp[0], append(tc.decomp[1:], name)...)
			got, err := cmd.Output()
			require.NoError(t, err, "%s", strings.Join(tc.decomp, " "))
			assert.True(t, bytes.Equal(want, got), "decompressed image differs from the plain build (%s)", isoFirstDiff(want, got))
		})
	}
}

// TestBuildLargeFile puts a sparse file of 4 GiB + 12345 bytes in contents,
// with data at its start, across the boundary of its first extent, across
// 4 GiB and at its end: isoinfo -R -l lists it in extents that add up to
// the exact size and hold the data where the file has it, osirrox -lsl
// shows that size, and osirrox -extract_cut reads its start back.
func TestBuildLargeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 4 GiB ISO: skipped with -short")
	}
	t.Parallel()
	haveISOTools(t, "isoinfo", "osirrox")
	const size = 4<<30 + 12345
	const extentMax = 4<<30 - 2048 // the largest extent that is whole sectors
	dir := t.TempDir()
	var st unix.Statfs_t
	require.NoError(t, unix.Statfs(dir, &st))
	if free := int64(st.Bavail) * int64(st.Bsize); free < size+(1<<30) {
		t.Skipf("%d bytes free in %s: the ISO needs over 4 GiB", free, dir)
	}
	in := newISOInputs(t, "", "")
	big := filepath.Join(in.dir, "big.bin")
	f, err := os.Create(big)
	require.NoError(t, err)
	marks := map[int64]string{0: "HEAD", extentMax - 3: "ACROSS-EXTENTS", 4<<30 - 3: "ACROSS-4GiB", size - 4: "TAIL"}
	for off, s := range marks {
		_, err := f.WriteAt([]byte(s), off)
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
	spec := in.spec()
	spec["contents"] = []map[string]any{{"source": big, "target": "data/big.bin"}}
	spec["boot"] = map[string]any{"bios": false, "usb": false}
	iso := filepath.Join(dir, "big.iso")
	start := time.Now()
	// In-process: on a busy machine, writing 4 GiB can outlast runCLI's
	// one-minute limit.
	mustMain(t, "build", writeISOSpec(t, spec), "-o", iso, "--store-root", in.storeRoot)
	t.Logf("built a %d-byte ISO in %v", size, time.Since(start).Round(time.Millisecond))

	e := isoinfoListing(t, iso, "-R")["data/big.bin"]
	assert.Equal(t, int64(size), e.size, "isoinfo -R -l: size (sum of extents %v)", e.extents)
	assert.Greater(t, len(e.extents), 1, "a file over 4 GiB needs several extents")
	ls := isoTool(t, "osirrox", "-indev", iso, "-lsl", "/data/big.bin")
	assert.Regexp(t, `\s`+strconv.Itoa(size)+`\s`, ls, "osirrox -lsl")

	// Read the ISO where isoinfo says the file's bytes are.
	isoF, err := os.Open(iso)
	require.NoError(t, err)
	defer isoF.Close()
	readAt := func(off, n int64) []byte {
		b := make([]byte, 0, n)
		for _, x := range e.extents {
			if n == 0 {
				break
			}
			for off < x[1] && n > 0 {
				k := min(n, x[1]-off)
				chunk := make([]byte, k)
				_, err := isoF.ReadAt(chunk, x[0]*2048+off)
				require.NoError(t, err)
				b, off, n = append(b, chunk...), off+k, n-k
			}
			off -= x[1]
		}
		return b
	}
	for off, s := range marks {
		lo, hi := max(0, off-5), min(int64(size), off+int64(len(s))+5)
		want := make([]byte, hi-lo)
		copy(want[off-lo:], s)
		assert.Equal(t, want, readAt(lo, hi-lo), "bytes %d to %d (by isoinfo's extents)", lo, hi)
	}
	got := filepath.Join(t.TempDir(), "head")
	isoTool(t, "osirrox", "-indev", iso, "-extract_cut", "/data/big.bin", "0", "9", got)
	assert.Equal(t, []byte("HEAD\x00\x00\x00\x00\x00"), readFile(t, got), "osirrox -extract_cut")
}

// TestBuildStoreImage builds an ISO from a small store made by real Nix
// (nix-store --add, builtins.toFile: Nix recorded the references), with
// the kernel and initrd as store paths too, as NixOS has them, and the
// system a store directory holding init. The nix-store.squashfs taken out
// of the ISO with osirrox holds, by unsquashfs -lln, nix-path-registration
// and exactly the closure Nix gives for storeContents + system (not the
// unrelated path), all owned by root; its registration lists that closure
// and loads into a fresh store that Nix then verifies; and it is the very
// image `imagegen store` writes for the same roots.
func TestBuildStoreImage(t *testing.T) {
	t.Parallel()
	haveISOTools(t, "osirrox", "unsquashfs")
	nixtest.HaveNix(t)
	store := nixtest.NewStore(t)
	src := t.TempDir()
	mustWrite(t, filepath.Join(src, "file.txt"), []byte("some data\n"), 0o644)
	mustWrite(t, filepath.Join(src, "unrelated.txt"), []byte("nobody refers to me\n"), 0o644)
	sys := filepath.Join(src, "system")
	mustMkdir(t, sys)
	mustWrite(t, filepath.Join(sys, "init"), []byte("#!/bin/sh\necho stage 2\n"), 0o755)
	mustWrite(t, filepath.Join(sys, "nixos-version"), []byte("25.05-test\n"), 0o644)
	mustWrite(t, filepath.Join(src, "bzImage"), blob(100<<10), 0o644)
	mustWrite(t, filepath.Join(src, "initrd"), blob(30<<10), 0o644)
	fileP := nixtest.Add(t, store, filepath.Join(src, "file.txt"))
	unrelated := nixtest.Add(t, store, filepath.Join(src, "unrelated.txt"))
	system := nixtest.Add(t, store, sys)
	kernel := nixtest.Add(t, store, filepath.Join(src, "bzImage"))
	initrd := nixtest.Add(t, store, filepath.Join(src, "initrd"))
	c1 := nixtest.ToFile(t, store, "c1", "first "+fileP+"\n")
	c2 := nixtest.ToFile(t, store, "c2", "then "+c1+"\n")
	other := nixtest.ToFile(t, store, "other", "alone\n")
	roots := []string{c2, other}
	closure := requisites(t, store, append(slices.Clone(roots), system)...)
	require.Equal(t, sorted([]string{fileP, c1, c2, other, system}), closure, "fixture: Nix's closure")

	spec := map[string]any{
		"volumeID":        testVolumeID,
		"system":          system,
		"kernel":          kernel,
		"initrd":          initrd,
		"storeContents":   roots,
		"boot":            map[string]any{"timeout": 1},
		"sourceDateEpoch": testEpoch,
	}
	iso := filepath.Join(t.TempDir(), "nix.iso")
	stdout := buildISOSpecFile(t, writeISOSpec(t, spec), iso, store, isoBuildOpts{})
	assert.Contains(t, stdout, fmt.Sprintf("%d store paths", len(closure)))
	sq := filepath.Join(t.TempDir(), "nix-store.squashfs")
	isoTool(t, "osirrox", "-indev", iso, "-extract", "/nix-store.squashfs", sq)

	assert.Equal(t, closure, imagePaths(t, sq), "store paths in the image")
	var top []string
	for _, e := range topLevel(t, sq) {
		top = append(top, e.Path)
		assert.Equal(t, 0, e.Uid, "%s: owner", e.Path)
		assert.Equal(t, 0, e.Gid, "%s: group", e.Path)
	}
	assert.Contains(t, top, live.RegistrationName)
	assert.NotContains(t, top, path.Base(unrelated))
	reg := extract(t, sq, live.RegistrationName)
	assert.Equal(t, closure, recordPaths(parseRegistration(t, reg)), "registration")
	fresh := freshStoreWith(t, store, closure, reg)
	verifyStore(t, fresh)
	assert.Equal(t, closure, requisites(t, fresh, append(slices.Clone(roots), system)...), "closure in the loaded store")

	assert.Equal(t, readFile(t, filepath.Join(store, kernel)), isoExtractFile(t, iso, "/boot/bzImage"), "kernel from the store")
	assert.Equal(t, readFile(t, filepath.Join(store, initrd)), isoExtractFile(t, iso, "/boot/initrd"), "initrd from the store")

	// With Nix's closureInfo of the same roots (its store-paths and
	// --dump-db registration, as NixOS's closureInfo makes them), the
	// same ISO, found without scanning.
	info := t.TempDir()
	mustWrite(t, filepath.Join(info, "store-paths"), []byte(strings.Join(closure, "\n")+"\n"), 0o644)
	mustWrite(t, filepath.Join(info, "registration"), []byte(nixtest.Run(t, store, append([]string{"--dump-db"}, closure...)...)), 0o644)
	withInfo := filepath.Join(t.TempDir(), "info.iso")
	res0 := runCLI(t, cliOpts{}, "build", writeISOSpec(t, spec), "-o", withInfo, "--store-root", store, "--closure-info", info)
	require.Zero(t, res0.code, "imagegen build --closure-info: %s", res0.stderr)
	assert.True(t, bytes.Equal(readFile(t, iso), readFile(t, withInfo)), "the ISO built from Nix's closureInfo differs")
	mustWrite(t, filepath.Join(info, "store-paths"), []byte(strings.Join(closure[1:], "\n")+"\n"), 0o644)
	res0 = runCLI(t, cliOpts{}, "build", writeISOSpec(t, spec), "-o", filepath.Join(t.TempDir(), "x.iso"), "--store-root", store, "--closure-info", info)
	assert.NotZero(t, res0.code, "a closureInfo without one of the roots")

	// The same image as imagegen store makes.
	alone := filepath.Join(t.TempDir(), "alone.squashfs")
	res := runCLI(t, cliOpts{env: []string{"SOURCE_DATE_EPOCH=" + strconv.Itoa(testEpoch)}},
		append([]string{"store", "-o", alone, "--store-root", store}, append(slices.Clone(roots), system)...)...)
	require.Zero(t, res.code, "imagegen store: %s", res.stderr)
	assert.True(t, bytes.Equal(readFile(t, alone), readFile(t, sq)), "the ISO's nix-store.squashfs differs from imagegen store's image")
}
