// Package atomicfile writes outputs so that a reader sees either the old file
// or the complete new one, never a partial file: data goes to a temporary
// file beside the target, which is renamed over it only on success.
//
// A symlink is written through, not replaced: the temporary file goes
// beside the link's final target and is renamed over that. A device (a
// USB stick, /dev/null, /dev/full) is written straight into, never
// replaced; a block device must not be in use (mounted, swap, held).
//
// Every temporary file and directory of the process is recorded, so that
// an interrupted run can remove them all (RemoveTemps), and temporary files
// left by a killed run are removed by the next one once older than
// StaleAge.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/nixlive/nixlive/internal/blockdev"
)

// File is where an output goes: a temporary file that becomes Path on
// Commit or, when Path is (or leads to) a device, the device itself.
type File struct {
	*os.File
	Path   string // as given
	Target string // Path with its symlinks followed: where the bytes land
	Device bool   // written in place: a block or character device
	done   bool
}

// Create starts a new output at path, with permissions perm.
func Create(path string, perm os.FileMode) (*File, error) {
	target, err := Resolve(path)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	fi, err := os.Stat(target)
	switch {
	case err == nil && fi.Mode()&fs.ModeDevice != 0:
		return openDevice(path, target, fi)
	case err == nil && fi.IsDir():
		return nil, fmt.Errorf("create %s: is a directory", describe(path, target))
	case err == nil && !fi.Mode().IsRegular():
		return nil, fmt.Errorf("create %s: is a %s, not a file or a device", describe(path, target), typeName(fi.Mode()))
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	removeStale(dir)
	f, err := os.CreateTemp(dir, "."+base+tempInfix+"*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	register(f.Name())
	if err := f.Chmod(perm); err != nil {
		f.Close()
		removeTemp(f.Name())
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return &File{File: f, Path: path, Target: target}, nil
}

// openDevice opens a device to write into. A block device is checked
// for use first, then opened exclusively (the kernel refuses a mounted
// one too).
func openDevice(path, target string, fi fs.FileInfo) (*File, error) {
	flags := os.O_RDWR
	if fi.Mode()&fs.ModeCharDevice == 0 {
		if err := blockdev.CheckUnused(target); err != nil {
			return nil, fmt.Errorf("create %s: %w", describe(path, target), err)
		}
		flags |= syscall.O_EXCL
	}
	f, err := os.OpenFile(target, flags, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", describe(path, target), err)
	}
	return &File{File: f, Path: path, Target: target, Device: true}, nil
}

// describe names an output by the path given and, when a link led
// elsewhere, where it led.
func describe(path, target string) string {
	if filepath.Clean(path) == filepath.Clean(target) {
		return path
	}
	return path + " (-> " + target + ")"
}

func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "special file"
}

// Resolve follows the symlinks of path (a chain of them, relative or
// absolute) to the file an output at path must land on, which need not
// exist yet.
func Resolve(path string) (string, error) {
	p := path
	for range 40 {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return p, nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
		link, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(link) {
			// The link is relative to the real directory it sits in,
			// which lexical joining gets wrong when that is a link.
			dir, err := filepath.EvalSymlinks(filepath.Dir(p))
			if err != nil {
				return "", err
			}
			link = filepath.Join(dir, link)
		}
		p = link
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", path)
}

// The methods that do I/O name the output as given, not the temporary file.

func (f *File) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	return n, f.rename(err)
}

func (f *File) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	return n, f.rename(err)
}

func (f *File) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	return n, f.rename(err)
}

func (f *File) ReadFrom(r io.Reader) (int64, error) {
	n, err := f.File.ReadFrom(r)
	return n, f.rename(err)
}

// Truncate sets a file's size; a device keeps its own.
func (f *File) Truncate(size int64) error {
	if f.Device {
		return nil
	}
	return f.rename(f.File.Truncate(size))
}

func (f *File) rename(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == f.File.Name() {
		return &fs.PathError{Op: pe.Op, Path: f.Path, Err: pe.Err}
	}
	return err
}

// Commit flushes the data to disk and renames it into place.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("commit %s: already finished", f.Path)
	}
	f.done = true
	if f.Device {
		err := f.Sync()
		if errors.Is(err, syscall.EINVAL) && f.Mode()&fs.ModeCharDevice != 0 {
			err = nil // /dev/null and the like cannot sync
		}
		if cerr := f.File.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", f.Path, err)
		}
		return nil
	}
	tmp := f.Name()
	defer unregister(tmp)
	if err := f.Sync(); err != nil {
		f.File.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	if err := f.File.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	if err := os.Rename(tmp, f.Target); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	return nil
}

// Mode is the mode of what is written: the device's, or a regular file's.
func (f *File) Mode() fs.FileMode {
	fi, err := f.File.Stat()
	if err != nil {
		return 0
	}
	return fi.Mode()
}

// Abort removes the temporary file (a device is only closed: what was
// written stays); after Commit it does nothing, so it can be deferred.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	if !f.Device {
		removeTemp(f.Name())
	}
}

// WriteFile writes data to path atomically.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Commit()
}
