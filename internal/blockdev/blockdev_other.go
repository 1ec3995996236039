//go:build !linux

package blockdev

import (
	"errors"
	"io"
	"os"
)

var errUnsupported = errors.New("writing to block devices is supported on Linux only")

// CheckUnused refuses every block device off Linux.
func CheckUnused(path string) error { return errUnsupported }

// IsBlock says whether path is (or leads to) a block device.
func IsBlock(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0
}

// Size is the size of the file open as f.
func Size(f *os.File) (int64, error) {
	n, err := f.Seek(0, io.SeekEnd)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	return n, err
}

// ErrNoPartitions is what RereadPartitions returns off Linux.
var ErrNoPartitions = errors.New("the device does not take partitions")

// RereadPartitions does nothing off Linux.
func RereadPartitions(f *os.File) error { return ErrNoPartitions }

// DropCache does nothing off Linux.
func DropCache(f *os.File) {}
