// Package blockdev is what writing an image onto a block device (a USB
// stick) needs from the system: whether the device is in use (mounted, a
// partition of it mounted, used as swap, held by device mapper), its size,
// re-reading its partition table, and dropping cached pages so that a
// read-back check reads the device itself.
//
// The decisions are portable functions of plain data (InUse); reading that
// data from sysfs, /proc/self/mountinfo and /proc/swaps, and the ioctls,
// are Linux only.
package blockdev

import (
	"fmt"
	"strings"

	"github.com/nixlive/nixlive/internal/bytesize"
)

// Dev is a block device or a partition: its name in /dev and its numbers.
type Dev struct {
	Name         string // "loop3p1"
	Major, Minor uint32
}

// Path is the device's usual path.
func (d Dev) Path() string { return "/dev/" + d.Name }

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	Point  string
	Source string
	Dev    Dev  // the numbers of the mounted file system
	OnDev  *Dev // the numbers of Source when it is a block device
}

// Use is what the system does with a device and its partitions.
type Use struct {
	Mounts  []Mount
	Swaps   []Dev               // devices used as swap
	Holders map[string][]string // device name -> names of the devices built on it (dm-0, md0)
}

// InUse lists, one phrase each, why a device (the first of family, the rest
// being its partitions) must not be written: a member mounted or used as
// swap, or held by another device. Nothing means free.
func InUse(family []Dev, u Use) []string {
	byNum := map[[2]uint32]Dev{}
	for _, d := range family {
		byNum[[2]uint32{d.Major, d.Minor}] = d
	}
	var why []string
	for _, m := range u.Mounts {
		d, ok := byNum[[2]uint32{m.Dev.Major, m.Dev.Minor}]
		if !ok && m.OnDev != nil {
			d, ok = byNum[[2]uint32{m.OnDev.Major, m.OnDev.Minor}]
		}
		if ok {
			why = append(why, fmt.Sprintf("%s is mounted on %s", d.Path(), m.Point))
		}
	}
	for _, s := range u.Swaps {
		if d, ok := byNum[[2]uint32{s.Major, s.Minor}]; ok {
			why = append(why, fmt.Sprintf("%s is used as swap", d.Path()))
		}
	}
	for _, d := range family {
		if h := u.Holders[d.Name]; len(h) > 0 {
			why = append(why, fmt.Sprintf("%s is held by %s (device mapper, RAID, LVM or encryption)", d.Path(), strings.Join(h, ", ")))
		}
	}
	return why
}

// InUseError says that a device is in use, and how.
type InUseError struct {
	Path string
	Why  []string
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("%s is in use: %s; unmount it first (nothing was written)", e.Path, strings.Join(e.Why, "; "))
}

// TooSmallError says that an image does not fit on a device.
type TooSmallError struct {
	Path             string
	Size, ImageBytes int64
}

func (e *TooSmallError) Error() string {
	return fmt.Sprintf("%s is too small: %d bytes (%s), the image is %d bytes (%s); nothing was written",
		e.Path, e.Size, bytesize.Format(e.Size), e.ImageBytes, bytesize.Format(e.ImageBytes))
}

// CheckSize refuses a device smaller than the image.
func CheckSize(path string, size, image int64) error {
	if size < image {
		return &TooSmallError{Path: path, Size: size, ImageBytes: image}
	}
	return nil
}

// parseSwaps reads /proc/swaps: a header line, then the file name first on
// each line, with spaces and such escaped in octal as in mountinfo.
func parseSwaps(text string) []string {
	var names []string
	lines := strings.Split(text, "\n")
	for _, l := range lines[min(1, len(lines)):] {
		f := strings.Fields(l)
		if len(f) > 0 {
			names = append(names, unescapeOctal(f[0]))
		}
	}
	return names
}

func unescapeOctal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
