package iso9660

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"unicode/utf16"
)

// Image is what Open reads from an ISO: enough to tell what an image is and
// what it holds, as "imagegen inspect" prints it.
type Image struct {
	r          io.ReaderAt
	VolumeID   string
	Sectors    uint32 // volume space size
	Joliet     bool
	RockRidge  bool
	CatalogLBA uint32 // 0: no El Torito
	Boot       []BootImage
	MBR        []MBRPartition // nil: no MBR signature
	GPT        []GPTPartition // nil: no GPT
	root       rawRecord
	ceBudget   int
}

// BootImage is one El Torito entry as recorded.
type BootImage struct {
	Platform    Platform
	Bootable    bool
	LoadSectors uint16
	LBA         uint32
}

// MBRPartition is one used MBR partition table entry (512-byte sectors).
type MBRPartition struct {
	Index        int
	Bootable     bool
	Type         byte
	Start, Count uint32
}

// GPTPartition is one used GPT entry (512-byte sectors, inclusive end).
type GPTPartition struct {
	Index      int
	Type, GUID string
	Start, End uint64
	Name       string
}

// Entry is one file, directory or symlink of the Rock Ridge hierarchy.
type Entry struct {
	Path     string
	Mode     fs.FileMode
	Size     int64
	LBA      uint32 // first extent
	Linkname string
	Extents  int
}

type rawRecord struct {
	lba   uint32
	size  uint32
	flags byte
	id    []byte
	susp  []byte
}

// Open reads an image's descriptors, boot catalog and partition tables.
func Open(r io.ReaderAt) (*Image, error) {
	im := &Image{r: r}
	sec := make([]byte, sectorSize)
	for s := uint32(16); ; s++ {
		if s > 16+64 {
			return nil, errors.New("iso9660: no volume descriptor set terminator")
		}
		if _, err := r.ReadAt(sec, int64(s)*sectorSize); err != nil {
			return nil, fmt.Errorf("iso9660: read sector %d: %w", s, err)
		}
		if string(sec[1:6]) != "CD001" {
			return nil, fmt.Errorf("iso9660: sector %d is not a volume descriptor: not an ISO 9660 image", s)
		}
		switch sec[0] {
		case 0:
			if bytes.HasPrefix(sec[7:], []byte("EL TORITO SPECIFICATION")) {
				im.CatalogLBA = binary.LittleEndian.Uint32(sec[0x47:])
			}
		case 1:
			im.VolumeID = strings.TrimRight(string(sec[40:72]), " \x00")
			im.Sectors = binary.LittleEndian.Uint32(sec[80:])
			rec, err := parseRecord(sec[156:190])
			if err != nil {
				return nil, fmt.Errorf("iso9660: root record: %w", err)
			}
			im.root = rec
		case 2:
			if esc := sec[88:91]; esc[0] == '%' && esc[1] == '/' && bytes.IndexByte([]byte("@CE"), esc[2]) >= 0 {
				im.Joliet = true
			}
		case 255:
			if im.root.lba == 0 {
				return nil, errors.New("iso9660: no primary volume descriptor")
			}
			if err := im.readCatalog(); err != nil {
				return nil, err
			}
			im.readPartitions()
			return im, im.detectRockRidge()
		}
	}
}

func parseRecord(b []byte) (rawRecord, error) {
	if len(b) < 34 || int(b[0]) > len(b) || b[0] < 34 {
		return rawRecord{}, errors.New("short directory record")
	}
	n := int(b[32])
	if 33+n > int(b[0]) {
		return rawRecord{}, errors.New("directory record name overruns the record")
	}
	r := rawRecord{
		lba:   binary.LittleEndian.Uint32(b[2:]),
		size:  binary.LittleEndian.Uint32(b[10:]),
		flags: b[25],
		id:    b[33 : 33+n],
	}
	s := 33 + n
	if n%2 == 0 {
		s++
	}
	if s < int(b[0]) {
		r.susp = b[s:b[0]]
	}
	return r, nil
}

func (im *Image) readCatalog() error {
	if im.CatalogLBA == 0 {
		return nil
	}
	c := make([]byte, sectorSize)
	if _, err := im.r.ReadAt(c, int64(im.CatalogLBA)*sectorSize); err != nil {
		return fmt.Errorf("iso9660: read boot catalog: %w", err)
	}
	if c[0] != 1 || c[30] != 0x55 || c[31] != 0xAA {
		return errors.New("iso9660: boot catalog has no validation entry")
	}
	entry := func(b []byte, p Platform) BootImage {
		return BootImage{Platform: p, Bootable: b[0] == 0x88, LoadSectors: binary.LittleEndian.Uint16(b[6:]), LBA: binary.LittleEndian.Uint32(b[8:])}
	}
	im.Boot = append(im.Boot, entry(c[32:64], Platform(c[1])))
	for off := 64; off+64 <= len(c); {
		h := c[off:]
		if h[0] != 0x90 && h[0] != 0x91 {
			break
		}
		n := int(binary.LittleEndian.Uint16(h[2:]))
		off += 32
		for i := 0; i < n && off+32 <= len(c); i++ {
			im.Boot = append(im.Boot, entry(c[off:off+32], Platform(h[1])))
			off += 32
		}
		if h[0] == 0x91 {
			break
		}
	}
	return nil
}

func (im *Image) readPartitions() {
	b := make([]byte, 512*2)
	if _, err := im.r.ReadAt(b, 0); err != nil || b[510] != 0x55 || b[511] != 0xAA {
		return
	}
	im.MBR = []MBRPartition{}
	for i := range 4 {
		e := b[446+16*i:]
		p := MBRPartition{Index: i + 1, Bootable: e[0] == 0x80, Type: e[4], Start: binary.LittleEndian.Uint32(e[8:]), Count: binary.LittleEndian.Uint32(e[12:])}
		if p.Count != 0 {
			im.MBR = append(im.MBR, p)
		}
	}
	h := b[512:]
	if string(h[:8]) != "EFI PART" {
		return
	}
	table := binary.LittleEndian.Uint64(h[72:])
	n := min(binary.LittleEndian.Uint32(h[80:]), 1024)
	size := binary.LittleEndian.Uint32(h[84:])
	if size < 128 || size > 4096 {
		return
	}
	ents := make([]byte, int(n)*int(size))
	if _, err := im.r.ReadAt(ents, int64(table)*512); err != nil {
		return
	}
	im.GPT = []GPTPartition{}
	for i := range int(n) {
		e := ents[i*int(size):]
		if bytes.Equal(e[:16], make([]byte, 16)) {
			continue
		}
		var name []uint16
		for j := 56; j+1 < 128; j += 2 {
			c := binary.LittleEndian.Uint16(e[j:])
			if c == 0 {
				break
			}
			name = append(name, c)
		}
		im.GPT = append(im.GPT, GPTPartition{
			Index: i + 1, Type: guidString(e[:16]), GUID: guidString(e[16:32]),
			Start: binary.LittleEndian.Uint64(e[32:]), End: binary.LittleEndian.Uint64(e[40:]),
			Name: string(utf16.Decode(name)),
		})
	}
}

func guidString(b []byte) string {
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X", binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint16(b[4:]),
		binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16])
}

func (im *Image) detectRockRidge() error {
	recs, err := im.readDir(im.root)
	if err != nil {
		return err
	}
	if len(recs) > 0 && bytes.HasPrefix(recs[0].susp, []byte("SP")) {
		im.RockRidge = true
	}
	return nil
}

// readDir returns a directory's records.
func (im *Image) readDir(d rawRecord) ([]rawRecord, error) {
	if d.size > 64<<20 {
		return nil, fmt.Errorf("iso9660: directory at sector %d: implausible size %d", d.lba, d.size)
	}
	buf := make([]byte, (d.size+sectorSize-1)/sectorSize*sectorSize)
	if _, err := im.r.ReadAt(buf, int64(d.lba)*sectorSize); err != nil {
		return nil, fmt.Errorf("iso9660: read directory at sector %d: %w", d.lba, err)
	}
	var recs []rawRecord
	for off := 0; off < int(d.size); {
		l := int(buf[off])
		if l == 0 { // the rest of this sector is padding
			off = (off/sectorSize + 1) * sectorSize
			continue
		}
		if off%sectorSize+l > sectorSize || off+l > len(buf) {
			return nil, fmt.Errorf("iso9660: directory at sector %d: record at %d crosses a sector", d.lba, off)
		}
		r, err := parseRecord(buf[off : off+l])
		if err != nil {
			return nil, fmt.Errorf("iso9660: directory at sector %d, offset %d: %w", d.lba, off, err)
		}
		recs = append(recs, r)
		off += l
	}
	return recs, nil
}

// rockRidge reads a record's Rock Ridge name, mode and symlink target,
// following continuation areas.
func (im *Image) rockRidge(s []byte) (name string, mode fs.FileMode, link string, ok bool) {
	var nm, sl strings.Builder
	slSep := false
	for hops := 0; len(s) >= 4 && hops < 64; {
		l := int(s[2])
		if l < 4 || l > len(s) {
			break
		}
		e := s[:l]
		switch string(e[:2]) {
		case "PX":
			if l >= 12 {
				mode = unixMode(binary.LittleEndian.Uint32(e[4:]))
				ok = true
			}
		case "NM":
			if l >= 5 {
				nm.Write(e[5:])
			}
		case "SL":
			if l < 5 {
				break
			}
			for c := e[5:]; len(c) >= 2 && 2+int(c[1]) <= len(c); {
				flags, n := c[0], int(c[1])
				if slSep {
					sl.WriteByte('/')
				}
				switch {
				case flags&0x08 != 0:
					sl.Reset()
					sl.WriteByte('/')
					slSep = false
				case flags&0x02 != 0:
					sl.WriteString(".")
					slSep = true
				case flags&0x04 != 0:
					sl.WriteString("..")
					slSep = true
				default:
					sl.Write(c[2 : 2+n])
					slSep = flags&0x01 == 0
				}
				c = c[2+n:]
			}
		case "CE":
			if l >= 28 {
				lba, off, n := binary.LittleEndian.Uint32(e[4:]), binary.LittleEndian.Uint32(e[12:]), binary.LittleEndian.Uint32(e[20:])
				if off+n <= sectorSize {
					buf := make([]byte, n)
					if _, err := im.r.ReadAt(buf, int64(lba)*sectorSize+int64(off)); err == nil {
						s = buf
						hops++
						continue
					}
				}
			}
		case "ST":
			s = nil
			continue
		}
		s = s[l:]
	}
	return nm.String(), mode, sl.String(), ok
}

func unixMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	switch m & 0o170000 {
	case 0o040000:
		mode |= fs.ModeDir
	case 0o120000:
		mode |= fs.ModeSymlink
	}
	return mode
}

// Walk calls fn for every entry of the primary (Rock Ridge) hierarchy,
// depth first, in recorded order.
func (im *Image) Walk(fn func(Entry) error) error {
	seen := map[uint32]bool{}
	var walk func(dir rawRecord, p string, depth int) error
	walk = func(dir rawRecord, p string, depth int) error {
		if seen[dir.lba] || depth > 256 {
			return fmt.Errorf("iso9660: directory loop at sector %d", dir.lba)
		}
		seen[dir.lba] = true
		recs, err := im.readDir(dir)
		if err != nil {
			return err
		}
		var cur *Entry
		for i, r := range recs {
			if i < 2 { // "." and ".."
				continue
			}
			if cur == nil {
				name, mode, link, ok := im.rockRidge(r.susp)
				if name == "" {
					name = isoDisplayName(r.id, r.flags&0x02 != 0)
				}
				if !ok {
					mode = 0o444
					if r.flags&0x02 != 0 {
						mode = fs.ModeDir | 0o555
					}
				}
				cur = &Entry{Path: path.Join(p, name), Mode: mode, LBA: r.lba, Linkname: link}
			}
			cur.Size += int64(r.size)
			cur.Extents++
			if r.flags&0x80 != 0 {
				continue // more extents follow
			}
			e := *cur
			cur = nil
			if e.Mode.Type() == fs.ModeSymlink || e.Mode.IsDir() {
				e.Size = 0
			}
			if err := fn(e); err != nil {
				return err
			}
			if r.flags&0x02 != 0 {
				if err := walk(r, e.Path, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(im.root, "/", 0)
}

func isoDisplayName(id []byte, dir bool) string {
	s := string(id)
	if !dir {
		s, _, _ = strings.Cut(s, ";")
		s = strings.TrimSuffix(s, ".")
	}
	return s
}
