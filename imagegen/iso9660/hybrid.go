package iso9660

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"unicode/utf16"
)

// The GPT here has 128 entries of 128 bytes: 32 sectors of 512 bytes after
// the header, mirrored at the end of the image.
const (
	gptEntries     = 128
	gptEntrySize   = 128
	gptEntrySecs   = gptEntries * gptEntrySize / 512
	gptTailSectors = gptEntrySecs + 1
)

var espType = guidBytes([16]byte{0xC1, 0x2A, 0x73, 0x28, 0xF8, 0x1F, 0x11, 0xD2, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B})

// guidBytes turns a GUID written in its usual order into the on-disk order,
// where the first three fields are little-endian.
func guidBytes(u [16]byte) []byte {
	b := make([]byte, 16)
	b[0], b[1], b[2], b[3] = u[3], u[2], u[1], u[0]
	b[4], b[5] = u[5], u[4]
	b[6], b[7] = u[7], u[6]
	copy(b[8:], u[8:])
	return b
}

// derivedGUID makes a name-based (version 5 style) GUID from the image
// digest, so the same content gets the same GUIDs.
func derivedGUID(digest []byte, label string) []byte {
	var u [16]byte
	copy(u[:], digestOf(append(append([]byte{}, digest...), label...)))
	u[6] = u[6]&0x0F | 0x50
	u[8] = u[8]&0x3F | 0x80
	return guidBytes(u)
}

// chs encodes a 512-byte sector number for an MBR entry, with the 64 heads
// and 32 sectors per track that isohybrid uses.
func chs(lba int64) []byte {
	c := lba / (64 * 32)
	if c > 1023 {
		return []byte{0xFE, 0xFF, 0xFF}
	}
	h := (lba / 32) % 64
	s := lba%32 + 1
	return []byte{byte(h), byte(s) | byte(c>>8)<<6, byte(c)}
}

// MBREntry is a 16-byte MBR partition entry (status, CHS and LBA start
// and count in 512-byte sectors, with isohybrid's geometry), for the ISO's
// own table and for partitions added after it (imagegen/persist).
func MBREntry(status, typ byte, start, count int64) []byte {
	b := []byte{status}
	b = append(b, chs(start)...)
	b = append(b, typ)
	b = append(b, chs(start+count-1)...)
	b = binary.LittleEndian.AppendUint32(b, uint32(start))
	return binary.LittleEndian.AppendUint32(b, uint32(count))
}

// writeHybrid writes the MBR (boot code, the location of the BIOS boot
// image, the partition table) and, if asked, the GPT and its backup.
func (w *Writer) writeHybrid(total int64) error {
	var bios, efi *node
	for _, e := range w.opts.Boot {
		n := w.nodes[mustClean(e.Path)]
		switch e.Platform {
		case BIOS:
			bios = n
		case EFI:
			efi = n
		}
	}
	digest := w.dig.Sum(nil)
	secs := total * 4 // 512-byte sectors
	if err := w.writeMBR(bios, efi, digest, secs); err != nil {
		return err
	}
	if !w.opts.Hybrid.GPT {
		return nil
	}
	if efi == nil {
		return errors.New("iso9660: a GPT needs an EFI boot entry for its EFI System Partition")
	}
	return w.writeGPT(efi, digest, secs)
}

// writeMBR writes isohybrid's MBR: the boot code with the BIOS boot
// image's location, a disk signature from the digest, a partition over the
// whole image and, with an EFI entry, one over the EFI image.
func (w *Writer) writeMBR(bios, efi *node, digest []byte, secs int64) error {
	mbr := make([]byte, 512)
	if bios != nil {
		copy(mbr, w.opts.Hybrid.MBR[:432])
		binary.LittleEndian.PutUint64(mbr[432:], uint64(bios.lba)*4)
	}
	copy(mbr[440:444], digestOf(append(digest, "mbr"...))[:4])
	copy(mbr[446:], MBREntry(0x80, 0x00, 0, secs))
	if efi != nil {
		copy(mbr[462:], MBREntry(0x00, 0xEF, int64(efi.lba)*4, (efi.size+511)/512))
	}
	mbr[510], mbr[511] = 0x55, 0xAA
	if _, err := w.f.WriteAt(mbr, 0); err != nil {
		return fmt.Errorf("iso9660: write MBR: %w", err)
	}
	return nil
}

// writeGPT writes the GPT (UEFI specification, chapter 5) with one EFI
// System Partition over the EFI image: the primary header and entries
// after the MBR, the backup ones at the end of the image.
func (w *Writer) writeGPT(efi *node, digest []byte, secs int64) error {
	entries := make([]byte, gptEntries*gptEntrySize)
	e := entries[:0]
	e = append(e, espType...)
	e = append(e, derivedGUID(digest, "esp")...)
	start := int64(efi.lba) * 4
	e = binary.LittleEndian.AppendUint64(e, uint64(start))
	e = binary.LittleEndian.AppendUint64(e, uint64(start+(efi.size+511)/512-1))
	e = binary.LittleEndian.AppendUint64(e, 0) // attributes
	for _, c := range utf16.Encode([]rune("EFI boot")) {
		e = binary.LittleEndian.AppendUint16(e, c)
	}
	entriesCRC := crc32.ChecksumIEEE(entries)
	disk := derivedGUID(digest, "disk")
	header := func(my, alt, table int64) []byte {
		h := make([]byte, 0, 512)
		h = append(h, "EFI PART"...)
		h = binary.LittleEndian.AppendUint32(h, 0x00010000)
		h = binary.LittleEndian.AppendUint32(h, 92)
		h = binary.LittleEndian.AppendUint32(h, 0) // CRC, below
		h = binary.LittleEndian.AppendUint32(h, 0)
		h = binary.LittleEndian.AppendUint64(h, uint64(my))
		h = binary.LittleEndian.AppendUint64(h, uint64(alt))
		h = binary.LittleEndian.AppendUint64(h, 2+gptEntrySecs) // first usable
		h = binary.LittleEndian.AppendUint64(h, uint64(secs-gptTailSectors-1))
		h = append(h, disk...)
		h = binary.LittleEndian.AppendUint64(h, uint64(table))
		h = binary.LittleEndian.AppendUint32(h, gptEntries)
		h = binary.LittleEndian.AppendUint32(h, gptEntrySize)
		h = binary.LittleEndian.AppendUint32(h, entriesCRC)
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
		return append(h, make([]byte, 512-len(h))...)
	}
	writes := []struct {
		off  int64
		data []byte
	}{
		{512, header(1, secs-1, 2)},
		{1024, entries},
		{(secs - gptTailSectors) * 512, entries},
		{(secs - 1) * 512, header(secs-1, 1, secs-gptTailSectors)},
	}
	for _, x := range writes {
		if _, err := w.f.WriteAt(x.data, x.off); err != nil {
			return fmt.Errorf("iso9660: write GPT: %w", err)
		}
	}
	return nil
}

func digestOf(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
