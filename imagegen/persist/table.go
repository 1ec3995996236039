package persist

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf16"

	"github.com/nixlive/nixlive/imagegen/iso9660"
)

// The isohybrid layout imagegen/iso9660 writes (hybrid.go): an MBR whose
// first entry (type 0x00, active) covers the whole ISO from sector 0 and
// whose second (0xEF) covers the EFI image; a GPT of 128 entries of 128
// bytes at sector 2, with one EFI System Partition, mirrored at the end of
// the image. Sectors are 512 bytes.
const (
	sectorSize   = 512
	gptEntries   = 128
	gptEntrySize = 128
	entrySecs    = gptEntries * gptEntrySize / sectorSize // 32
	gptTail      = entrySecs + 1                          // backup entries and header
	firstUsable  = 2 + entrySecs                          // 34
	alignSecs    = 2048                                   // 1 MiB
	mbrMaxSecs   = 1<<32 - 1                              // what an MBR entry can reach
)

// Partition type GUIDs, in the usual (not on-disk) order.
var (
	espType   = guid("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
	linuxType = guid("0FC63DAF-8483-4772-8E79-3D69D8477DE4")
)

// guid turns a GUID written in its usual form into the on-disk order,
// where the first three fields are little-endian.
func guid(s string) []byte {
	u, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(u) != 16 {
		panic("persist: bad GUID " + s)
	}
	return onDisk(u)
}

func onDisk(u []byte) []byte {
	return []byte{u[3], u[2], u[1], u[0], u[5], u[4], u[7], u[6],
		u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]}
}

// guidString prints an on-disk GUID in its usual form.
func guidString(b []byte) string {
	u := onDisk(b) // the swap is its own inverse
	return fmt.Sprintf("%X-%X-%X-%X-%X", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// derivedGUID is a name-based (version 5 style) GUID from the disk GUID
// and a label, as imagegen/iso9660 derives its GUIDs from the image: the
// same ISO gets the same partition GUID.
func derivedGUID(disk []byte, label string) []byte {
	s := sha256.Sum256(append(append([]byte{}, disk...), label...))
	u := s[:16]
	u[6] = u[6]&0x0F | 0x50
	u[8] = u[8]&0x3F | 0x80
	return onDisk(u)
}

// Tables are the partition tables of the isohybrid ISO at the start of a
// medium, as read and checked by ReadTables.
type Tables struct {
	mbr     []byte // sector 0
	header  []byte // sector 1, the primary GPT header
	entries []byte // sectors 2 to 33
	// ISOBytes is the size of the ISO (its volume space, which holds the
	// backup GPT the ISO was written with).
	ISOBytes int64
	// oldBackup is the sector of the ISO's backup GPT header, 0 if there
	// is none where the primary header says.
	oldBackup int64
}

// Partition is where the nixlive-rw partition is.
type Partition struct {
	Number         int   // in the GPT and in the MBR (/dev/sdX3)
	Start, Sectors int64 // 512-byte sectors
	GUID           string
}

// Offset is the partition's first byte on the medium.
func (p Partition) Offset() int64 { return p.Start * sectorSize }

// Bytes is the partition's size.
func (p Partition) Bytes() int64 { return p.Sectors * sectorSize }

// NotOurISOError says that a medium does not start with an isohybrid ISO
// as imagegen build writes it.
type NotOurISOError struct {
	Path, Why string
}

func (e *NotOurISOError) Error() string {
	return fmt.Sprintf("%s does not hold a live ISO written by imagegen build (isohybrid, with a GPT): %s; nothing was written", e.Path, e.Why)
}

// HasPartitionError says that the medium has its nixlive-rw partition.
type HasPartitionError struct {
	Path string
	Partition
}

func (e *HasPartitionError) Error() string {
	return fmt.Sprintf("%s already has a %s partition: partition %d, %s at byte %d; nothing was written",
		e.Path, Label, e.Number, sizeString(e.Bytes()), e.Offset())
}

// ReadTables reads and checks the ISO 9660 volume descriptor, the MBR and
// the GPT at the start of r (named path in errors). A medium with a
// nixlive-rw partition gives a *HasPartitionError, one that is not our
// ISO (or has other partitions) a *NotOurISOError.
func ReadTables(r io.ReaderAt, path string) (*Tables, error) {
	bad := func(format string, a ...any) error {
		return &NotOurISOError{Path: path, Why: fmt.Sprintf(format, a...)}
	}
	pvd := make([]byte, 2048)
	if _, err := r.ReadAt(pvd, 16*2048); err != nil {
		return nil, bad("cannot read its ISO 9660 volume descriptor at byte 32768 (%v)", err)
	}
	if pvd[0] != 1 || string(pvd[1:6]) != "CD001" || pvd[6] != 1 {
		return nil, bad("no ISO 9660 primary volume descriptor at byte 32768")
	}
	if bs := binary.LittleEndian.Uint16(pvd[128:]); bs != 2048 {
		return nil, bad("ISO 9660 logical blocks of %d bytes, not 2048", bs)
	}
	t := &Tables{ISOBytes: int64(binary.LittleEndian.Uint32(pvd[80:])) * 2048}
	head := make([]byte, firstUsable*sectorSize)
	if _, err := r.ReadAt(head, 0); err != nil {
		return nil, bad("cannot read its partition tables (%v)", err)
	}
	t.mbr, t.header, t.entries = head[:512], head[512:1024], head[1024:]
	if err := t.checkGPT(); err != "" {
		return nil, bad("%s", err)
	}
	if err := t.checkMBR(); err != "" {
		return nil, bad("%s", err)
	}
	if p, ok, why := t.existing(); why != "" {
		return nil, bad("%s", why)
	} else if ok {
		return nil, &HasPartitionError{Path: path, Partition: p}
	}
	alt := int64(binary.LittleEndian.Uint64(t.header[32:]))
	b := make([]byte, sectorSize)
	if alt*sectorSize < t.ISOBytes && alt >= firstUsable {
		if _, err := r.ReadAt(b, alt*sectorSize); err == nil && validHeader(b, alt) {
			t.oldBackup = alt
		}
	}
	return t, nil
}

// validHeader says whether b is a GPT header with a good CRC at sector my.
func validHeader(b []byte, my int64) bool {
	if string(b[:8]) != "EFI PART" || binary.LittleEndian.Uint32(b[12:]) != 92 {
		return false
	}
	h := append([]byte{}, b[:92]...)
	binary.LittleEndian.PutUint32(h[16:], 0)
	return crc32.ChecksumIEEE(h) == binary.LittleEndian.Uint32(b[16:]) &&
		int64(binary.LittleEndian.Uint64(b[24:])) == my
}

// checkGPT checks the primary GPT header and its entries against what
// imagegen/iso9660 writes; it returns what is wrong, or "".
func (t *Tables) checkGPT() string {
	h := t.header
	switch {
	case string(h[:8]) != "EFI PART":
		return "no GPT header at sector 1"
	case !validHeader(h, 1):
		return "the GPT header at sector 1 is damaged (its CRC or location is wrong)"
	case binary.LittleEndian.Uint32(h[8:]) != 0x00010000:
		return "GPT revision is not 1.0"
	case binary.LittleEndian.Uint64(h[72:]) != 2 || binary.LittleEndian.Uint32(h[80:]) != gptEntries ||
		binary.LittleEndian.Uint32(h[84:]) != gptEntrySize || binary.LittleEndian.Uint64(h[40:]) != firstUsable:
		return "the GPT is not laid out as imagegen writes it (128 entries of 128 bytes at sector 2)"
	case crc32.ChecksumIEEE(t.entries) != binary.LittleEndian.Uint32(h[88:]):
		return "the GPT entries are damaged (their CRC is wrong)"
	case !bytes.Equal(t.entries[:16], espType):
		return "the first GPT partition is not the EFI System Partition"
	}
	return ""
}

// checkMBR checks isohybrid's MBR: the whole ISO from sector 0, then the
// EFI image where the GPT has it.
func (t *Tables) checkMBR() string {
	m := t.mbr
	if m[510] != 0x55 || m[511] != 0xAA {
		return "no MBR signature"
	}
	e0, e1 := m[446:462], m[462:478]
	if e0[4] != 0 || binary.LittleEndian.Uint32(e0[8:]) != 0 || binary.LittleEndian.Uint32(e0[12:]) == 0 {
		return "the first MBR partition is not isohybrid's (type 0x00 from sector 0 over the ISO)"
	}
	if e1[4] != 0xEF || uint64(binary.LittleEndian.Uint32(e1[8:])) != binary.LittleEndian.Uint64(t.entries[32:]) {
		return "the second MBR partition is not the EFI System Partition of the GPT"
	}
	return ""
}

// existing finds a nixlive-rw partition in the GPT or the MBR; why says
// what other partition there is.
func (t *Tables) existing() (p Partition, ok bool, why string) {
	for i := 1; i < gptEntries; i++ {
		e := t.entries[i*gptEntrySize : (i+1)*gptEntrySize]
		if bytes.Equal(e[:16], make([]byte, 16)) {
			continue
		}
		start, end := int64(binary.LittleEndian.Uint64(e[32:])), int64(binary.LittleEndian.Uint64(e[40:]))
		p := Partition{Number: i + 1, Start: start, Sectors: end - start + 1, GUID: guidString(e[16:32])}
		if entryName(e) == Label || bytes.Equal(e[:16], linuxType) {
			return p, true, ""
		}
		return p, false, fmt.Sprintf("GPT partition %d (%q, type %s) is not one imagegen makes", i+1, entryName(e), guidString(e[:16]))
	}
	for i := 2; i < 4; i++ {
		e := t.mbr[446+16*i : 462+16*i]
		start, n := int64(binary.LittleEndian.Uint32(e[8:])), int64(binary.LittleEndian.Uint32(e[12:]))
		if n == 0 {
			continue
		}
		if e[4] == 0x83 {
			return Partition{Number: i + 1, Start: start, Sectors: n}, true, ""
		}
		return p, false, fmt.Sprintf("MBR partition %d (type 0x%02X) is not one imagegen makes", i+1, e[4])
	}
	return p, false, ""
}

func entryName(e []byte) string {
	var u []uint16
	for j := 56; j+1 < gptEntrySize; j += 2 {
		c := binary.LittleEndian.Uint16(e[j:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// FreeStart is the first sector after the ISO, on a 1 MiB boundary: where
// the partition goes.
func (t *Tables) FreeStart() int64 {
	s := (t.ISOBytes + sectorSize - 1) / sectorSize
	return (s + alignSecs - 1) / alignSecs * alignSecs
}

// Write is bytes to write at an offset.
type Write struct {
	Off  int64
	Data []byte
}

// Add returns the partition number 3, of n sectors from start, labelled
// nixlive-rw, on a medium of diskSecs sectors, and the writes that put it
// in the tables, in order: the backup GPT at the end of the medium, then
// the MBR and primary GPT (sectors 0 to 33 in one write), then zeros over
// the ISO's own backup GPT, which no longer ends the medium.
func (t *Tables) Add(start, n, diskSecs int64) (Partition, []Write) {
	const idx = 2 // the third slot of both tables, free (ReadTables checked)
	disk := t.header[56:72]
	entries := append([]byte{}, t.entries...)
	e := entries[idx*gptEntrySize : (idx+1)*gptEntrySize]
	copy(e, linuxType)
	copy(e[16:], derivedGUID(disk, Label))
	binary.LittleEndian.PutUint64(e[32:], uint64(start))
	binary.LittleEndian.PutUint64(e[40:], uint64(start+n-1))
	for i, c := range utf16.Encode([]rune(Label)) {
		binary.LittleEndian.PutUint16(e[56+2*i:], c)
	}
	entriesCRC := crc32.ChecksumIEEE(entries)
	header := func(my, alt, table int64) []byte {
		h := append([]byte{}, t.header...)
		binary.LittleEndian.PutUint32(h[16:], 0)
		binary.LittleEndian.PutUint64(h[24:], uint64(my))
		binary.LittleEndian.PutUint64(h[32:], uint64(alt))
		binary.LittleEndian.PutUint64(h[48:], uint64(diskSecs-gptTail-1)) // last usable
		binary.LittleEndian.PutUint64(h[72:], uint64(table))
		binary.LittleEndian.PutUint32(h[88:], entriesCRC)
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
		return h
	}
	mbr := append([]byte{}, t.mbr...)
	copy(mbr[446+16*idx:], iso9660.MBREntry(0x00, 0x83, start, n))

	backup := append(append([]byte{}, entries...), header(diskSecs-1, 1, diskSecs-gptTail)...)
	primary := append(append(mbr, header(1, diskSecs-1, 2)...), entries...)
	writes := []Write{{(diskSecs - gptTail) * sectorSize, backup}, {0, primary}}
	if t.oldBackup != 0 && t.oldBackup != diskSecs-1 {
		writes = append(writes, Write{(t.oldBackup - entrySecs) * sectorSize, make([]byte, gptTail*sectorSize)})
	}
	p := Partition{Number: idx + 1, Start: start, Sectors: n, GUID: guidString(e[16:32])}
	return p, writes
}
