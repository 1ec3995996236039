package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests of imagegen write onto a medium with a nixlive-rw partition:
// the new ISO goes before it, and the partition, not formatted, is
// entered again in the new ISO's tables.

// atOffset names the file system at byte off of medium for e2fsprogs
// (their unix I/O manager takes "?offset=").
func atOffset(medium string, off int64) string {
	return medium + "?offset=" + strconv.FormatInt(off, 10)
}

// debugfsWrite writes data into the file name at the root of the ext4
// file system at byte off of medium.
func debugfsWrite(t *testing.T, medium string, off int64, name string, data []byte) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	mustWrite(t, src, data, 0o644)
	out, err := exec.Command("debugfs", "-w", "-R", "write "+src+" "+name, atOffset(medium, off)).CombinedOutput()
	require.NoError(t, err, "debugfs -w: %s", out)
	require.Contains(t, string(out), "Allocated inode", "debugfs -w: %s", out)
}

// debugfsCat reads the file name of the ext4 file system at byte off.
func debugfsCat(t *testing.T, medium string, off int64, name string) []byte {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", "cat "+name, atOffset(medium, off)).Output()
	require.NoError(t, err, "debugfs cat %s", name)
	return out
}

// e2fsckClean runs e2fsck -fn on the file system at byte off of medium:
// it must find nothing wrong.
func e2fsckClean(t *testing.T, medium string, off int64) string {
	t.Helper()
	out, err := exec.Command("e2fsck", "-fn", atOffset(medium, off)).CombinedOutput()
	assert.NoError(t, err, "e2fsck -fn: %s", out)
	return string(out)
}

// biggerISO builds the test ISO with another volume ID and, when pad > 0,
// an extra file of pad random-ish bytes: a new ISO to write over the old.
func biggerISO(t *testing.T, in *isoInputs, volumeID string, pad int) string {
	t.Helper()
	spec := in.spec()
	spec["volumeID"] = volumeID
	if pad > 0 {
		p := filepath.Join(t.TempDir(), "pad.bin")
		b := make([]byte, pad)
		for i := range b {
			b[i] = byte(i*7919>>3) ^ byte(i>>11)
		}
		mustWrite(t, p, b, 0o644)
		spec["contents"] = append(spec["contents"].([]map[string]any), map[string]any{"source": p, "target": "/pad.bin"})
	}
	iso := filepath.Join(t.TempDir(), volumeID+".iso")
	in.buildISO(t, spec, iso, isoBuildOpts{})
	return iso
}

// TestWriteKeepsPersistence: a disk image file and a loop device holding
// the ISO and a 64 MiB nixlive-rw partition with a file in it get a new
// ISO by imagegen write: the partition is kept where it was (sfdisk,
// gdisk, xorriso, e2fsck check out; the file reads back), a second write
// keeps it again, and an ISO that would reach into it is refused with
// both sizes, the medium unchanged.
func TestWriteKeepsPersistence(t *testing.T) {
	t.Parallel()
	in, iso, old := builtISO(t)
	haveISOTools(t, append(persistTools, "debugfs")...)
	newISO := biggerISO(t, in, "NIXLIVE_NEW", 0)
	tooBig := biggerISO(t, in, "NIXLIVE_BIG", 3<<20)
	off := int64(len(old))
	require.Zero(t, off%(1<<20), "the test ISO is expected to end on a MiB")
	secret := []byte("kept across the upgrade\n")
	upgrade := func(t *testing.T, medium string) {
		debugfsWrite(t, medium, off, "secret.txt", secret)
		res := runCLI(t, cliOpts{}, "write", newISO, medium)
		require.Equal(t, 0, res.code, "imagegen write: stdout: %s\nstderr: %s", res.stdout, res.stderr)
		assert.Contains(t, res.stdout, fmt.Sprintf("nixlive-rw partition 3 kept (67108864 bytes at byte %d, not formatted)", off))
		assert.Contains(t, res.stdout, "read back and verified")
		checkKept(t, medium, newISO, off)
		assert.Equal(t, secret, debugfsCat(t, medium, off, "secret.txt"))

		// Again, with the same ISO: the partition stays.
		res = runCLI(t, cliOpts{}, "write", newISO, medium)
		require.Equal(t, 0, res.code, "second write: %s", res.stderr)
		checkKept(t, medium, newISO, off)
		assert.Equal(t, secret, debugfsCat(t, medium, off, "secret.txt"))

		before := deviceSum(t, medium)
		big := int64(len(readFile(t, tooBig)))
		res = runCLI(t, cliOpts{}, "write", tooBig, medium)
		assert.Equal(t, 1, res.code, "stderr: %s", res.stderr)
		assert.Contains(t, res.stderr, fmt.Sprintf("%s: the new ISO is %d bytes", medium, big))
		assert.Contains(t, res.stderr, fmt.Sprintf("larger than the %d bytes", off))
		assert.Contains(t, res.stderr, fmt.Sprintf("before its nixlive-rw partition (partition 3, 67108864 bytes (64.0 MiB) at byte %d), which it would overwrite; nothing was written", off))
		assert.Equal(t, before, deviceSum(t, medium), "the refused write wrote")
	}
	t.Run("file", func(t *testing.T) {
		img, _ := persistedFile(t, iso, "--size", "64M")
		size := len(readFile(t, img))
		upgrade(t, img)
		assert.Len(t, readFile(t, img), size, "the file's size")
	})
	t.Run("device", func(t *testing.T) {
		dev := loopDevice(t, 128<<20, 0xAA)
		for _, args := range [][]string{{"write", iso, dev}, {"persist", dev, "--size", "64M"}} {
			if res := runCLI(t, cliOpts{}, args...); res.code != 0 {
				t.Fatalf("imagegen %s: exit %d: %s", args[0], res.code, res.stderr)
			}
		}
		upgrade(t, dev)
	})
	t.Run("file-without-partition", func(t *testing.T) {
		// A plain ISO file is still replaced whole (renamed into place).
		out := filepath.Join(t.TempDir(), "plain.iso")
		mustWrite(t, out, bytes.Repeat([]byte{1}, 8<<20), 0o644)
		res := runCLI(t, cliOpts{}, "write", newISO, out)
		require.Equal(t, 0, res.code, "stderr: %s", res.stderr)
		assert.NotContains(t, res.stdout, "kept")
		assert.True(t, bytes.Equal(readFile(t, newISO), readFile(t, out)))
	})
}

// checkKept checks a medium after imagegen write kept its 64 MiB
// nixlive-rw partition at off: sfdisk and gdisk find the tables sound with
// the partition in them, xorriso reads iso's files, e2fsck finds the file
// system clean, and the medium starts with iso's bytes outside its tables.
func checkKept(t *testing.T, medium, iso string, off int64) {
	t.Helper()
	isoTool(t, "sfdisk", "--verify", medium)
	parts := sfdiskParts(t, medium)
	require.Len(t, parts, 3, "MBR partitions: %v", parts)
	assert.Equal(t, sfdiskPart{Start: off / 512, Size: 64 << 11, Type: "83"}, parts[2])
	gd := exec.Command("gdisk", medium)
	gd.Stdin = strings.NewReader("2\np\nv\nq\n")
	out, err := gd.CombinedOutput()
	require.NoError(t, err, "gdisk: %s", out)
	assert.Contains(t, string(out), "No problems found.", "gdisk's verification of the GPT")
	assert.Regexp(t, fmt.Sprintf(`(?m)^\s+3\s+%d\s+%d\s.*8300\s+nixlive-rw$`, off/512, (off+64<<20)/512-1), string(out))
	assert.Equal(t, xorrisoFiles(t, iso), xorrisoFiles(t, medium), "the files xorriso reads")
	want := readFile(t, iso)
	got := readDevice(t, medium, len(want))
	tail := len(want) - 33*512 // the new ISO's backup GPT, cleared
	assert.True(t, bytes.Equal(want[34*512:tail], got[34*512:tail]), "the medium does not hold the new ISO")
	assert.Equal(t, want[:446], got[:446], "the MBR's boot code")
	assert.Contains(t, e2fsckClean(t, medium, off), "nixlive-rw: 12/")
}

// TestWriteKeepsPersistenceSignal interrupts imagegen write (SIGINT) onto
// a disk image with a nixlive-rw partition, at a range of moments,
// writing the old and a new ISO in turn: whether it stopped or finished,
// the tables hold the partition where it was, and its file system is
// clean with its file.
func TestWriteKeepsPersistenceSignal(t *testing.T) {
	t.Parallel()
	in, iso, old := builtISO(t)
	haveISOTools(t, append(persistTools, "debugfs")...)
	newISO := biggerISO(t, in, "NIXLIVE_NEW", 0)
	off := int64(len(old))
	img, _ := persistedFile(t, iso, "--size", "64M")
	secret := []byte("kept across interrupted upgrades\n")
	debugfsWrite(t, img, off, "secret.txt", secret)
	outcomes := map[int]int{}
	for i, delay := range []time.Duration{0, 2, 5, 10, 15, 20, 30, 40, 60, 80, 120, 200} {
		src := []string{newISO, iso}[i%2]
		r := startCLI(t, t.TempDir(), "write", src, img)
		time.Sleep(delay * time.Millisecond)
		r.cmd.Process.Signal(syscall.SIGINT)
		<-r.done
		code := r.cmd.ProcessState.ExitCode()
		outcomes[code]++
		assert.Contains(t, []int{0, 130, -1}, code, "run %d: %s", i, r.stderr.String())
		parts := sfdiskParts(t, img)
		if assert.Len(t, parts, 3, "run %d (SIGINT after %v): %s", i, delay, r.stderr.String()) {
			assert.Equal(t, sfdiskPart{Start: off / 512, Size: 64 << 11, Type: "83"}, parts[2], "run %d", i)
		}
		e2fsckClean(t, img, off)
		assert.Equal(t, secret, debugfsCat(t, img, off, "secret.txt"), "run %d", i)
		if code == 0 {
			checkKept(t, img, src, off)
		}
	}
	t.Logf("exit codes: %v", outcomes)
}
