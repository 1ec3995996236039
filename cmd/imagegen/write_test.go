package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The tests of writing an ISO onto a USB stick (loop devices stand for
// it) and into files: imagegen write, and imagegen build -o DEVICE.

// builtISO builds the small test ISO once per test into a file.
func builtISO(t *testing.T) (in *isoInputs, iso string, data []byte) {
	t.Helper()
	haveISOTools(t)
	in = newISOInputs(t, "", "")
	iso = filepath.Join(t.TempDir(), "nixos-test.iso")
	in.buildISO(t, in.spec(), iso, isoBuildOpts{})
	return in, iso, readFile(t, iso)
}

// deviceSum is the SHA-256 of a whole device (or file).
func deviceSum(t *testing.T, dev string) [32]byte {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := f.WriteTo(h); err != nil {
		t.Fatalf("read %s: %v", dev, err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// mountExt4 makes an ext4 file system on dev and mounts it on a new
// directory, unmounted at the end; it skips when that cannot be done.
func mountExt4(t *testing.T, dev string) string {
	t.Helper()
	// Inode tables and journal zeroed now: with lazy init the kernel goes
	// on writing them after the mount, and the refusal tests compare the
	// device's bytes before and after the command.
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", dev).CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext4 %s: %v\n%s", dev, err, out)
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "ext4", dev, mnt).CombinedOutput(); err != nil {
		t.Skipf("mount %s: %v\n%s", dev, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", mnt, err, out)
		}
	})
	return mnt
}

// withPartition is size bytes of fill with an MBR whose one Linux
// partition starts at 1 MiB and runs to the end.
func withPartition(size int64, fill byte) []byte {
	b := bytes.Repeat([]byte{fill}, int(size))
	copy(b[:512], make([]byte, 512))
	e := b[446:462]
	e[4] = 0x83
	binary.LittleEndian.PutUint32(e[8:], 2048)
	binary.LittleEndian.PutUint32(e[12:], uint32(size/512-2048))
	b[510], b[511] = 0x55, 0xAA
	return b
}

// kernelPartitions says whether the kernel shows the partitions of a loop
// device (some kernels have no MBR support), which the partition checks
// need.
func kernelPartitions(t *testing.T) bool {
	var ok bool
	t.Run("probe-partitions", func(t *testing.T) {
		dev := loopDeviceWith(t, withPartition(2<<20, 0))
		_, err := os.Stat("/sys/class/block/" + filepath.Base(dev) + "/" + filepath.Base(dev) + "p1")
		if ok = err == nil; !ok {
			t.Logf("the kernel shows no partition of a loop device with an MBR: partition checks skipped")
		}
	})
	return ok
}

// TestWriteDevice writes the ISO onto loop devices: by imagegen write
// (as /dev/loopN, through a symlink, with --no-verify) and by imagegen
// build -o /dev/loopN; the device then starts with the ISO's bytes and
// its partitions show (the partition table was re-read). A device that
// is mounted, or whose partition is, and one too small are refused with
// a message saying why, before a byte is written: their bytes are
// unchanged.
func TestWriteDevice(t *testing.T) {
	t.Parallel()
	in, iso, want := builtISO(t)
	specFile := writeISOSpec(t, in.spec())
	partitions := kernelPartitions(t)
	check := func(t *testing.T, res cliResult, dev string, verified bool) {
		t.Helper()
		if res.code != 0 {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
		}
		if got := readDevice(t, dev, len(want)); !bytes.Equal(got, want) {
			t.Errorf("%s does not start with the ISO (%s)", dev, isoFirstDiff(want, got))
		}
		wantOut := "read back and verified"
		if !verified {
			wantOut = "not verified (--no-verify)"
		}
		for _, w := range []string{"bytes written to " + dev, wantOut, "partition table re-read"} {
			if !strings.Contains(res.stdout, w) {
				t.Errorf("stdout lacks %q: %s", w, res.stdout)
			}
		}
		// The isohybrid MBR has one partition; the kernel shows it now.
		if partitions {
			p1 := "/sys/class/block/" + filepath.Base(dev) + "/" + filepath.Base(dev) + "p1"
			if _, err := os.Stat(p1); err != nil {
				t.Errorf("no partition after the write: %v", err)
			}
		}
	}
	t.Run("write", func(t *testing.T) {
		dev := loopDevice(t, 64<<20, 0xAA)
		check(t, runCLI(t, cliOpts{}, "write", iso, dev), dev, true)
	})
	t.Run("write-no-verify", func(t *testing.T) {
		dev := loopDevice(t, 64<<20, 0xAA)
		check(t, runCLI(t, cliOpts{}, "write", "--no-verify", iso, dev), dev, false)
	})
	t.Run("write-symlink", func(t *testing.T) {
		dev := loopDevice(t, 64<<20, 0xAA)
		link := filepath.Join(t.TempDir(), "stick")
		if err := os.Symlink(dev, link); err != nil {
			t.Fatal(err)
		}
		check(t, runCLI(t, cliOpts{}, "write", iso, link), dev, true)
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is no longer a symlink (%v)", link, err)
		}
	})
	t.Run("build", func(t *testing.T) {
		dev := loopDevice(t, 64<<20, 0xAA)
		tmp := t.TempDir()
		res := runCLI(t, cliOpts{env: []string{"TMPDIR=" + tmp}}, "build", specFile, "-o", dev, "--store-root", in.storeRoot)
		check(t, res, dev, true)
		assertEmptyDir(t, tmp)
	})
	refused := func(t *testing.T, dev string, args []string, want ...string) {
		t.Helper()
		before := deviceSum(t, dev)
		tmp := t.TempDir()
		res := runCLI(t, cliOpts{env: []string{"TMPDIR=" + tmp}}, args...)
		if res.code != 1 {
			t.Errorf("exit %d, want 1\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
		}
		for _, w := range want {
			if !strings.Contains(res.stderr, w) {
				t.Errorf("stderr lacks %q:\n%s", w, res.stderr)
			}
		}
		t.Logf("stderr: %s", res.stderr)
		if deviceSum(t, dev) != before {
			t.Errorf("%s was written to", dev)
		}
		assertEmptyDir(t, tmp)
	}
	for _, cmd := range []string{"write", "build"} {
		args := func(dev string) []string {
			if cmd == "write" {
				return []string{"write", iso, dev}
			}
			return []string{"build", specFile, "-o", dev, "--store-root", in.storeRoot}
		}
		t.Run(cmd+"-mounted", func(t *testing.T) {
			dev := loopDevice(t, 64<<20, 0)
			mnt := mountExt4(t, dev)
			refused(t, dev, args(dev), dev+" is mounted on "+mnt, "nothing was written")
		})
		t.Run(cmd+"-mounted-partition", func(t *testing.T) {
			dev := loopDeviceWith(t, withPartition(64<<20, 0))
			part := dev + "p1"
			if _, err := os.Stat(part); err != nil {
				t.Skipf("no %s after losetup -P: %v", part, err)
			}
			mnt := mountExt4(t, part)
			refused(t, dev, args(dev), dev+" is in use: "+part+" is mounted on "+mnt)
		})
		t.Run(cmd+"-too-small", func(t *testing.T) {
			dev := loopDevice(t, 1<<20, 0xAA)
			refused(t, dev, args(dev), dev+" is too small: 1048576 bytes (1.0 MiB)", "the image is "+strconv.Itoa(len(want))+" bytes")
		})
	}
}

// TestWriteFile: imagegen write into a file is a verified copy renamed
// into place: a new file, an old one replaced, a symlink written through
// (it stays a link); /dev/full gets a clear error and stays a device; the
// ISO onto itself, a directory, a missing ISO and a directory as the ISO
// are refused with the path named, and leave nothing behind.
func TestWriteFile(t *testing.T) {
	t.Parallel()
	_, iso, want := builtISO(t)
	t.Run("new", func(t *testing.T) {
		dir := t.TempDir()
		out := filepath.Join(dir, "copy.iso")
		res := runCLI(t, cliOpts{}, "write", iso, out)
		if res.code != 0 || !strings.Contains(res.stdout, "read back and verified") {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
		}
		if !bytes.Equal(readFile(t, out), want) {
			t.Error("the copy differs")
		}
		assertNoTemp(t, dir)
	})
	t.Run("replace-through-symlink", func(t *testing.T) {
		linkDir, targetDir := t.TempDir(), t.TempDir()
		target := filepath.Join(targetDir, "stick.img")
		mustWrite(t, target, []byte("old\n"), 0o644)
		link := filepath.Join(linkDir, "stick")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		res := runCLI(t, cliOpts{}, "write", iso, link)
		if res.code != 0 {
			t.Fatalf("exit %d\n%s", res.code, res.stderr)
		}
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is no longer a symlink (%v)", link, err)
		}
		if !bytes.Equal(readFile(t, target), want) {
			t.Error("the target does not hold the ISO")
		}
		assertNoTemp(t, linkDir, targetDir)
	})
	t.Run("dev-full", func(t *testing.T) {
		t.Cleanup(restoreDevFull)
		before := statDevice(t, "/dev/full")
		res := runCLI(t, cliOpts{}, "write", iso, "/dev/full")
		if res.code != 1 || !strings.Contains(res.stderr, "write /dev/full: no space left on device") {
			t.Errorf("exit %d\nstderr: %s", res.code, res.stderr)
		}
		if after := statDevice(t, "/dev/full"); after != before {
			t.Errorf("/dev/full was %s, is now %s", before, after)
		}
	})
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"same-file", []string{iso, iso}, []string{iso, "the same file"}},
		{"dest-directory", []string{iso, dir}, []string{dir, "is a directory"}},
		{"missing-iso", []string{filepath.Join(dir, "none.iso"), filepath.Join(dir, "out")}, []string{filepath.Join(dir, "none.iso"), "no such file"}},
		{"iso-directory", []string{dir, filepath.Join(dir, "out")}, []string{dir, "not a regular file"}},
		{"one-arg", []string{iso}, []string{"usage: imagegen write"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(t, cliOpts{}, append([]string{"write"}, tc.args...)...)
			if res.code == 0 {
				t.Errorf("exit 0\nstdout: %s", res.stdout)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, res.stderr)
				}
			}
			assertEmptyDir(t, dir)
			if !bytes.Equal(readFile(t, iso), want) {
				t.Error("the ISO was changed")
			}
		})
	}
}
