package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/testinit"
	"github.com/nixlive/nixlive/internal/boottest/vmtest"
)

// The tests of imagegen persist: the nixlive-rw partition after the ISO,
// in a disk image file and on a loop device, checked with util-linux's
// sfdisk, gdisk, xorriso and e2fsprogs, and booted on SeaBIOS and OVMF.

// persistTools are the readers the checks use.
var persistTools = []string{"sfdisk", "gdisk", "xorriso", "e2fsck", "dumpe2fs", "mkfs.ext4"}

// persistedFile copies the ISO into a new file and runs imagegen persist
// on it with args; it fails unless that succeeds.
func persistedFile(t *testing.T, iso string, args ...string) (img string, stdout string) {
	t.Helper()
	img = filepath.Join(t.TempDir(), "stick.img")
	mustWrite(t, img, readFile(t, iso), 0o644)
	res := runCLI(t, cliOpts{}, append([]string{"persist", img}, args...)...)
	if res.code != 0 {
		t.Fatalf("imagegen persist: exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	return img, res.stdout
}

// sfdiskPart is a partition as sfdisk --json lists it.
type sfdiskPart struct {
	Start, Size int64
	Type        string
}

func sfdiskParts(t *testing.T, img string) []sfdiskPart {
	t.Helper()
	var out struct {
		PartitionTable struct{ Partitions []sfdiskPart }
	}
	require.NoError(t, json.Unmarshal([]byte(isoTool(t, "sfdisk", "--json", img)), &out))
	return out.PartitionTable.Partitions
}

// checkPersisted checks a medium (a file or a device) holding iso and a
// nixlive-rw partition of size bytes at off: sfdisk and gdisk (the GPT
// side) find nothing wrong and list it, xorriso reads the same files as
// on the ISO, and e2fsck finds its file system (fs, a file or device of
// the partition alone) clean, labelled nixlive-rw.
func checkPersisted(t *testing.T, medium, iso, fs string, off, size int64) {
	t.Helper()
	isoTool(t, "sfdisk", "--verify", medium)
	parts := sfdiskParts(t, medium)
	require.Len(t, parts, 3, "MBR partitions: %v", parts)
	assert.Equal(t, sfdiskPart{Start: off / 512, Size: size / 512, Type: "83"}, parts[2])
	gd := exec.Command("gdisk", medium)
	gd.Stdin = strings.NewReader("2\np\nv\nq\n") // use the GPT, print, verify, quit unsaved
	out, err := gd.CombinedOutput()
	require.NoError(t, err, "gdisk: %s", out)
	assert.Contains(t, string(out), "No problems found.", "gdisk's verification of the GPT")
	gptLine := regexp.MustCompile(fmt.Sprintf(`(?m)^\s+3\s+%d\s+%d\s.*8300\s+nixlive-rw$`, off/512, (off+size)/512-1))
	assert.Regexp(t, gptLine, string(out), "gdisk's listing")
	assert.Equal(t, xorrisoFiles(t, iso), xorrisoFiles(t, medium), "the files xorriso reads")
	assert.Contains(t, isoTool(t, "e2fsck", "-fn", fs), "nixlive-rw: 11/")
	head := isoTool(t, "dumpe2fs", "-h", fs)
	assert.Regexp(t, `(?m)^Filesystem volume name:\s+nixlive-rw$`, head)
	field := func(name string) int64 {
		m := regexp.MustCompile(`(?m)^` + name + `:\s+(\d+)$`).FindStringSubmatch(head)
		require.NotNil(t, m, "dumpe2fs -h lacks %s:\n%s", name, head)
		return isoAtoi(t, m[1])
	}
	assert.Equal(t, size, field("Block count")*field("Block size"), "the file system fills the partition")
}

// xorrisoFiles lists the files of an ISO (or a medium starting with one).
func xorrisoFiles(t *testing.T, iso string) string {
	t.Helper()
	cmd := exec.Command("xorriso", "-indev", "stdio:"+iso, "-find", "/", "-exec", "lsdl")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || strings.Contains(stderr.String(), "FAILURE") {
		t.Fatalf("xorriso -indev %s: %v\n%s", iso, err, stderr.String())
	}
	return stdout.String()
}

// partitionFile copies n bytes at off of img into a file of their own.
func partitionFile(t *testing.T, img string, off, n int64) string {
	t.Helper()
	src, err := os.Open(img)
	require.NoError(t, err)
	defer src.Close()
	p := filepath.Join(t.TempDir(), "part.ext4")
	dst, err := os.Create(p)
	require.NoError(t, err)
	defer dst.Close()
	_, err = dst.ReadFrom(io.NewSectionReader(src, off, n))
	require.NoError(t, err)
	return p
}

// TestPersistFile: imagegen persist FILE --size 64M grows a copy of the
// ISO by the partition and the backup GPT; the tables, the ISO and the
// file system check out; the ISO's bytes outside its tables are kept; a
// second run is refused, changing nothing; and the default size is 256 MiB.
func TestPersistFile(t *testing.T) {
	t.Parallel()
	_, iso, want := builtISO(t)
	haveISOTools(t, persistTools...)
	img, stdout := persistedFile(t, iso, "--size", "64M")
	off := int64(len(want))
	for _, w := range []string{img + `: partition 3 "nixlive-rw" (ext4, 64.0 MiB) at byte ` + strconv.FormatInt(off, 10),
		fmt.Sprintf("grown from %d to %d bytes", off, off+64<<20+33*512)} {
		assert.Contains(t, stdout, w)
	}
	got := readFile(t, img)
	require.Len(t, got, len(want)+64<<20+33*512)
	tail := len(want) - 33*512 // the ISO's backup GPT, cleared
	assert.True(t, bytes.Equal(want[34*512:tail], got[34*512:tail]), "the ISO's bytes changed")
	assert.Equal(t, want[:446], got[:446], "the MBR's boot code")
	checkPersisted(t, img, iso, partitionFile(t, img, off, 64<<20), off, 64<<20)
	assert.Contains(t, runCLI(t, cliOpts{}, "inspect", img).stdout, "nixlive-rw")

	res := runCLI(t, cliOpts{}, "persist", img, "--size", "32M")
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.stderr, fmt.Sprintf("%s already has a nixlive-rw partition: partition 3, 67108864 bytes (64.0 MiB) at byte %d; nothing was written", img, off))
	assert.True(t, bytes.Equal(got, readFile(t, img)), "the refused run wrote")

	img2, _ := persistedFile(t, iso)
	assert.Equal(t, int64(len(want)+256<<20+33*512), int64(len(readFile(t, img2))), "the default size")
	assert.Equal(t, sfdiskParts(t, img)[2], sfdiskPart{Start: off / 512, Size: 64 << 11, Type: "83"})
}

// TestPersistRefused: a file that is not our ISO, an unwritable one, and
// bad arguments are refused with the reason; the file is unchanged.
func TestPersistRefused(t *testing.T) {
	t.Parallel()
	_, iso, want := builtISO(t)
	dir := t.TempDir()
	openUp(t, dir)
	cases := []struct {
		name, file string
		data       []byte
		perm       os.FileMode
		args       []string
		nobody     bool
		code       int
		want       string
	}{
		{"not-an-iso", "zeros.img", make([]byte, 4<<20), 0o644, nil, false, 1, "does not hold a live ISO written by imagegen build (isohybrid, with a GPT): no ISO 9660 primary volume descriptor at byte 32768; nothing was written"},
		{"unwritable", "ro.img", want, 0o444, nil, os.Geteuid() == 0, 1, "ro.img: permission denied; nothing was written"},
		{"size-too-small", "small.img", want, 0o644, []string{"--size", "1M"}, false, 1, "--size 1048576 bytes (1.0 MiB) is too small: a nixlive-rw partition needs at least 16777216 bytes (16.0 MiB)"},
		{"bad-size", "bad.img", want, 0o644, []string{"--size", "lots"}, false, 1, `--size: size "lots": want bytes or a number with K, M, G or T`},
		{"two-args", "two.img", want, 0o644, []string{iso}, false, 2, "usage: imagegen persist DEVICE|FILE [--size N]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.file)
			mustWrite(t, p, tc.data, tc.perm)
			require.NoError(t, os.Chmod(p, tc.perm))
			res := runCLI(t, cliOpts{nobody: tc.nobody}, append([]string{"persist", p}, tc.args...)...)
			assert.Equal(t, tc.code, res.code, "stderr: %s", res.stderr)
			assert.Contains(t, res.stderr, tc.want)
			assert.True(t, bytes.Equal(tc.data, readFile(t, p)), "the file changed")
		})
	}
	res := runCLI(t, cliOpts{}, "persist", filepath.Join(dir, "none.img"))
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.stderr, "none.img: no such file or directory")
	assert.Contains(t, runCLI(t, cliOpts{}, "help").stdout, "persist add the nixlive-rw partition")
}

// TestPersistDevice adds the partition on loop devices (partition scanning
// on): one with room after the ISO gets it over all the free space, and
// the kernel shows it as p3 once done; one written by imagegen write gets
// --size; a mounted one and one with too
// little room for --size are refused, unchanged.
func TestPersistDevice(t *testing.T) {
	t.Parallel()
	_, iso, want := builtISO(t)
	haveISOTools(t, persistTools...)
	partitions := kernelPartitions(t)
	stick := func(free int64) []byte {
		return append(append([]byte{}, want...), bytes.Repeat([]byte{0xAA}, int(free))...)
	}
	t.Run("all-free-space", func(t *testing.T) {
		dev := loopDeviceWith(t, stick(100<<20))
		res := runCLI(t, cliOpts{}, "persist", dev)
		require.Equal(t, 0, res.code, "stderr: %s", res.stderr)
		// The free space less the backup GPT, in whole MiB.
		assert.Contains(t, res.stdout, fmt.Sprintf(`%s: partition 3 "nixlive-rw" (ext4, 99.0 MiB) at byte %d`, dev, len(want)))
		assert.Contains(t, res.stdout, "partition table re-read")
		fs := partitionFile(t, dev, int64(len(want)), 99<<20)
		if partitions {
			fs = dev + "p3"
			out, err := exec.Command("blkid", "-o", "value", "-s", "LABEL", fs).Output()
			require.NoError(t, err, "blkid %s", fs)
			assert.Equal(t, "nixlive-rw\n", string(out))
		}
		checkPersisted(t, dev, iso, fs, int64(len(want)), 99<<20)
	})
	t.Run("after-imagegen-write", func(t *testing.T) {
		dev := loopDevice(t, 128<<20, 0xAA)
		if res := runCLI(t, cliOpts{}, "write", iso, dev); res.code != 0 {
			t.Fatalf("imagegen write: exit %d: %s", res.code, res.stderr)
		}
		res := runCLI(t, cliOpts{}, "persist", dev, "--size", "64M")
		require.Equal(t, 0, res.code, "stderr: %s", res.stderr)
		checkPersisted(t, dev, iso, partitionFile(t, dev, int64(len(want)), 64<<20), int64(len(want)), 64<<20)
	})
	refused := func(t *testing.T, dev string, args []string, want ...string) {
		t.Helper()
		before := deviceSum(t, dev)
		res := runCLI(t, cliOpts{}, append([]string{"persist", dev}, args...)...)
		assert.Equal(t, 1, res.code, "stderr: %s", res.stderr)
		for _, w := range want {
			assert.Contains(t, res.stderr, w)
		}
		assert.Equal(t, before, deviceSum(t, dev), "the device was written to")
	}
	t.Run("too-little-space", func(t *testing.T) {
		dev := loopDeviceWith(t, stick(40<<20))
		refused(t, dev, []string{"--size", "64M"}, fmt.Sprintf("%s has too little space after the ISO (which ends at byte %d): 41926144 bytes (40.0 MiB) free, the partition asked for is 67108864 bytes (64.0 MiB); nothing was written", dev, len(want)))
		dev = loopDeviceWith(t, stick(8<<20))
		refused(t, dev, nil, "free, a nixlive-rw partition needs at least 16777216 bytes (16.0 MiB)")
	})
	t.Run("mounted", func(t *testing.T) {
		dev := loopDeviceWith(t, stick(64<<20))
		mnt := t.TempDir()
		if out, err := exec.Command("mount", "-o", "ro", "-t", "iso9660", dev, mnt).CombinedOutput(); err != nil {
			t.Skipf("mount %s: %v\n%s", dev, err, out)
		}
		t.Cleanup(func() { exec.Command("umount", mnt).Run() })
		refused(t, dev, nil, dev+" is in use: "+dev+" is mounted on "+mnt)
	})
}

// TestPersistSignal interrupts imagegen persist (SIGINT) at a range of
// moments: the file is then either as it was, byte for byte, or fully
// done (its tables and file system check out).
func TestPersistSignal(t *testing.T) {
	t.Parallel()
	_, iso, want := builtISO(t)
	haveISOTools(t, persistTools...)
	outcomes := map[string]int{}
	for i, delay := range []time.Duration{0, 2, 5, 10, 15, 20, 30, 40, 60, 80, 120, 200} {
		img := filepath.Join(t.TempDir(), "stick.img")
		mustWrite(t, img, want, 0o644)
		r := startCLI(t, t.TempDir(), "persist", img, "--size", "1G")
		time.Sleep(delay * time.Millisecond)
		r.cmd.Process.Signal(syscall.SIGINT)
		<-r.done
		code := r.cmd.ProcessState.ExitCode()
		got := readFile(t, img)
		switch {
		case bytes.Equal(got, want):
			outcomes["as it was"]++
			// -1: killed by the signal before imagegen handled signals.
			assert.Contains(t, []int{130, -1}, code, "run %d: %s", i, r.stderr.String())
		case len(got) == len(want)+1<<30+33*512:
			outcomes["done"]++
			assert.Equal(t, 0, code, "run %d: %s", i, r.stderr.String())
			checkPersisted(t, img, iso, partitionFile(t, img, int64(len(want)), 1<<30), int64(len(want)), 1<<30)
		default:
			t.Errorf("run %d (SIGINT after %v): the file is neither as it was nor done (%d bytes); exit %d: %s", i, delay, len(got), code, r.stderr.String())
		}
	}
	t.Logf("outcomes: %v", outcomes)
}

// TestPersistBoot boots a persisted image from a disk on SeaBIOS and OVMF
// to the test init, which lists the block devices: the kernel sees the
// ISO's two MBR partitions and the nixlive-rw one as sda3.
func TestPersistBoot(t *testing.T) {
	t.Parallel()
	haveISOTools(t, "mkfs.ext4")
	vmtest.HaveQEMU(t)
	k := vmtest.KernelAndModules(t)
	initrd := testinit.InitrdWith(t, testinit.Options{ModulesDir: k.Modules, Modules: []string{"ata_piix", "sd_mod"}})
	in := newISOInputs(t, k.Vmlinuz, initrd)
	spec := in.spec()
	spec["boot"] = map[string]any{"timeout": 1, "serialConsole": true}
	iso := filepath.Join(t.TempDir(), "boot.iso")
	in.buildISO(t, spec, iso, isoBuildOpts{})
	img, _ := persistedFile(t, iso, "--size", "64M")
	markerRE := regexp.MustCompile(regexp.QuoteMeta(testinit.Marker) + ` cmdline=(.*)$`)
	for _, fw := range []vmtest.Firmware{vmtest.SeaBIOS, vmtest.OVMF} {
		t.Run(fw.String(), func(t *testing.T) {
			t.Parallel()
			if fw == vmtest.OVMF {
				vmtest.HaveOVMF(t)
			}
			vm := vmtest.Start(t, vmtest.Options{Name: "persist-" + fw.String(), Firmware: fw,
				Disks: []vmtest.Disk{{Path: img, Snapshot: true}}})
			m := vm.MustExpect(markerRE, 3*time.Minute)
			assert.Contains(t, strings.Fields(m[1]), "init="+in.system+"/init")
			vm.MustWait(3 * time.Minute)
			assert.Contains(t, vm.Console(), testinit.BlockMarker+" sda3 67108864", "the kernel's view of the partitions")
		})
	}
}
