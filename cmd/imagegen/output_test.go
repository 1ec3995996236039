package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The tests of where output goes: through symlinks, into device nodes,
// onto a full device. An output is written to a temporary file renamed
// over the path, except that a symlink is written through (the rename
// happens beside its final target) and a device is written into.

// outputCase is one command whose output path a test chooses.
type outputCase struct {
	name string
	// args is the command line writing to out; other outputs (the image
	// beside --registration-out) go to scratch.
	args func(out, scratch string) []string
}

// outputCases are the commands that write a file: store (-o and
// --registration-out), build and initrd, on small inputs.
func outputCases(t *testing.T) (in *isoInputs, cases []outputCase) {
	t.Helper()
	in = newISOInputs(t, "", "")
	spec := writeISOSpec(t, in.spec())
	stage1 := filepath.Join(t.TempDir(), "stage1")
	mustWrite(t, stage1, tinyStaticELF(), 0o755)
	store := func(extra ...string) []string {
		return append([]string{"store", "--store-root", in.storeRoot, "--comp", "gzip", "--level", "1", "--block-size", "4096"}, append(extra, in.extra)...)
	}
	cases = []outputCase{
		{"store", func(out, _ string) []string { return store("-o", out) }},
		{"registration-out", func(out, scratch string) []string {
			return store("-o", filepath.Join(scratch, "image.squashfs"), "--registration-out", out)
		}},
		{"initrd", func(out, _ string) []string { return []string{"initrd", "-o", out, "--stage1", stage1} }},
		{"build", func(out, _ string) []string {
			return []string{"build", spec, "-o", out, "--store-root", in.storeRoot}
		}},
	}
	return in, cases
}

// tinyStaticELF is the smallest static x86-64 executable, which exits 0:
// enough of a stage 1 for initrd to take.
func tinyStaticELF() []byte {
	const base, hdr = 0x400000, 64 + 56
	code := []byte{0xb8, 60, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05} // mov eax, 60 (exit); xor edi, edi; syscall
	var b bytes.Buffer
	le := binary.LittleEndian
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	binary.Write(&b, le, struct {
		Type, Machine                       uint16
		Version                             uint32
		Entry, Phoff, Shoff                 uint64
		Flags                               uint32
		Ehsize, Phentsize, Phnum, Shentsize uint16
		Shnum, Shstrndx                     uint16
	}{2, 62, 1, base + hdr, 64, 0, 0, 64, 56, 1, 64, 0, 0})
	binary.Write(&b, le, struct {
		Type, Flags          uint32
		Off, Vaddr, Paddr    uint64
		Filesz, Memsz, Align uint64
	}{1, 5, 0, base, base, hdr + uint64(len(code)), hdr + uint64(len(code)), 0x1000})
	b.Write(code)
	return b.Bytes()
}

// reference runs the case into a plain file and returns its bytes.
func (c outputCase) reference(t *testing.T) []byte {
	t.Helper()
	if c.name == "build" {
		haveISOTools(t)
	}
	out := filepath.Join(t.TempDir(), "reference")
	res := runCLI(t, cliOpts{env: []string{"SOURCE_DATE_EPOCH=1234567890"}}, c.args(out, t.TempDir())...)
	if res.code != 0 {
		t.Fatalf("%s to a plain file: exit %d\n%s", c.name, res.code, res.stderr)
	}
	return readFile(t, out)
}

// TestOutputThroughSymlink gives every output as a symlink (relative, to
// an existing file; absolute, to a file not there yet; a chain of two):
// the link stays a link with the same target, the final target gets the
// bytes a plain path gets, and neither directory keeps a temporary file.
func TestOutputThroughSymlink(t *testing.T) {
	t.Parallel()
	_, cases := outputCases(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			want := c.reference(t)
			for _, kind := range []string{"existing", "dangling", "chain"} {
				t.Run(kind, func(t *testing.T) {
					linkDir, targetDir := t.TempDir(), t.TempDir()
					target := filepath.Join(targetDir, "target")
					link := filepath.Join(linkDir, "out")
					linkTo := target
					switch kind {
					case "existing":
						mustWrite(t, target, []byte("old content\n"), 0o644)
						rel, err := filepath.Rel(linkDir, target)
						if err != nil {
							t.Fatal(err)
						}
						linkTo = rel
					case "chain":
						middle := filepath.Join(targetDir, "middle")
						if err := os.Symlink("target", middle); err != nil {
							t.Fatal(err)
						}
						linkTo = middle
					}
					if err := os.Symlink(linkTo, link); err != nil {
						t.Fatal(err)
					}
					res := runCLI(t, cliOpts{env: []string{"SOURCE_DATE_EPOCH=1234567890"}}, c.args(link, t.TempDir())...)
					if res.code != 0 {
						t.Fatalf("exit %d\n%s", res.code, res.stderr)
					}
					fi, err := os.Lstat(link)
					if err != nil {
						t.Fatal(err)
					}
					if fi.Mode()&os.ModeSymlink == 0 {
						t.Fatalf("%s is no longer a symlink but %v: the output replaced the link", link, fi.Mode())
					}
					if got, _ := os.Readlink(link); got != linkTo {
						t.Errorf("%s now points at %q, want %q", link, got, linkTo)
					}
					if got := readFile(t, target); !bytes.Equal(got, want) {
						t.Errorf("%s holds %d bytes, not the %d of the output (%s)", target, len(got), len(want), isoFirstDiff(want, got))
					}
					assertNoTemp(t, linkDir, targetDir)
				})
			}
		})
	}
}

// assertNoTemp fails if a directory holds a hidden temporary file.
func assertNoTemp(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("temporary file left in %s: %s", d, e.Name())
			}
		}
	}
}

// TestOutputCharDevice writes every output to a full device: a node of
// /dev/full's numbers made in a temporary directory (as root), then
// /dev/full itself. The command fails with an error that names the path
// and says there is no space, and the node is still the same character
// device afterwards.
func TestOutputCharDevice(t *testing.T) {
	t.Parallel()
	_, cases := outputCases(t)
	type node struct{ name, path string }
	var nodes []node
	if os.Geteuid() == 0 {
		p := filepath.Join(t.TempDir(), "full")
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 7))); err != nil {
			t.Fatalf("mknod %s: %v", p, err)
		}
		nodes = append(nodes, node{"mknod", p})
	}
	nodes = append(nodes, node{"dev-full", "/dev/full"})
	t.Cleanup(restoreDevFull)
	for _, c := range cases {
		for _, n := range nodes {
			t.Run(c.name+"/"+n.name, func(t *testing.T) {
				if c.name == "build" {
					haveISOTools(t)
				}
				before := statDevice(t, n.path)
				dir := t.TempDir()
				res := runCLI(t, cliOpts{dir: dir}, c.args(n.path, dir)...)
				if res.code != 1 {
					t.Errorf("exit %d, want 1\nstderr: %s", res.code, res.stderr)
				}
				for _, w := range []string{n.path, "no space left on device"} {
					if !strings.Contains(res.stderr, w) {
						t.Errorf("stderr lacks %q:\n%s", w, res.stderr)
					}
				}
				t.Logf("stderr: %s", res.stderr)
				if after := statDevice(t, n.path); after != before {
					t.Errorf("%s was %s, is now %s", n.path, before, after)
				}
				assertEmptyDir(t, dir)
				assertNoTemp(t, filepath.Dir(n.path))
			})
		}
	}
}

// statDevice describes a path's type and device numbers.
func statDevice(t *testing.T, p string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return fmt.Sprintf("type %o, device %d:%d", st.Mode&unix.S_IFMT, unix.Major(st.Rdev), unix.Minor(st.Rdev))
}

// restoreDevFull puts /dev/full back if a broken imagegen replaced it, so
// that a failing run does not break the machine.
func restoreDevFull() {
	var st unix.Stat_t
	if err := unix.Lstat("/dev/full", &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR {
		return
	}
	os.Remove("/dev/full")
	if err := unix.Mknod("/dev/full", unix.S_IFCHR|0o666, int(unix.Mkdev(1, 7))); err == nil {
		os.Chmod("/dev/full", 0o666)
	}
}

// loopDevice attaches a new loop device (with partition scanning) to a
// file of size bytes filled with fill, and detaches it at the end. It
// skips unless root with loop devices.
func loopDevice(t *testing.T, size int64, fill byte) string {
	t.Helper()
	return loopDeviceWith(t, bytes.Repeat([]byte{fill}, int(size)))
}

// loopDeviceWith is loopDevice on a file holding data.
func loopDeviceWith(t *testing.T, data []byte) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to attach a loop device")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("losetup not found (util-linux)")
	}
	if f, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0); err != nil {
		t.Skipf("loop devices unavailable: %v", err)
	} else {
		f.Close()
	}
	backing := filepath.Join(t.TempDir(), "backing")
	mustWrite(t, backing, data, 0o600)
	out, err := exec.Command("losetup", "-f", "--show", "-P", backing).CombinedOutput()
	if err != nil {
		t.Skipf("losetup -f --show -P %s: %v\n%s", backing, err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		restoreNode(dev)
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v\n%s", dev, err, out)
		}
	})
	return dev
}

// restoreNode makes /dev/loopN a block device again if a broken imagegen
// replaced it with a file.
func restoreNode(dev string) {
	var st unix.Stat_t
	if err := unix.Lstat(dev, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK {
		return
	}
	var n uint32
	if _, err := fmt.Sscanf(filepath.Base(dev), "loop%d", &n); err != nil {
		return
	}
	os.Remove(dev)
	unix.Mknod(dev, unix.S_IFBLK|0o660, int(unix.Mkdev(7, n)))
}

// readDevice reads the first n bytes of a device (or file).
func readDevice(t *testing.T, dev string, n int) []byte {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatalf("read %s: %v", dev, err)
	}
	return b
}

// TestOutputBlockDevice writes every output to a loop device, given as
// a node made in a temporary directory and as /dev/loopN: the node is
// still the same block device afterwards, and the device starts with the
// bytes a plain file gets.
func TestOutputBlockDevice(t *testing.T) {
	t.Parallel()
	_, cases := outputCases(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := c.reference(t)
			for _, how := range []string{"mknod", "dev"} {
				t.Run(how, func(t *testing.T) {
					dev := loopDevice(t, 64<<20, 0xAA)
					p := dev
					if how == "mknod" {
						var st unix.Stat_t
						if err := unix.Stat(dev, &st); err != nil {
							t.Fatal(err)
						}
						p = filepath.Join(t.TempDir(), "disk")
						if err := unix.Mknod(p, unix.S_IFBLK|0o600, int(st.Rdev)); err != nil {
							t.Fatalf("mknod %s: %v", p, err)
						}
					}
					before := statDevice(t, p)
					dir := t.TempDir()
					res := runCLI(t, cliOpts{dir: dir, env: []string{"SOURCE_DATE_EPOCH=1234567890"}}, c.args(p, dir)...)
					if res.code != 0 {
						t.Fatalf("exit %d\n%s", res.code, res.stderr)
					}
					if after := statDevice(t, p); after != before {
						t.Fatalf("%s was %s, is now %s", p, before, after)
					}
					if got := readDevice(t, dev, len(want)); !bytes.Equal(got, want) {
						t.Errorf("%s does not start with the output (%s)", dev, isoFirstDiff(want, got))
					}
					assertNoTemp(t, filepath.Dir(p))
				})
			}
		})
	}
}
