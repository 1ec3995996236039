package fat

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/testinit"
	"github.com/nixlive/nixlive/internal/boottest/vmtest"
)

// These tests boot QEMU (TCG): the image's real readers are UEFI firmware,
// GRUB and Linux, and the kernel of this machine may lack vfat.

// TestOVMFBootsGRUB boots the image the way it is used: UEFI firmware
// (OVMF's FAT driver) finds and runs /EFI/BOOT/BOOTX64.EFI, a GRUB whose
// built-in configuration finds the image again by a long file name and
// reads /EFI/BOOT/grub.cfg from it (GRUB's FAT driver), which prints a file
// with a long name and powers off.
func TestOVMFBootsGRUB(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU with OVMF (about 5 s under TCG); skipped with -short")
	}
	vmtest.HaveQEMU(t)
	vmtest.HaveOVMF(t)
	if _, err := exec.LookPath("grub-mkstandalone"); err != nil {
		t.Skip("grub-mkstandalone not found (Debian package grub-common; make test installs it)")
	}
	if _, err := os.Stat("/usr/lib/grub/x86_64-efi"); err != nil {
		t.Skipf("GRUB EFI modules missing (Debian package grub-efi-amd64-bin; make test installs it): %v", err)
	}
	tmp := t.TempDir()

	stub := filepath.Join(tmp, "stub.cfg")
	require.NoError(t, os.WriteFile(stub, []byte(`insmod fat
search --no-floppy --set=root --file "/EFI/BOOT/Marker File For GRUB.txt"
configfile /EFI/BOOT/grub.cfg
`), 0o644))
	grub := filepath.Join(tmp, "BOOTX64.EFI")
	out, err := exec.Command("grub-mkstandalone", "-O", "x86_64-efi",
		"--modules=fat search search_fs_file configfile echo cat halt",
		"--locales=", "--fonts=", "--themes=",
		"-o", grub, "boot/grub/grub.cfg="+stub).CombinedOutput()
	require.NoError(t, err, "grub-mkstandalone: %s", out)
	grubBytes, err := os.ReadFile(grub)
	require.NoError(t, err)

	files := []File{
		file("EFI/BOOT/BOOTX64.EFI", grubBytes),
		file("EFI/BOOT/grub.cfg", []byte(`echo "NIXLIVE-GRUB-CFG root=$root"
cat "/Some Directory/a long name, read by GRUB.txt"
halt
`)),
		file("EFI/BOOT/Marker File For GRUB.txt", nil),
		file("Some Directory/a long name, read by GRUB.txt", []byte("NIXLIVE-LONG-NAMED-FILE\n")),
	}
	for i := range 40 { // a directory of several clusters
		files = append(files, file("Some Directory/filler file "+strings.Repeat("x", i)+".txt", []byte("x")))
	}
	img := filepath.Join(tmp, "efi.img")
	f, err := os.Create(img)
	require.NoError(t, err)
	l := writeWithWriter(t, f, files, Options{VolumeLabel: "EFIBOOT", VolumeID: 0x5eed, ModTime: testTime})
	require.NoError(t, f.Close())
	t.Logf("layout: %+v", l)

	vm := vmtest.Start(t, vmtest.Options{
		Name:     "ovmf-grub",
		Firmware: vmtest.OVMF,
		Disks:    []vmtest.Disk{{Path: img, Snapshot: true}},
		MemoryMB: 256,
	})
	vm.MustExpectString("NIXLIVE-GRUB-CFG root=hd0", time.Minute)
	vm.MustExpectString("NIXLIVE-LONG-NAMED-FILE", 30*time.Second)
	vm.MustWait(30 * time.Second)
}

// TestLinuxVFAT reads images of each FAT type with the Linux kernel's vfat
// driver (Debian's cloud kernel under QEMU, as the live system will):
// names exactly, types, sizes, contents and modification times (mounted
// with tz=UTC), and no FAT-fs complaint in the kernel log.
func TestLinuxVFAT(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a kernel under QEMU (about 5 s under TCG); skipped with -short")
	}
	vmtest.HaveQEMU(t)
	k := vmtest.KernelAndModules(t)
	tmp := t.TempDir()

	small := []File{
		file("EFI/BOOT/BOOTX64.EFI", randomBytes(5, 200000)),
		file("EFI/BOOT/grub.cfg", []byte("set timeout=1\n")),
		file("Mixed Case Long Name.txt", []byte("mixed\n")),
		file("empty", nil),
	}
	var many []File
	for i := range 200 {
		many = append(many, file(fmt.Sprintf("root entry %03d.txt", i), []byte(strconv.Itoa(i))))
	}
	images := []struct {
		files []File
		opts  Options
		typ   Type
	}{
		{efiFiles(), Options{VolumeLabel: "EFIBOOT", VolumeID: 1}, FAT12},
		{small, Options{VolumeLabel: "SIXTEEN", Type: FAT16}, FAT16},
		{append(small, many...), Options{Type: FAT32}, FAT32},
	}
	var disks []vmtest.Disk
	for i, im := range images {
		im.opts.ModTime = testTime
		f, err := os.Create(filepath.Join(tmp, fmt.Sprintf("disk%d.img", i)))
		require.NoError(t, err)
		l, err := Build(f, im.files, im.opts)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		require.Equal(t, im.typ, l.Type)
		disks = append(disks, vmtest.Disk{Path: f.Name(), Virtio: true, Snapshot: true})
	}

	initrd := filepath.Join(tmp, "initrd.cpio")
	prog := filepath.Join(tmp, "init")
	build := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-o", prog, "./internal/vfatcheck")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build ./internal/vfatcheck: %s", out)
	progBytes, err := os.ReadFile(prog)
	require.NoError(t, err)
	rf, err := os.Create(initrd)
	require.NoError(t, err)
	require.NoError(t, testinit.WriteInitrd(rf, progBytes, testinit.Options{
		ModulesDir: k.Modules,
		Modules:    []string{"virtio_pci", "virtio_blk", "vfat", "nls_cp437", "nls_ascii", "nls_iso8859-1", "nls_utf8"},
	}))
	require.NoError(t, rf.Close())

	vm := vmtest.Start(t, vmtest.Options{
		Name:     "linux-vfat",
		Kernel:   k.Vmlinuz,
		Initrd:   initrd,
		Append:   "console=ttyS0 quiet vfatcheck.disks=" + strconv.Itoa(len(disks)),
		Disks:    disks,
		MemoryMB: 512,
	})
	type seen struct {
		dir   bool
		size  int64
		mtime int64
		sum   string
	}
	got := make([]map[string]seen, len(images))
	for i := range got {
		got[i] = map[string]seen{}
	}
	line := regexp.MustCompile(`^VFAT-(ENTRY|KMSG|ERROR|DONE) ?(.*)$`)
	entry := regexp.MustCompile(`^(\d+) ([df]) (\d+) (-?\d+) (\S+) (".*")$`)
	var problems []string
	for done := false; !done; {
		m := vm.MustExpect(line, time.Minute)
		switch m[1] {
		case "DONE":
			done = true
		case "KMSG", "ERROR":
			problems = append(problems, m[1]+" "+m[2])
		case "ENTRY":
			e := entry.FindStringSubmatch(m[2])
			require.NotNil(t, e, "bad line %q", m[0])
			disk, _ := strconv.Atoi(e[1])
			size, _ := strconv.ParseInt(e[3], 10, 64)
			mtime, _ := strconv.ParseInt(e[4], 10, 64)
			p, err := strconv.Unquote(e[6])
			require.NoError(t, err)
			got[disk][p] = seen{dir: e[2] == "d", size: size, mtime: mtime, sum: e[5]}
		}
	}
	vm.MustWait(30 * time.Second)
	require.Empty(t, problems, "the kernel complained")

	for i, im := range images {
		want := expected(im.files)
		var diffs []string
		for p, f := range want {
			g, ok := got[i][p]
			if !ok {
				diffs = append(diffs, "missing "+p)
				continue
			}
			sum := "-"
			if !f.Dir {
				sum = sha256Of(t, f)
			}
			w := seen{dir: f.Dir, size: f.Size, mtime: testTime.Unix() &^ 1, sum: sum}
			if f.Dir {
				w.size = g.size // the kernel reports the directory's allocation
			}
			if g != w {
				diffs = append(diffs, fmt.Sprintf("%s: got %+v, want %+v", p, g, w))
			}
		}
		for p := range got[i] {
			if _, ok := want[p]; !ok {
				diffs = append(diffs, "not added: "+p)
			}
		}
		sort.Strings(diffs)
		if len(diffs) > 20 {
			diffs = append(diffs[:20], fmt.Sprintf("... and %d more", len(diffs)-20))
		}
		require.Empty(t, diffs, "disk %d (%s)", i, im.typ)
		t.Logf("disk %d (%s): %d entries as written", i, im.typ, len(want))
	}
}

func sha256Of(t *testing.T, f File) string {
	h := sha256.New()
	if f.Size > 0 {
		r, err := f.Open()
		require.NoError(t, err)
		_, err = io.Copy(h, r)
		require.NoError(t, err)
		r.Close()
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}
