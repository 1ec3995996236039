package imagegen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/nixlive/nixlive/imagegen/progress"
	"github.com/nixlive/nixlive/internal/atomicfile"
	"github.com/nixlive/nixlive/internal/blockdev"
)

// ImageWrite copies a finished image ("imagegen write", and "imagegen build
// -o /dev/sdX") onto a block device, such as a USB stick, or into a file.
// A symlink is followed. A block device is written in place, after checks
// that it is not in use and is large enough, so that nothing is written
// to one that would be left half-written; then it is synced and its
// partition table re-read. A file is written to a temporary file renamed
// into place. Either is read back and compared unless NoVerify.
type ImageWrite struct {
	Source, Dest string
	NoVerify     bool
	Progress     *os.File // shows progress when a terminal
}

// WriteResult says what was written where.
type WriteResult struct {
	Target    string // Dest with its symlinks followed
	Device    bool   // a block device
	Bytes     int64
	Verified  bool
	Unchecked string // why it was not verified
	// Partitions says how re-reading a device's partition table went
	// ("" for a file).
	Partitions string
}

// copyChunk is the unit of copying and comparing.
const copyChunk = 4 << 20

// Write copies Source to Dest.
func (iw *ImageWrite) Write(ctx context.Context) (*WriteResult, error) {
	src, err := os.Open(iw.Source)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	sfi, err := src.Stat()
	if err != nil {
		return nil, err
	}
	if !sfi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file: the image to write must be a file", iw.Source)
	}
	target, err := atomicfile.Resolve(iw.Dest)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", iw.Dest, err)
	}
	dfi, err := os.Stat(target)
	if err == nil && os.SameFile(sfi, dfi) {
		return nil, fmt.Errorf("%s and %s are the same file", iw.Source, iw.Dest)
	}
	res := &WriteResult{Target: target, Bytes: sfi.Size()}
	switch {
	case err == nil && dfi.Mode()&fs.ModeDevice != 0 && dfi.Mode()&fs.ModeCharDevice == 0:
		res.Device = true
		err = iw.toDevice(ctx, src, target, res)
	default:
		err = iw.toFile(ctx, src, res)
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// toDevice writes src onto the block device target: refused, before a byte
// is written, when in use or too small.
func (iw *ImageWrite) toDevice(ctx context.Context, src *os.File, target string, res *WriteResult) error {
	if err := blockdev.CheckUnused(target); err != nil {
		return err
	}
	dev, err := os.OpenFile(target, os.O_RDWR|syscall.O_EXCL, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", iw.Dest, err)
	}
	defer dev.Close()
	size, err := blockdev.Size(dev)
	if err != nil {
		return err
	}
	if err := blockdev.CheckSize(iw.Dest, size, res.Bytes); err != nil {
		return err
	}
	n, err := copyImage(ctx, dev, src, res.Bytes, iw.meter("write "+iw.Dest, res.Bytes))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: interrupted after %d of %d bytes: the device holds a partial image", iw.Dest, n, res.Bytes)
		}
		return fmt.Errorf("write %s: %w after %d of %d bytes (the device holds a partial image)", iw.Dest, unwrapPath(err), n, res.Bytes)
	}
	if err := dev.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", iw.Dest, unwrapPath(err))
	}
	switch err := blockdev.RereadPartitions(dev); {
	case err == nil:
		res.Partitions = "partition table re-read"
	case errors.Is(err, blockdev.ErrNoPartitions):
		res.Partitions = "no partition table re-read: " + err.Error()
	default:
		res.Partitions = err.Error() + " (unplug and replug it to see the new partitions)"
	}
	if iw.NoVerify {
		res.Unchecked = "--no-verify"
		return nil
	}
	blockdev.DropCache(dev)
	if err := verify(ctx, dev, src, res.Bytes, iw.Dest, iw.meter("verify "+iw.Dest, res.Bytes)); err != nil {
		return err
	}
	res.Verified = true
	return nil
}

// toFile copies src to a file (or a character device) at Dest, atomically.
func (iw *ImageWrite) toFile(ctx context.Context, src *os.File, res *WriteResult) error {
	f, err := atomicfile.Create(iw.Dest, 0o644)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := copyImage(ctx, f, src, res.Bytes, iw.meter("write "+iw.Dest, res.Bytes)); err != nil {
		return err
	}
	switch {
	case iw.NoVerify:
		res.Unchecked = "--no-verify"
		return f.Commit()
	case f.Device:
		res.Unchecked = "a character device cannot be read back"
		return f.Commit()
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", iw.Dest, unwrapPath(err))
	}
	blockdev.DropCache(f.File)
	if err := verify(ctx, f, src, res.Bytes, iw.Dest, iw.meter("verify "+iw.Dest, res.Bytes)); err != nil {
		return err
	}
	res.Verified = true
	return f.Commit()
}

func (iw *ImageWrite) meter(label string, total int64) *progress.Meter {
	return progress.New(iw.Progress, label, total)
}

// copyImage copies n bytes of src to the start of dst, checking ctx
// between chunks, and returns how many it wrote.
func copyImage(ctx context.Context, dst io.WriterAt, src io.ReaderAt, n int64, m *progress.Meter) (int64, error) {
	defer m.Done()
	buf := make([]byte, copyChunk)
	var off int64
	for off < n {
		if err := ctx.Err(); err != nil {
			return off, err
		}
		b := buf[:min(int64(len(buf)), n-off)]
		if _, err := src.ReadAt(b, off); err != nil {
			return off, err
		}
		if _, err := dst.WriteAt(b, off); err != nil {
			return off, err
		}
		off += int64(len(b))
		m.Set(off)
	}
	return off, nil
}

// verify reads back the first n bytes of got and compares them with want.
func verify(ctx context.Context, got, want io.ReaderAt, n int64, name string, m *progress.Meter) error {
	defer m.Done()
	a, b := make([]byte, copyChunk), make([]byte, copyChunk)
	for off := int64(0); off < n; {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := min(int64(len(a)), n-off)
		if _, err := want.ReadAt(a[:k], off); err != nil {
			return fmt.Errorf("verify %s: %w", name, err)
		}
		if _, err := got.ReadAt(b[:k], off); err != nil {
			return fmt.Errorf("verify %s: read back: %w", name, unwrapPath(err))
		}
		if !bytes.Equal(a[:k], b[:k]) {
			i := int64(0)
			for a[i] == b[i] {
				i++
			}
			return fmt.Errorf("verify %s: what was written differs from the image at byte %d", name, off+i)
		}
		off += k
		m.Set(off)
	}
	return nil
}

// unwrapPath drops the path of an *fs.PathError, for messages that name
// the output themselves.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
