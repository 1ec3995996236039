// Package persist adds the nixlive-rw partition ("imagegen persist") to a
// USB stick, or a disk image file, that holds the live ISO: an ext4 file
// system labelled nixlive-rw in the free space after the ISO, entered in
// the isohybrid MBR and GPT that imagegen/iso9660 wrote, so that BIOS and
// UEFI still boot the stick and ISO 9660 readers still read it.
//
// table.go reads and checks the tables and computes the new ones; this
// file finds the space, makes the file system (mkfs.ext4 from e2fsprogs,
// at the partition's offset) and writes the tables last.
package persist

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/internal/atomicfile"
	"github.com/nixlive/nixlive/internal/blockdev"
	"github.com/nixlive/nixlive/live"
)

// Label is the file system label and the GPT partition name: the one
// stage 1 looks for (live.PersistLabel).
const Label = live.PersistLabel

const (
	// DefaultFileSize is the partition's size in a file without Size.
	DefaultFileSize = 256 << 20
	// MinSize is the smallest partition made.
	MinSize = 16 << 20
)

// Options say where to add the partition.
type Options struct {
	// Target is a block device (a USB stick) or a file, holding the ISO
	// from its first byte; a symlink is followed.
	Target string
	// Size is the partition's size, rounded up to whole MiB. Zero means
	// DefaultFileSize for a file, and all the free space on a device.
	// A file grows to hold the partition and the backup GPT after it.
	Size int64

	hook func(stage string) // tests: called at "mkfs" and "tables"
}

// Result says what was done.
type Result struct {
	Target    string // with symlinks followed
	Device    bool
	Partition Partition
	// OldSize and NewSize are the medium's sizes before and after (a
	// file grows).
	OldSize, NewSize int64
	// Partitions says how re-reading a device's partition table went.
	Partitions string
}

// medium is the open target and what is known of it.
type medium struct {
	name   string // as given, for messages
	path   string
	device bool
	f      *os.File
	size   int64
	grown  bool // the file was made larger
	mkfs   bool // mkfs.ext4 ran (or was started)
}

// Add adds the nixlive-rw partition. Nothing is written to a medium that
// is refused. The file system is made first; then the tables are written,
// once ctx is checked one last time: an interrupted Add leaves the medium
// as it was (a grown file is cut back to its size) or fully done.
func Add(ctx context.Context, o Options) (*Result, error) {
	m, err := open(o.Target)
	if err != nil {
		return nil, err
	}
	defer func() { m.f.Close() }()
	t, err := ReadTables(m.f, m.name)
	if err != nil {
		return nil, err
	}
	if m.size < t.ISOBytes {
		return nil, &NotOurISOError{Path: m.name, Why: fmt.Sprintf("it is %s, shorter than the ISO it starts with (%s)", sizeString(m.size), sizeString(t.ISOBytes))}
	}
	start, n, diskSecs, err := m.place(t, o.Size)
	if err != nil {
		return nil, err
	}
	res := &Result{Target: m.path, Device: m.device, OldSize: m.size, NewSize: diskSecs * sectorSize}
	if m.device {
		res.NewSize = m.size
	}
	if err := m.makeFS(ctx, o, start, n, diskSecs); err != nil {
		m.rollback(start)
		return nil, err
	}
	if o.hook != nil {
		o.hook("tables")
	}
	if ctx.Err() != nil {
		m.rollback(start)
		return nil, fmt.Errorf("interrupted before the partition tables were written: %s is as it was", m.name)
	}
	// From here on, ctx is not looked at: the tables are written whole.
	p, writes := t.Add(start, n, diskSecs)
	if err := m.writeTables(writes); err != nil {
		return nil, err
	}
	if err := m.readBack(p, diskSecs); err != nil {
		return nil, err
	}
	res.Partition = p
	if m.device {
		res.Partitions = reread(m.f)
	}
	return res, nil
}

// open opens the target for writing: a device only when nothing uses it,
// exclusively, with 512-byte sectors.
func open(target string) (*medium, error) {
	path, err := atomicfile.Resolve(target)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	m := &medium{name: target, path: path}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	switch {
	case fi.Mode()&fs.ModeDevice != 0 && fi.Mode()&fs.ModeCharDevice == 0:
		m.device = true
		if err := blockdev.CheckUnused(path); err != nil {
			return nil, err
		}
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s: neither a block device nor a regular file; nothing was written", target)
	}
	if err := m.reopen(); err != nil {
		return nil, err
	}
	m.size = fi.Size()
	if m.device {
		if ss, err := unix.IoctlGetInt(int(m.f.Fd()), unix.BLKSSZGET); err == nil && ss != sectorSize {
			m.f.Close()
			return nil, fmt.Errorf("%s has %d-byte sectors: the ISO's GPT is for 512-byte sectors; nothing was written", target, ss)
		}
		if m.size, err = blockdev.Size(m.f); err != nil {
			m.f.Close()
			return nil, err
		}
	}
	return m, nil
}

// reopen opens the medium for reading and writing (a device exclusively).
func (m *medium) reopen() error {
	flags := os.O_RDWR
	if m.device {
		flags |= syscall.O_EXCL
	}
	f, err := os.OpenFile(m.path, flags, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w; nothing was written", m.name, unwrapPath(err))
	}
	m.f = f
	return nil
}

// SpaceError says that the partition does not fit.
type SpaceError struct {
	Path              string
	Free, Want, After int64
}

func (e *SpaceError) Error() string {
	want := "a " + Label + " partition needs at least " + sizeString(e.Want)
	if e.Want > MinSize {
		want = "the partition asked for is " + sizeString(e.Want)
	}
	return fmt.Sprintf("%s has too little space after the ISO (which ends at byte %d): %s free, %s; nothing was written",
		e.Path, e.After, sizeString(e.Free), want)
}

// place says where the partition goes: its first sector, its sectors, and
// the size of the medium in sectors once done.
func (m *medium) place(t *Tables, size int64) (start, n, diskSecs int64, err error) {
	start = t.FreeStart()
	if size != 0 && size < MinSize {
		return 0, 0, 0, fmt.Errorf("--size %s is too small: a %s partition needs at least %s; nothing was written", sizeString(size), Label, sizeString(MinSize))
	}
	mib := int64(alignSecs)
	want := (size + mib*sectorSize - 1) / (mib * sectorSize) * mib // sectors
	if !m.device {
		if want == 0 {
			want = DefaultFileSize / sectorSize
		}
		diskSecs = max(m.size/sectorSize, start+want+gptTail)
		if start+want > mbrMaxSecs {
			return 0, 0, 0, fmt.Errorf("%s: a partition ending beyond 2 TiB cannot be entered in the MBR; nothing was written", m.name)
		}
		return start, want, diskSecs, nil
	}
	diskSecs = m.size / sectorSize
	last := min(diskSecs-gptTail-1, mbrMaxSecs) // the last sector the partition may use
	free := max(last+1-start, 0)
	if want == 0 {
		want = free / mib * mib
		if want*sectorSize < MinSize {
			return 0, 0, 0, &SpaceError{Path: m.name, Free: free * sectorSize, Want: MinSize, After: t.ISOBytes}
		}
	}
	if want > free {
		return 0, 0, 0, &SpaceError{Path: m.name, Free: free * sectorSize, Want: want * sectorSize, After: t.ISOBytes}
	}
	return start, want, diskSecs, nil
}

// makeFS grows a file to its new size and makes the ext4 file system at
// the partition's offset. A device is closed meanwhile: mkfs.ext4 opens
// it exclusively.
func (m *medium) makeFS(ctx context.Context, o Options, start, n, diskSecs int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted: %s is as it was", m.name)
	}
	mkfs, err := findMkfs()
	if err != nil {
		return err
	}
	if !m.device && diskSecs*sectorSize > m.size {
		if err := m.f.Truncate(diskSecs * sectorSize); err != nil {
			return fmt.Errorf("grow %s to %s: %w; nothing was written", m.name, sizeString(diskSecs*sectorSize), unwrapPath(err))
		}
		m.grown = true
	}
	if o.hook != nil {
		o.hook("mkfs")
	}
	if m.device {
		m.f.Close()
	}
	m.mkfs = true
	cmd := exec.CommandContext(ctx, mkfs, "-q", "-F", "-L", Label,
		"-E", fmt.Sprintf("offset=%d,nodiscard,root_owner=0:0", start*sectorSize),
		m.path, fmt.Sprintf("%dk", n*sectorSize/1024))
	out, runErr := cmd.CombinedOutput()
	if m.device {
		if err := m.reopen(); err != nil {
			return err
		}
	}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted while making the file system: %s is as it was", m.name)
	case runErr != nil:
		return fmt.Errorf("%s on %s at byte %d: %v: %s; the partition tables were not changed", mkfs, m.name, start*sectorSize, runErr, out)
	}
	return nil
}

func findMkfs() (string, error) {
	if p, err := exec.LookPath("mkfs.ext4"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("mkfs.ext4 not found (install e2fsprogs); nothing was written")
}

// rollback undoes makeFS: a grown file is cut back to its size, and the
// start of a file system made on the old medium (a device, or a file
// larger than the ISO) is zeroed, so that no stray ext4 superblock is
// found there.
func (m *medium) rollback(start int64) {
	if m.f == nil {
		return
	}
	if m.grown {
		m.f.Truncate(m.size)
	}
	if off := start * sectorSize; m.mkfs && off < m.size {
		m.f.WriteAt(make([]byte, min(64<<10, m.size-off)), off)
	}
	m.f.Sync()
}

// writeTables writes the new tables, syncing after each step.
func (m *medium) writeTables(writes []Write) error {
	for _, w := range writes {
		if _, err := m.f.WriteAt(w.Data, w.Off); err != nil {
			return fmt.Errorf("write the partition tables of %s at byte %d: %w (the file system is made; run imagegen persist again once this is fixed)", m.name, w.Off, unwrapPath(err))
		}
		if err := m.f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", m.name, unwrapPath(err))
		}
	}
	return nil
}

// readBack reads the tables written and checks that they hold the
// partition, with a backup GPT header at the end of the medium.
func (m *medium) readBack(p Partition, diskSecs int64) error {
	_, err := ReadTables(m.f, m.name)
	var has *HasPartitionError
	if !errors.As(err, &has) || has.Start != p.Start || has.Sectors != p.Sectors {
		return fmt.Errorf("%s: the partition tables read back do not hold the new partition (%v)", m.name, err)
	}
	b := make([]byte, sectorSize)
	if _, err := m.f.ReadAt(b, (diskSecs-1)*sectorSize); err != nil || !validHeader(b, diskSecs-1) {
		return fmt.Errorf("%s: no valid backup GPT header read back at its last sector (%v)", m.name, err)
	}
	return nil
}

// reread asks the kernel to read the new tables, and says how it went.
func reread(f *os.File) string {
	switch err := blockdev.RereadPartitions(f); {
	case err == nil:
		return "partition table re-read"
	case errors.Is(err, blockdev.ErrNoPartitions):
		return "no partition table re-read: " + err.Error()
	default:
		return err.Error() + " (unplug and replug it to see the new partition)"
	}
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
