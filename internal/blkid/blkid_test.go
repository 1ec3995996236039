package blkid

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/imagegen/fat"
	"github.com/nixlive/nixlive/imagegen/iso9660"
)

// guarded is a ReaderAt that fails the test when read past ProbeSize.
type guarded struct {
	t    testing.TB
	data []byte
}

func (g guarded) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > ProbeSize {
		g.t.Fatalf("read of %d bytes at %d, beyond the first %d", len(p), off, ProbeSize)
	}
	return bytes.NewReader(g.data).ReadAt(p, off)
}

// probeFile probes an image file through the guard.
func probeFile(t *testing.T, file string) FS {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	head := make([]byte, ProbeSize)
	n, err := io.ReadFull(f, head)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		require.NoError(t, err)
	}
	fs, err := Probe(guarded{t, head[:n]})
	require.NoError(t, err)
	return fs
}

// blkid is what util-linux's blkid finds in a file (the oracle), or
// nothing if it is not installed.
func blkid(t *testing.T, file string) (FS, bool) {
	t.Helper()
	bin, err := exec.LookPath("blkid")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/blkid"); err != nil {
			return FS{}, false
		}
	}
	out, err := exec.Command(bin, "-p", "-o", "export", file).Output()
	require.NoError(t, err, "blkid -p %s", file)
	var fs FS
	for _, l := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(l, "=")
		v = strings.ReplaceAll(v, `\ `, " ")
		switch k {
		case "TYPE":
			fs.Type = v
		case "LABEL":
			fs.Label = v
		case "UUID":
			fs.UUID = v
		}
	}
	return fs, true
}

// check probes file, compares with want and with blkid.
func check(t *testing.T, file string, want FS) {
	t.Helper()
	got := probeFile(t, file)
	assert.Equal(t, want, got, file)
	if b, ok := blkid(t, file); ok {
		assert.Equal(t, b, got, "blkid on %s", file)
	}
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err := exec.LookPath("/usr/sbin/" + tool); err != nil {
				t.Skipf("%s not found: make test installs it", tool)
			}
		}
	}
}

func run(t *testing.T, env []string, name string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		name = "/usr/sbin/" + name
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %v: %s", name, args, out)
}

func sampleDir(t *testing.T) string {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hello"), []byte("hello\n"), 0o644))
	return dir
}

func TestProbeXorriso(t *testing.T) {
	need(t, "xorriso")
	dir, src := t.TempDir(), sampleDir(t)
	iso := filepath.Join(dir, "a.iso")
	run(t, []string{"SOURCE_DATE_EPOCH=1704067200"}, "xorriso", "-as", "mkisofs", "-V", "lowercase-label-x86_64",
		"-J", "-r", "-o", iso, src)
	check(t, iso, FS{Type: "iso9660", Label: "lowercase-label-x86_64", UUID: "2024-01-01-00-00-00-00"})

	f, err := os.Open(iso)
	require.NoError(t, err)
	label, ok := ISOLabel(f)
	f.Close()
	assert.True(t, ok)
	assert.Equal(t, "lowercase-label-x86_64", label)

	// The UUID comes from the modification date, or the creation date
	// when that is unset (blkid's rule).
	patch := func(off int, b string) {
		f, err := os.OpenFile(iso, os.O_WRONLY, 0)
		require.NoError(t, err)
		_, err = f.WriteAt([]byte(b), int64(off))
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
	patch(pvdOffset+813, "2023050607080910")
	check(t, iso, FS{Type: "iso9660", Label: "lowercase-label-x86_64", UUID: "2024-01-01-00-00-00-00"})
	patch(pvdOffset+830, "0000000000000000\x00")
	check(t, iso, FS{Type: "iso9660", Label: "lowercase-label-x86_64", UUID: "2023-05-06-07-08-09-10"})
	patch(pvdOffset+830, "0000000000000000\x04") // set, with a time zone
	check(t, iso, FS{Type: "iso9660", Label: "lowercase-label-x86_64", UUID: "0000-00-00-00-00-00-00"})

	// An isohybrid image (NixOS's layout) has an MBR too; it is still an ISO.
	const isolinux, mbr = "/usr/lib/ISOLINUX/isolinux.bin", "/usr/lib/ISOLINUX/isohdpfx.bin"
	if _, err := os.Stat(isolinux); err != nil {
		t.Skipf("%s not found: install isolinux (make test does)", isolinux)
	}
	data, err := os.ReadFile(isolinux)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(src, "isolinux"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "isolinux/isolinux.bin"), data, 0o644))
	hy := filepath.Join(dir, "hybrid.iso")
	run(t, []string{"SOURCE_DATE_EPOCH=315532800"}, "xorriso", "-as", "mkisofs", "-iso-level", "3", "-V", "nixos-25.05-x86_64",
		"-J", "-r", "-eltorito-boot", "isolinux/isolinux.bin", "-eltorito-catalog", ".boot.cat", "-no-emul-boot",
		"-boot-load-size", "4", "-boot-info-table", "-isohybrid-mbr", mbr, "-o", hy, src)
	check(t, hy, FS{Type: "iso9660", Label: "nixos-25.05-x86_64", UUID: "1980-01-01-00-00-00-00"})
	assertMBR(t, hy)
}

// assertMBR checks that an image starts with an MBR, as isohybrid ones do.
func assertMBR(t *testing.T, file string) {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	sig := make([]byte, 2)
	_, err = f.ReadAt(sig, 510)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x55, 0xAA}, sig, "%s has no MBR", file)
}

func TestProbeOurISO(t *testing.T) {
	date := time.Date(2025, 6, 1, 12, 34, 56, 0, time.UTC)
	for _, id := range []string{"nixos-minimal-25.05-x86_64", "nixos-gnome-25.05.20250601-x86_6", "A", "trailing  "} {
		iso := filepath.Join(t.TempDir(), "our.iso")
		writeISO(t, iso, iso9660.Options{VolumeID: id, ModTime: date}, nil)
		check(t, iso, FS{Type: "iso9660", Label: strings.TrimRight(id, " "), UUID: "2025-06-01-12-34-56-00"})
	}

	// An isohybrid image for UEFI: an MBR and a GPT, and a FAT image inside.
	var efi bytes.Buffer
	_, err := fat.Build(&efi, nil, fat.Options{VolumeLabel: "EFIBOOT", VolumeID: 1})
	require.NoError(t, err)
	iso := filepath.Join(t.TempDir(), "hybrid.iso")
	writeISO(t, iso, iso9660.Options{VolumeID: "nixos-25.05-x86_64", ModTime: date,
		Boot:   []iso9660.BootEntry{{Platform: iso9660.EFI, Path: "boot/efi.img"}},
		Hybrid: &iso9660.Hybrid{GPT: true}}, map[string][]byte{"boot/efi.img": efi.Bytes()})
	check(t, iso, FS{Type: "iso9660", Label: "nixos-25.05-x86_64", UUID: "2025-06-01-12-34-56-00"})
	assertMBR(t, iso)
}

func writeISO(t *testing.T, file string, opts iso9660.Options, files map[string][]byte) {
	t.Helper()
	f, err := os.Create(file)
	require.NoError(t, err)
	defer f.Close()
	w, err := iso9660.NewWriter(f, opts)
	require.NoError(t, err)
	if files == nil {
		files = map[string][]byte{"f": []byte("f\n")}
	}
	for name, data := range files {
		require.NoError(t, w.WriteHeader(&iso9660.Header{Name: name, Mode: 0o644, Size: int64(len(data))}))
		_, err = w.Write(data)
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
}

func TestProbeExt(t *testing.T) {
	need(t, "mkfs.ext4")
	for _, typ := range []string{"ext2", "ext3", "ext4"} {
		img := filepath.Join(t.TempDir(), typ+".img")
		require.NoError(t, os.WriteFile(img, nil, 0o644))
		require.NoError(t, os.Truncate(img, 4<<20))
		run(t, nil, "mkfs."+typ, "-q", "-F", "-L", "Nix Root-"+typ, "-U", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", img)
		check(t, img, FS{Type: typ, Label: "Nix Root-" + typ, UUID: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"})
	}
}

func TestProbeVfat(t *testing.T) {
	need(t, "mkfs.vfat")
	for _, bits := range []string{"12", "16", "32"} {
		img := filepath.Join(t.TempDir(), "fat"+bits+".img")
		require.NoError(t, os.WriteFile(img, nil, 0o644))
		require.NoError(t, os.Truncate(img, 40<<20))
		run(t, nil, "mkfs.vfat", "-F", bits, "-n", "NIXOS_EFI", "-i", "1234ABCD", img)
		check(t, img, FS{Type: "vfat", Label: "NIXOS_EFI", UUID: "1234-ABCD"})
	}
	img := filepath.Join(t.TempDir(), "nolabel.img")
	run(t, nil, "mkfs.vfat", "-C", "-i", "0000BEEF", img, "1440")
	check(t, img, FS{Type: "vfat", UUID: "0000-BEEF"})
}

func TestProbeOurFAT(t *testing.T) {
	for _, typ := range []fat.Type{fat.FAT12, fat.FAT16, fat.FAT32} {
		img := filepath.Join(t.TempDir(), "efi.img")
		f, err := os.Create(img)
		require.NoError(t, err)
		_, err = fat.Build(f, []fat.File{{Name: "EFI/BOOT/grub.cfg", Size: 3,
			Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("x\n\n")), nil }}},
			fat.Options{VolumeLabel: "NIXOS_EFI", VolumeID: 0xDEADBEEF, Type: typ})
		require.NoError(t, err)
		require.NoError(t, f.Close())
		check(t, img, FS{Type: "vfat", Label: "NIXOS_EFI", UUID: "DEAD-BEEF"})
	}
}

func TestProbeSquashfs(t *testing.T) {
	need(t, "mksquashfs")
	img := filepath.Join(t.TempDir(), "store.squashfs")
	run(t, nil, "mksquashfs", sampleDir(t), img, "-quiet", "-no-progress", "-comp", "gzip")
	check(t, img, FS{Type: "squashfs"})
}

type failing struct{}

func (failing) ReadAt([]byte, int64) (int, error) { return 0, errors.New("EIO") }

func TestProbeOdd(t *testing.T) {
	for _, data := range [][]byte{nil, make([]byte, 100), make([]byte, ProbeSize), bytes.Repeat([]byte{0xFF}, 40000)} {
		fs, err := Probe(guarded{t, data})
		require.NoError(t, err)
		assert.Equal(t, FS{}, fs)
		_, ok := ISOLabel(guarded{t, data})
		assert.False(t, ok)
	}
	_, err := Probe(failing{})
	assert.ErrorContains(t, err, "EIO")
	_, ok := ISOLabel(failing{})
	assert.False(t, ok)

	// An MBR alone (a partitioned disk) is no file system.
	mbr := make([]byte, 512)
	mbr[510], mbr[511] = 0x55, 0xAA
	mbr[0] = 0xEB
	fs, err := Probe(guarded{t, mbr})
	require.NoError(t, err)
	assert.Equal(t, FS{}, fs)
}

// seeds are minimal images of each kind for the fuzzer.
func seeds() [][]byte {
	iso := make([]byte, pvdOffset+2048)
	copy(iso[pvdOffset:], "\x01CD001\x01")
	copy(iso[pvdOffset+40:], fmt.Sprintf("%-32s", "nixos"))
	copy(iso[pvdOffset+830:], "2024010100000000\x00")
	ext := make([]byte, 2048)
	ext[1024+56], ext[1024+57] = 0x53, 0xEF
	copy(ext[1024+120:], "root")
	vfat := make([]byte, 512)
	copy(vfat, "\xEB\x3C\x90mkfs.fat\x00\x02\x04\x01\x00\x02\x00\x02\x00\x50\xF8\x01\x00")
	vfat[38] = 0x29
	copy(vfat[43:], "NIXOS_EFI  FAT12   ")
	vfat[510], vfat[511] = 0x55, 0xAA
	return [][]byte{iso, ext, vfat, []byte("hsqs")}
}

// FuzzProbe fuzzes the two places Probe reads, the head of the device and
// the sector at 32 KiB, as two small inputs: one 34 KiB input would be
// slow to mutate and minimize.
func FuzzProbe(f *testing.F) {
	for _, s := range seeds() {
		if len(s) > pvdOffset {
			f.Add(s[:pvdOffset/8], s[pvdOffset:])
		} else {
			f.Add(s, []byte(nil))
		}
	}
	f.Fuzz(func(t *testing.T, head, pvd []byte) {
		if len(head) > pvdOffset || len(pvd) > ProbeSize-pvdOffset {
			return
		}
		data := head
		if len(pvd) > 0 {
			data = make([]byte, pvdOffset+len(pvd))
			copy(data, head)
			copy(data[pvdOffset:], pvd)
		}
		fs, err := Probe(guarded{t, data})
		require.NoError(t, err)
		label, ok := ISOLabel(guarded{t, data})
		assert.Equal(t, ok, fs.Type == "iso9660")
		if ok {
			assert.Equal(t, fs.Label, label)
		}
	})
}

func TestProbeSeeds(t *testing.T) {
	want := []FS{
		{Type: "iso9660", Label: "nixos", UUID: "2024-01-01-00-00-00-00"},
		{Type: "ext2", Label: "root", UUID: "00000000-0000-0000-0000-000000000000"},
		{Type: "vfat", Label: "NIXOS_EFI", UUID: "0000-0000"},
		{Type: "squashfs"},
	}
	for i, s := range seeds() {
		fs, err := Probe(guarded{t, s})
		require.NoError(t, err)
		assert.Equal(t, want[i], fs)
	}
}
