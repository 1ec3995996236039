package stage1

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/internal/blkid"
	"github.com/nixlive/nixlive/live"
)

// Device is a block device as stage 1 saw it while looking for the medium.
type Device struct {
	Name string
	Size int64
	FS   blkid.FS
	Err  string
}

// blockDevices lists /sys/class/block, without loop and RAM disks.
func blockDevices() []string {
	entries, err := os.ReadDir("/sys/class/block")
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, "loop") || strings.HasPrefix(n, "ram") || strings.HasPrefix(n, "zram") {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func probeDevice(name string) Device {
	d := Device{Name: name}
	if s, err := os.ReadFile("/sys/class/block/" + name + "/size"); err == nil {
		n, _ := strconv.ParseInt(strings.TrimSpace(string(s)), 10, 64)
		d.Size = n * 512
	}
	f, err := os.Open("/dev/" + name)
	if err != nil {
		d.Err = err.Error()
		return d
	}
	defer f.Close()
	fs, err := blkid.Probe(f)
	if err != nil {
		d.Err = err.Error()
	}
	d.FS = fs
	return d
}

// matches says whether d is the medium the command line asks for.
func (b *Boot) matches(d Device) bool {
	return matchRoot(b.Cmd.Root, d)
}

// matchRoot says whether d is the device r names (root=, persistence=).
func matchRoot(r live.Root, d Device) bool {
	switch {
	case r.Label != "":
		return d.FS.Label == r.Label
	case r.UUID != "":
		return strings.EqualFold(d.FS.UUID, r.UUID)
	case r.Device != "":
		return "/dev/"+d.Name == r.Device
	}
	return false
}

func (b *Boot) wanted() string {
	r := b.Cmd.Root
	switch {
	case b.Cmd.FindISO != "":
		return fmt.Sprintf("the ISO file %s (findiso=)", b.Cmd.FindISO)
	case r.Label != "":
		return fmt.Sprintf("a file system labelled %q", r.Label)
	case r.UUID != "":
		return fmt.Sprintf("a file system with UUID %s", r.UUID)
	case r.Device != "":
		return "the device " + r.Device
	}
	return "a medium, but the command line names none (root=LABEL=... or findiso=...)"
}

// findMedium scans the block devices until one matches, polling (and
// loading modules for new hardware) until live.timeout.
func (b *Boot) findMedium() (string, error) {
	if b.Cmd.Root == (live.Root{}) && b.Cmd.FindISO == "" {
		return "", fmt.Errorf("stage1: the kernel command line has no root= and no findiso=")
	}
	deadline := time.Now().Add(b.Cmd.Timeout)
	tried := map[string]bool{} // findiso: devices already looked into
	lastColdplug := time.Now()
	for poll := 0; ; poll++ {
		b.seen = b.seen[:0]
		for _, name := range blockDevices() {
			d := probeDevice(name)
			b.seen = append(b.seen, d)
			if b.Cmd.FindISO == "" && b.matches(d) {
				b.mark("medium found", fmt.Sprintf("/dev/%s %s %q after %d polls", name, d.FS.Type, d.FS.Label, poll))
				return "/dev/" + name, nil
			}
			if b.Cmd.FindISO != "" && d.FS.Type != "" && d.FS.Type != "squashfs" && !tried[name] {
				tried[name] = true
				if iso, ok := b.lookForISO(d); ok {
					b.mark("medium found", fmt.Sprintf("%s on /dev/%s after %d polls", b.Cmd.FindISO, name, poll))
					return iso, nil
				}
			}
		}
		if time.Now().After(deadline) {
			return "", &notFoundError{want: b.wanted(), timeout: b.Cmd.Timeout}
		}
		if time.Since(lastColdplug) > 500*time.Millisecond {
			b.coldplug()
			lastColdplug = time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mediumFSTypes are the file systems stage 1 mounts the medium with, as
// blkid names them: the ISO itself, or its files copied onto a stick
// formatted FAT or ext (UNetbootin style), which NixOS's stage 1 mounts too
// (its type is "auto").
var mediumFSTypes = []string{"iso9660", "vfat", "ext2", "ext3", "ext4"}

// mediumFSType is the file system type the medium is to be mounted with:
// the probed type of the device found, or for findiso of the ISO file. A
// type stage 1 cannot mount the medium with is an error that names it.
func (b *Boot) mediumFSType() (string, error) {
	var fs blkid.FS
	var err error
	if b.Cmd.FindISO != "" {
		fs, err = probeFile(b.device)
	} else {
		fs, err = b.seenFS(b.device)
	}
	if err != nil {
		return "", fmt.Errorf("stage1: the medium %s: %w", b.device, err)
	}
	t, err := checkMediumFS(b.device, fs.Type)
	if err == nil {
		b.loadFSModules(t)
	}
	return t, err
}

// loadFSModules loads from the initrd the modules a medium of type fsType
// needs, as the kernel's request_module would (fs-<type>, and FAT's
// character sets): stage 1 has no modprobe for the kernel to call. One
// the initrd lacks is logged; the mount then says what is missing.
func (b *Boot) loadFSModules(fsType string) {
	if b.kmod == nil {
		return
	}
	names := []string{"fs-" + fsType}
	if fsType == "vfat" {
		names = append(names, "nls_cp437", "nls_iso8859-1") // FAT's default codepage, our iocharset
	}
	for _, n := range names {
		files, err := b.kmod.Resolve(n)
		if err != nil {
			b.Log.Info("medium: module not in the initrd", "name", n, "err", err)
			continue
		}
		b.insmod(files)
	}
}

// checkMediumFS refuses a medium whose file system stage 1 cannot mount.
func checkMediumFS(device, fsType string) (string, error) {
	if !slices.Contains(mediumFSTypes, fsType) {
		what := "no file system stage 1 recognizes"
		if fsType != "" {
			what = "a " + fsType + " file system"
		}
		return "", fmt.Errorf("stage1: the medium %s holds %s; the live medium must be one of %s",
			device, what, strings.Join(mediumFSTypes, ", "))
	}
	return fsType, nil
}

// seenFS is what the scan probed on device (/dev/NAME).
func (b *Boot) seenFS(device string) (blkid.FS, error) {
	for _, d := range b.seen {
		if "/dev/"+d.Name == device {
			if d.Err != "" {
				return d.FS, errors.New(d.Err)
			}
			return d.FS, nil
		}
	}
	return probeFile(device)
}

func probeFile(p string) (blkid.FS, error) {
	f, err := os.Open(p)
	if err != nil {
		return blkid.FS{}, err
	}
	defer f.Close()
	return blkid.Probe(f)
}

type notFoundError struct {
	want    string
	timeout time.Duration
}

func (e *notFoundError) Error() string {
	return fmt.Sprintf("stage1: no medium found: waited %v for %s", e.timeout, e.want)
}

// lookForISO mounts d read-only and looks for the findiso file on it; the
// mount stays for the loop device that will carry the ISO.
func (b *Boot) lookForISO(d Device) (string, bool) {
	dir := path.Join(live.FindISOBase, d.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false
	}
	if err := unix.Mount("/dev/"+d.Name, dir, d.FS.Type, unix.MS_RDONLY, ""); err != nil {
		b.Log.Info("findiso: cannot mount", "device", d.Name, "fs", d.FS.Type, "err", err)
		return "", false
	}
	p, err := isoFileIn(dir, b.Cmd.FindISO)
	if err == nil {
		return p, true
	}
	b.Log.Info("findiso: not on this device", "device", d.Name, "err", err)
	unix.Unmount(dir, 0)
	return "", false
}

// isoFileIn finds the regular file name on the file system mounted on
// dir, without leaving it: ".." and symbolic links resolve as if dir were
// the root, and never cross into another mount (openat2's RESOLVE_IN_ROOT
// and RESOLVE_NO_XDEV). It returns the file's path under dir.
func isoFileIn(dir, name string) (string, error) {
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(root)
	fd, err := unix.Openat2(root, strings.TrimLeft(name, "/"), &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_XDEV | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return "", &os.PathError{Op: "findiso", Path: name, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", &os.PathError{Op: "findiso", Path: name, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return "", fmt.Errorf("findiso %s: not a regular file", name)
	}
	// Where it resolved to: the kernel's name of the open file.
	real, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return "", fmt.Errorf("findiso %s: %w", name, err)
	}
	base := dir
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		base = r
	}
	if !strings.HasPrefix(real, strings.TrimSuffix(base, "/")+"/") {
		return "", fmt.Errorf("findiso %s: resolves to %s, outside %s", name, real, dir)
	}
	return real, nil
}

// writeDeviceTable prints what was seen, for a medium that was not found.
func writeDeviceTable(w io.Writer, devs []Device) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tSIZE\tFILESYSTEM\tLABEL\tUUID\tNOTE")
	for _, d := range devs {
		fs := d.FS.Type
		if fs == "" {
			fs = "-"
		}
		fmt.Fprintf(tw, "/dev/%s\t%s\t%s\t%q\t%s\t%s\n", d.Name, humanSize(d.Size), fs, d.FS.Label, d.FS.UUID, d.Err)
	}
	if len(devs) == 0 {
		fmt.Fprintln(tw, "(no block devices: is the driver for the disk or CD controller in the initrd?)")
	}
	tw.Flush()
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%dK", n>>10)
	}
}
