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

	"github.com/nixlive/nixlive/imagegen/persist"
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
//
// A device or file whose ISO has a nixlive-rw partition after it
// ("imagegen persist") keeps it: the new ISO is refused when it would
// reach into it; otherwise it is written in place before the partition
// (its first sectors, the MBR and GPT, last), and the partition is
// entered again in its tables where it was, its file system untouched.
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
	// Kept is the nixlive-rw partition kept after the ISO, nil if none.
	Kept *persist.Partition
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
	case err == nil && dfi.Mode().IsRegular():
		var done bool
		if done, err = iw.toPersistedFile(ctx, src, target, res); err == nil && !done {
			err = iw.toFile(ctx, src, res)
		}
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
	want, err := iw.inPlace(ctx, dev, src, size, res)
	if err != nil {
		return err
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
	if err := verify(ctx, dev, want, res.Bytes, iw.Dest, iw.meter("verify "+iw.Dest, res.Bytes)); err != nil {
		return err
	}
	res.Verified = true
	return nil
}

// inPlace writes src over the start of dst (a device, or a file holding a
// persisted ISO) of size bytes and syncs it, keeping a nixlive-rw
// partition found there. It returns what dst should now start with.
func (iw *ImageWrite) inPlace(ctx context.Context, dst *os.File, src *os.File, size int64, res *WriteResult) (io.ReaderAt, error) {
	kept, err := persist.FindKept(dst, iw.Dest, size)
	if err != nil {
		return nil, err
	}
	from := int64(0)
	if kept != nil {
		if err := kept.Fits(res.Bytes); err != nil {
			return nil, err
		}
		from = min(persist.HeadBytes, res.Bytes)
	}
	n, err := copyImage(ctx, dst, src, from, res.Bytes, iw.meter("write "+iw.Dest, res.Bytes))
	if err != nil {
		what := "a partial image"
		if kept != nil {
			what = "a partial image before its " + persist.Label + " partition, still in its old tables"
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: interrupted after %d of %d bytes: it holds %s", iw.Dest, n, res.Bytes, what)
		}
		return nil, fmt.Errorf("write %s: %w after %d of %d bytes (it holds %s)", iw.Dest, unwrapPath(err), n, res.Bytes, what)
	}
	if err := dst.Sync(); err != nil {
		return nil, fmt.Errorf("sync %s: %w", iw.Dest, unwrapPath(err))
	}
	if kept == nil {
		return src, nil
	}
	// From here on, ctx is not looked at: the tables are written whole.
	p, writes, err := kept.Reenter(dst, src)
	if err != nil {
		return nil, err
	}
	res.Kept = &p
	return overlay{src, writes}, nil
}

// toPersistedFile writes src in place into the file target when it holds
// an ISO with a nixlive-rw partition, and says whether it did.
func (iw *ImageWrite) toPersistedFile(ctx context.Context, src *os.File, target string, res *WriteResult) (bool, error) {
	f, err := os.OpenFile(target, os.O_RDWR, 0)
	if err != nil {
		return false, nil // toFile says why
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	if kept, err := persist.FindKept(f, iw.Dest, fi.Size()); err != nil || kept == nil {
		return false, err
	}
	want, err := iw.inPlace(ctx, f, src, fi.Size(), res)
	if err != nil {
		return true, err
	}
	if iw.NoVerify {
		res.Unchecked = "--no-verify"
		return true, nil
	}
	blockdev.DropCache(f)
	if err := verify(ctx, f, want, res.Bytes, iw.Dest, iw.meter("verify "+iw.Dest, res.Bytes)); err != nil {
		return true, err
	}
	res.Verified = true
	return true, nil
}

// overlay reads src with writes laid over it.
type overlay struct {
	src    io.ReaderAt
	writes []persist.Write
}

func (o overlay) ReadAt(b []byte, off int64) (int, error) {
	n, err := o.src.ReadAt(b, off)
	for _, w := range o.writes {
		lo, hi := max(off, w.Off), min(off+int64(n), w.Off+int64(len(w.Data)))
		if lo < hi {
			copy(b[lo-off:hi-off], w.Data[lo-w.Off:hi-w.Off])
		}
	}
	return n, err
}

// toFile copies src to a file (or a character device) at Dest, atomically.
func (iw *ImageWrite) toFile(ctx context.Context, src *os.File, res *WriteResult) error {
	f, err := atomicfile.Create(iw.Dest, 0o644)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := copyImage(ctx, f, src, 0, res.Bytes, iw.meter("write "+iw.Dest, res.Bytes)); err != nil {
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

// copyImage copies bytes from to n of src to the same place in dst,
// checking ctx between chunks, and returns where it got to.
func copyImage(ctx context.Context, dst io.WriterAt, src io.ReaderAt, from, n int64, m *progress.Meter) (int64, error) {
	defer m.Done()
	buf := make([]byte, copyChunk)
	off := from
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
