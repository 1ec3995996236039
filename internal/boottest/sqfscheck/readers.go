package sqfscheck

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// RequireMount skips the test unless CanMount says yes.
func RequireMount(t interface {
	Helper()
	Skip(...any)
}) {
	t.Helper()
	if ok, why := CanMount(); !ok {
		t.Skip(why)
	}
}

// CanMount reports whether MountAndDiff can work here, and if not, why:
// it needs root (with CAP_SYS_ADMIN), usable loop devices
// (/dev/loop-control), mount/umount, and squashfs support in the kernel
// (it tries `modprobe -q squashfs` if /proc/filesystems lacks it).
func CanMount() (bool, string) { return canMount() }

var canMount = sync.OnceValues(func() (bool, string) {
	if euid := os.Geteuid(); euid != 0 {
		return false, fmt.Sprintf("mounting squashfs needs root (running as euid %d)", euid)
	}
	if ok, known := hasCapSysAdmin(); known && !ok {
		return false, "mounting squashfs needs CAP_SYS_ADMIN, which this root process lacks (unprivileged container?)"
	}
	f, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return false, fmt.Sprintf("loop devices unavailable: %v (container without loop devices?)", err)
	}
	f.Close()
	for _, tool := range []string{"mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			return false, fmt.Sprintf("%s not found", tool)
		}
	}
	if !kernelHasSquashfs() {
		if modprobe, err := exec.LookPath("modprobe"); err == nil {
			_ = exec.Command(modprobe, "-q", "squashfs").Run()
		}
		if !kernelHasSquashfs() {
			return false, "kernel has no squashfs support (not in /proc/filesystems, modprobe squashfs did not help)"
		}
	}
	return true, ""
})

func kernelHasSquashfs() bool {
	data, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[len(f)-1] == "squashfs" {
			return true
		}
	}
	return false
}

// hasCapSysAdmin reads CapEff from /proc/self/status; known is false if it
// could not be read.
func hasCapSysAdmin() (ok, known bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return false, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, found := strings.CutPrefix(sc.Text(), "CapEff:"); found {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return false, false
			}
			const capSysAdmin = 21
			return caps&(1<<capSysAdmin) != 0, true
		}
	}
	return false, false
}

// MountAndDiff loop-mounts image read-only and compares it with srcDir:
// by walking both trees (paths, types, modes, sizes, link targets, mtimes
// to the second, contents, skipping holes both report with SEEK_DATA) and
// with `diff -r --no-dereference` (files under 64 MiB: diff is slow).
// Owners are not compared (CompareListing does). The image is always
// unmounted, lazily if need be. Call CanMount first to skip cleanly.
func MountAndDiff(image, srcDir string) (err error) {
	if ok, why := CanMount(); !ok {
		return errors.New("testtree: cannot mount: " + why)
	}
	image, err = filepath.Abs(image)
	if err != nil {
		return err
	}
	mnt, err := os.MkdirTemp("", "testtree-mnt-")
	if err != nil {
		return err
	}
	if out, err := exec.Command("mount", "-t", "squashfs", "-o", "loop,ro", image, mnt).CombinedOutput(); err != nil {
		os.Remove(mnt)
		return fmt.Errorf("mount -t squashfs -o loop,ro %s: %w\n%s(see dmesg for the kernel's complaint)", image, err, out)
	}
	defer func() {
		if uerr := unmount(mnt); uerr != nil {
			err = errors.Join(err, uerr)
			return
		}
		if rerr := os.Remove(mnt); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	return diffTrees(srcDir, mnt, "mounted "+filepath.Base(image))
}

func unmount(mnt string) error {
	var out []byte
	var err error
	for range 5 {
		if out, err = exec.Command("umount", mnt).CombinedOutput(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond) // EBUSY right after use happens
	}
	if lout, lerr := exec.Command("umount", "-l", mnt).CombinedOutput(); lerr != nil {
		return fmt.Errorf("umount %s: %v: %s; umount -l: %v: %s", mnt, err, out, lerr, lout)
	}
	return fmt.Errorf("umount %s: %v: %s (lazily unmounted instead)", mnt, err, out)
}

// ExtractAndDiff extracts image with `unsquashfs -d OUT` into a temporary
// directory and compares the result with srcDir like MountAndDiff does
// (contents, types, permission bits, symlink targets, modification times,
// plus `diff -r --no-dereference`). It needs no root. Owners are not
// compared (a non-root unsquashfs cannot set them), and as non-root
// unsquashfs drops setuid/setgid bits, which then show up as differences;
// extended attributes are not extracted. Device nodes cannot be extracted
// without root.
func ExtractAndDiff(image, srcDir string) error {
	tmp, err := os.MkdirTemp("", "testtree-extract-")
	if err != nil {
		return err
	}
	defer RemoveAll(tmp)
	out := filepath.Join(tmp, "root")
	// As non-root, unsquashfs applies the umask to regular files' modes
	// (and drops setuid/setgid), so run it with umask 0. The umask is
	// per process; setting it here would race with other goroutines.
	if _, err := run("sh", "-c", `umask 0 && exec unsquashfs "$@"`, "unsquashfs",
		"-n", "-no-xattrs", "-d", out, image); err != nil {
		return err
	}
	return diffTrees(srcDir, out, "extracted "+filepath.Base(image))
}

// bigFile is the size from which files are left out of diff -r and only
// compared in Go (GNU diff is about 10× slower than a plain read).
const bigFile = 64 << 20

// diffTrees compares the source tree with a reader's view of the image.
func diffTrees(src, got, what string) error {
	srcEntries, err := ListDir(src)
	if err != nil {
		return err
	}
	gotEntries, err := ListDir(got)
	if err != nil {
		return err
	}
	var cmp comparer
	diffs := compareEntries(srcEntries, gotEntries, checks{
		uid: -1, gid: -1,
		mtime: func(s, i time.Time) bool { return s.Unix() == i.Unix() },
		content: func(rel string, size int64) error {
			return cmp.same(filepath.Join(src, filepath.FromSlash(rel)), filepath.Join(got, filepath.FromSlash(rel)), size)
		},
	})
	var errs []error
	if err := diffError(fmt.Sprintf("%s differs from %s", what, src), diffs); err != nil {
		errs = append(errs, err)
	}
	var exclude []string
	for _, e := range srcEntries {
		if e.Mode.IsRegular() && e.Size >= bigFile {
			exclude = append(exclude, globEscape(filepath.Base(e.Path)))
		}
	}
	if err := diffR(src, got, exclude); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", what, err))
	}
	return errors.Join(errs...)
}

// diffR runs `diff -r --no-dereference -q` and reports what it found.
func diffR(a, b string, exclude []string) error {
	args := []string{"-r", "--no-dereference", "-q"}
	for _, x := range exclude {
		args = append(args, "-x", x)
	}
	args = append(args, a, b)
	cmd := exec.Command("diff", args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return fmt.Errorf("diff -r --no-dereference found differences:\n%s", head(out.String(), MaxDiffs))
	default:
		return fmt.Errorf("diff -r --no-dereference %s %s: %v\n%s", a, b, err, head(out.String(), MaxDiffs))
	}
}

// globEscape quotes a name for diff -x (fnmatch patterns).
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// comparer compares files, reusing its buffers.
type comparer struct{ bufA, bufB []byte }

// same compares two files of the given size byte for byte. Ranges that
// are holes in both files (SEEK_DATA) are skipped: reading a never-cached
// 4 GiB hole costs seconds on some file systems. Where SEEK_DATA is not
// supported, as on squashfs, a file is all data and is read in full.
func (c *comparer) same(a, b string, size int64) error {
	fa, err := os.Open(a)
	if err != nil {
		return err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return err
	}
	defer fb.Close()
	const chunk = 1 << 20
	if c.bufA == nil {
		c.bufA, c.bufB = make([]byte, chunk), make([]byte, chunk)
	}
	for off := int64(0); ; {
		off = min(nextData(fa, off, size), nextData(fb, off, size))
		if off >= size {
			break
		}
		n := int(min(chunk, size-off))
		bufA, bufB := c.bufA[:n], c.bufB[:n]
		if _, err := fa.ReadAt(bufA, off); err != nil {
			return fmt.Errorf("reading source at %d: %w", off, err)
		}
		if _, err := fb.ReadAt(bufB, off); err != nil {
			return fmt.Errorf("reading image copy at %d: %w", off, err)
		}
		if !bytes.Equal(bufA, bufB) {
			i := 0
			for bufA[i] == bufB[i] {
				i++
			}
			return fmt.Errorf("content differs at byte %d", off+int64(i))
		}
		off += int64(n)
	}
	// Both must end at size (they may have changed since they were listed).
	var one [1]byte
	if n, _ := fa.ReadAt(one[:], size); n != 0 {
		return fmt.Errorf("source is longer than %d bytes", size)
	}
	if n, _ := fb.ReadAt(one[:], size); n != 0 {
		return fmt.Errorf("image copy is longer than %d bytes", size)
	}
	return nil
}

// nextData returns the start of the first data at or after off, size if
// there is none, or off if the file system cannot tell.
func nextData(f *os.File, off, size int64) int64 {
	if off >= size {
		return size
	}
	next, err := f.Seek(off, unix.SEEK_DATA)
	switch {
	case errors.Is(err, syscall.ENXIO):
		return size
	case err != nil || next < off:
		return off
	}
	return min(next, size)
}
