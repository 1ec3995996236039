// Package blkid identifies the file system on a block device by its magic
// numbers, as util-linux's blkid does, for the types a live boot looks at,
// and reports the label and UUID that /dev/disk/by-label and by-uuid show:
//   - iso9660: "CD001" at byte 0x8001; the label is the primary volume
//     descriptor's volume ID; the UUID is its modification date (else its
//     creation date) as "YYYY-MM-DD-HH-MM-SS-cc". An isohybrid ISO, which
//     also carries an MBR, is iso9660.
//   - squashfs: "hsqs" at 0; no label or UUID.
//   - ext2/3/4: magic 0xEF53 at 1024+56; ext4 if it uses a feature ext3
//     lacks, else ext3 if it has a journal; the UUID as 8-4-4-4-12 hex.
//   - vfat (FAT12/16/32): a sane boot sector; its label (not the root
//     directory's label entry) and the volume serial as XXXX-XXXX.
//
// Not supported: partition tables, btrfs, xfs, ntfs, LUKS and others.
package blkid

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// FS is what Probe finds on a device: the file system type as blkid names
// it ("iso9660", "ext2", "ext3", "ext4", "vfat", "squashfs", or "" when
// unknown), its label and its UUID in blkid's notation.
type FS struct{ Type, Label, UUID string }

// ProbeSize is how far into a device Probe may read: it reads the first
// 4 KiB and, for ISO 9660, the 2 KiB primary volume descriptor at 32 KiB.
const ProbeSize = 64 << 10

const pvdOffset = 0x8000 // the ISO 9660 primary volume descriptor: sector 16

// Probe identifies the file system on r (see the package doc for the types,
// in the order tried). Errors are read errors only; a device too short to
// hold a file system gives FS{} and no error.
func Probe(r io.ReaderAt) (FS, error) {
	pvd, err := readAt(r, pvdOffset, 2048)
	if err != nil {
		return FS{}, err
	}
	if fs, ok := probeISO(pvd); ok {
		return fs, nil
	}
	head, err := readAt(r, 0, 4096)
	if err != nil {
		return FS{}, err
	}
	if string(head[:4]) == "hsqs" {
		return FS{Type: "squashfs"}, nil
	}
	if fs, ok := probeExt(head[1024:2048]); ok {
		return fs, nil
	}
	if fs, ok := probeFAT(head[:512]); ok {
		return fs, nil
	}
	return FS{}, nil
}

// ISOLabel returns the volume ID of an ISO 9660 image (the 32 bytes at
// 0x8028, trailing spaces removed, the rest byte-exact), and false if r
// holds no ISO 9660 primary volume descriptor.
func ISOLabel(r io.ReaderAt) (string, bool) {
	pvd, err := readAt(r, pvdOffset, 2048)
	if err != nil {
		return "", false
	}
	fs, ok := probeISO(pvd)
	return fs.Label, ok
}

// readAt reads n bytes at off; bytes beyond the end of r read as zeros.
func readAt(r io.ReaderAt, off int64, n int) ([]byte, error) {
	b := make([]byte, n)
	got, err := r.ReadAt(b, off)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("probe: read %d bytes at %d: %w", n, off, err)
	}
	if got >= 0 && got < n {
		clear(b[got:])
	}
	return b, nil
}

func probeISO(pvd []byte) (FS, bool) {
	// Type 1 (primary), "CD001", version 1.
	if pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return FS{}, false
	}
	fs := FS{Type: "iso9660", Label: strings.TrimRight(string(pvd[40:72]), " ")}
	if u, ok := isoDate(pvd[830:847]); ok {
		fs.UUID = u
	} else if u, ok := isoDate(pvd[813:830]); ok {
		fs.UUID = u
	}
	return fs, true
}

// isoDate formats a 17-byte volume descriptor date (16 digits and a time
// zone offset) as blkid does; ok is false when it is unset or not digits.
func isoDate(d []byte) (string, bool) {
	digits := d[:16]
	for _, c := range digits {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	if d[16] == 0 && bytes.Count(digits, []byte{'0'}) == 16 {
		return "", false
	}
	s := string(digits)
	return fmt.Sprintf("%s-%s-%s-%s-%s-%s-%s", s[0:4], s[4:6], s[6:8], s[8:10], s[10:12], s[12:14], s[14:16]), true
}

// ext feature bits (fs/ext4/ext4.h) that tell ext2, ext3 and ext4 apart.
const (
	extCompatJournal      = 0x0004
	ext3IncompatSupp      = 0x0002 | 0x0004 | 0x0010 // filetype, recover, meta_bg
	ext3ROCompatSupp      = 0x0001 | 0x0002 | 0x0004 // sparse_super, large_file, btree_dir
	extIncompatJournalDev = 0x0008
)

func probeExt(sb []byte) (FS, bool) {
	le := binary.LittleEndian
	if le.Uint16(sb[56:]) != 0xEF53 {
		return FS{}, false
	}
	compat, incompat, roCompat := le.Uint32(sb[92:]), le.Uint32(sb[96:]), le.Uint32(sb[100:])
	if incompat&extIncompatJournalDev != 0 {
		return FS{}, false // an external journal, not a file system
	}
	fs := FS{Type: "ext2", Label: cString(sb[120:136]), UUID: uuidString(sb[104:120])}
	switch {
	case incompat&^ext3IncompatSupp != 0 || roCompat&^ext3ROCompatSupp != 0:
		fs.Type = "ext4"
	case compat&extCompatJournal != 0:
		fs.Type = "ext3"
	}
	return fs, true
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func uuidString(u []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func probeFAT(bs []byte) (FS, bool) {
	le := binary.LittleEndian
	if bs[510] != 0x55 || bs[511] != 0xAA || (bs[0] != 0xEB && bs[0] != 0xE9) {
		return FS{}, false
	}
	sectorSize, perCluster := le.Uint16(bs[11:]), bs[13]
	reserved, fats, media := le.Uint16(bs[14:]), bs[16], bs[21]
	if !pow2(int(sectorSize)) || sectorSize < 512 || sectorSize > 4096 || !pow2(int(perCluster)) ||
		reserved == 0 || fats == 0 || fats > 4 || (media != 0xF0 && media < 0xF8) {
		return FS{}, false
	}
	// FAT32 has no 16-bit FAT size and its extended boot record at 64.
	labelAt, serialAt, sigAt := 43, 39, 38
	if le.Uint16(bs[22:]) == 0 {
		if le.Uint32(bs[36:]) == 0 {
			return FS{}, false
		}
		labelAt, serialAt, sigAt = 71, 67, 66
	}
	// The extended boot signature: 0x29 for serial and label, 0x28 (older)
	// for the serial only.
	fs := FS{Type: "vfat"}
	if sig := bs[sigAt]; sig == 0x28 || sig == 0x29 {
		id := le.Uint32(bs[serialAt:])
		fs.UUID = fmt.Sprintf("%04X-%04X", id>>16, id&0xFFFF)
	}
	if bs[sigAt] == 0x29 {
		if l := strings.TrimRight(string(bs[labelAt:labelAt+11]), " \x00"); l != "NO NAME" {
			fs.Label = l
		}
	}
	return fs, true
}

func pow2(n int) bool { return n > 0 && n&(n-1) == 0 }
