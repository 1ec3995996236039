package persist

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// Kept is a nixlive-rw partition found on a medium before a new ISO is
// written over the old one ("imagegen write"): the new ISO goes before
// it, and it is entered again, where it was and not formatted, in the new
// ISO's MBR and GPT.
type Kept struct {
	Partition
	name  string
	size  int64  // the medium's size in bytes
	super []byte // the ext4 superblock as found, compared afterwards
}

// ext4 superblock: 1024 bytes at byte 1024 of the file system, its magic
// at 56.
const superOff, superLen, magicOff = 1024, 1024, 56

// FindKept reads the tables of the medium f (size bytes, named name in
// messages): a nixlive-rw partition whose ext4 file system is there gives
// a *Kept, anything else (no partition, not our ISO) nil.
func FindKept(f *os.File, name string, size int64) (*Kept, error) {
	_, err := ReadTables(f, name)
	var has *HasPartitionError
	if !errors.As(err, &has) {
		return nil, nil
	}
	p := has.Partition
	if p.Start+p.Sectors > size/sectorSize-gptTail {
		return nil, fmt.Errorf("%s: its %s partition (partition %d, sectors %d to %d) runs into the last %d sectors, where the backup GPT goes; nothing was written",
			name, Label, p.Number, p.Start, p.Start+p.Sectors-1, gptTail)
	}
	super := make([]byte, superLen)
	if _, err := f.ReadAt(super, p.Offset()+superOff); err != nil {
		return nil, fmt.Errorf("%s: read the file system of its %s partition at byte %d: %w; nothing was written", name, Label, p.Offset(), unwrapPath(err))
	}
	if super[magicOff] != 0x53 || super[magicOff+1] != 0xEF {
		return nil, fmt.Errorf("%s: its %s partition (partition %d at byte %d) holds no ext4 file system to keep; nothing was written (to start over without it, run wipefs -a on %s and write the ISO again)",
			name, Label, p.Number, p.Offset(), name)
	}
	return &Kept{Partition: p, name: name, size: size, super: super}, nil
}

// FitError says that a new ISO would reach into the kept partition.
type FitError struct {
	Path     string
	ISOBytes int64
	Kept     Partition
}

func (e *FitError) Error() string {
	return fmt.Sprintf("%s: the new ISO is %s, larger than the %s before its %s partition (partition %d, %s at byte %d), which it would overwrite; nothing was written "+
		"(to start over without it, copy off its files, run wipefs -a on %s, and write the ISO again)",
		e.Path, sizeString(e.ISOBytes), sizeString(e.Kept.Offset()), Label, e.Kept.Number, sizeString(e.Kept.Bytes()), e.Kept.Offset(), e.Path)
}

// Fits refuses an ISO of isoBytes that would reach into the partition.
func (k *Kept) Fits(isoBytes int64) error {
	if isoBytes > k.Offset() {
		return &FitError{Path: k.name, ISOBytes: isoBytes, Kept: k.Partition}
	}
	return nil
}

// HeadBytes is the start of an ISO that holds its MBR and primary GPT:
// Reenter writes it, with the partition entered; the rest of the ISO is
// written before, so that a write stopped short leaves the old tables
// (and the partition in them).
const HeadBytes = firstUsable * sectorSize

// Reenter enters the partition in the tables of the new ISO iso, which f
// holds from byte HeadBytes on: it writes the new ISO's MBR and GPT with
// the partition, at the same place and without touching its file system,
// and checks that the file system's superblock is as it was. It returns
// the partition (its GUID follows the new ISO's disk GUID) and the bytes
// written, which differ from the ISO's own.
func (k *Kept) Reenter(f *os.File, iso io.ReaderAt) (Partition, []Write, error) {
	t, err := ReadTables(iso, "the new ISO")
	if err != nil {
		return Partition{}, nil, err
	}
	if err := k.Fits(t.ISOBytes); err != nil {
		return Partition{}, nil, err
	}
	p, writes := t.Add(k.Start, k.Sectors, k.size/sectorSize)
	m := &medium{name: k.name, f: f}
	if err := m.writeTables(writes); err != nil {
		return Partition{}, nil, err
	}
	if err := m.readBack(p, k.size/sectorSize); err != nil {
		return Partition{}, nil, err
	}
	super := make([]byte, superLen)
	if _, err := f.ReadAt(super, p.Offset()+superOff); err != nil || !bytes.Equal(super, k.super) {
		return Partition{}, nil, fmt.Errorf("%s: the file system of the %s partition at byte %d is not as it was before the write (%v)", k.name, Label, p.Offset(), err)
	}
	return p, writes, nil
}
