package blockdev

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// sysRoot is where sysfs is mounted.
const sysRoot = "/sys"

// CheckUnused refuses a block device (path, or where it leads) that is in
// use: mounted, with a partition mounted, used as swap, or held by another
// device. The error says which and where.
func CheckUnused(path string) error {
	d, err := devOf(path)
	if err != nil {
		return err
	}
	fam, holders, err := family(sysRoot, d)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	u := Use{Holders: holders}
	if u.Mounts, err = mounts(); err != nil {
		return fmt.Errorf("%s: cannot tell whether it is mounted: %w", path, err)
	}
	u.Swaps = swaps()
	if why := InUse(fam, u); len(why) > 0 {
		return &InUseError{Path: path, Why: why}
	}
	return nil
}

// devOf is the block device at path.
func devOf(path string) (Dev, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return Dev{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return Dev{}, fmt.Errorf("%s: not a block device", path)
	}
	return Dev{Name: filepath.Base(path), Major: unix.Major(st.Rdev), Minor: unix.Minor(st.Rdev)}, nil
}

// family reads from sysfs the device d's kernel name, its partitions and
// what holds each of them (sys/dev/block/MAJ:MIN is a link to the device's
// directory, with a directory per partition and a holders directory).
func family(sys string, d Dev) ([]Dev, map[string][]string, error) {
	dir, err := filepath.EvalSymlinks(filepath.Join(sys, "dev/block", fmt.Sprintf("%d:%d", d.Major, d.Minor)))
	if err != nil {
		return nil, nil, fmt.Errorf("not known to sysfs: %w", err)
	}
	d.Name = filepath.Base(dir)
	fam := []Dev{d}
	holders := map[string][]string{d.Name: readNames(filepath.Join(dir, "holders"))}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		sub := filepath.Join(dir, e.Name())
		if _, err := os.Stat(filepath.Join(sub, "partition")); err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(sub, "dev"))
		if err != nil {
			return nil, nil, err
		}
		p := Dev{Name: e.Name()}
		if _, err := fmt.Sscanf(strings.TrimSpace(string(raw)), "%d:%d", &p.Major, &p.Minor); err != nil {
			return nil, nil, fmt.Errorf("%s: %q: not MAJOR:MINOR", filepath.Join(sub, "dev"), raw)
		}
		fam = append(fam, p)
		holders[p.Name] = readNames(filepath.Join(sub, "holders"))
	}
	return fam, holders, nil
}

func readNames(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// mounts reads /proc/self/mountinfo, with the device numbers of each
// source that is a block device (btrfs, for one, shows other numbers).
func mounts() ([]Mount, error) {
	infos, err := mountinfo.GetMounts(nil)
	if err != nil {
		return nil, err
	}
	var ms []Mount
	for _, i := range infos {
		m := Mount{Point: i.Mountpoint, Source: i.Source, Dev: Dev{Major: uint32(i.Major), Minor: uint32(i.Minor)}}
		if strings.HasPrefix(i.Source, "/") {
			if d, err := devOf(i.Source); err == nil {
				m.OnDev = &d
			}
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// swaps are the block devices /proc/swaps lists.
func swaps() []Dev {
	raw, err := os.ReadFile("/proc/swaps")
	if err != nil {
		return nil
	}
	var ds []Dev
	for _, name := range parseSwaps(string(raw)) {
		if d, err := devOf(name); err == nil {
			ds = append(ds, d)
		}
	}
	return ds
}

// IsBlock says whether path is (or leads to) a block device.
func IsBlock(path string) bool {
	_, err := devOf(path)
	return err == nil
}

// Size is the size in bytes of the block device open as f.
func Size(f *os.File) (int64, error) {
	n, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", f.Name(), err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("size of %s: %w", f.Name(), err)
	}
	return n, nil
}

// ErrNoPartitions is what RereadPartitions returns for a device that has
// no partition table to re-read (a loop device without partition scanning).
var ErrNoPartitions = errors.New("the device does not take partitions")

// RereadPartitions asks the kernel to read the partition table of the
// block device open as f again (BLKRRPART), so that the partitions of a
// newly written image appear.
func RereadPartitions(f *os.File) error {
	err := unix.IoctlSetInt(int(f.Fd()), unix.BLKRRPART, 0)
	if errors.Is(err, unix.EINVAL) {
		return ErrNoPartitions
	}
	if err != nil {
		return fmt.Errorf("re-read the partition table of %s: %w", f.Name(), err)
	}
	return nil
}

// DropCache drops the cached pages of f, a synced file or block device,
// so that reading it again reads the medium.
func DropCache(f *os.File) {
	fd := int(f.Fd())
	_ = unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)
	if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0 {
		_ = unix.IoctlSetInt(fd, unix.BLKFLSBUF, 0) // root only; fadvise did most of it
	}
}
