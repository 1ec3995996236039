package iso9660

// An ISO 9660 reader for tests, written from ECMA-119, SUSP 1.10, RRIP 1.10
// and Joliet, sharing no code with the writer. It checks structural rules
// as it reads: those the Linux kernel enforces (a directory record never
// crosses a sector boundary, a continuation area stays within its sector)
// and ECMA-119's even record lengths; and it keeps where everything is so
// tests can look further.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"
	"unicode/utf16"
)

const ckSector = 2048

type ckReader struct {
	r    io.ReaderAt
	size int64 // bytes
	// rrSkip is the SUSP "bytes skipped" of the root's SP entry; rr tells
	// whether the root announced SUSP at all.
	rrSkip int
	rr     bool
	// bootSector is where descriptors found the boot record.
	bootSector uint32
}

// ckRecord is one directory record as found on the medium.
type ckRecord struct {
	dir    uint32 // first sector of the directory holding it
	offset int    // byte offset within the directory
	length int
	extent uint32
	size   uint32
	flags  byte
	id     []byte
	system []byte // the system use field
	date   [7]byte
}

// ckCE is one continuation area.
type ckCE struct{ lba, offset, length uint32 }

// ckRR is what the Rock Ridge entries of one record say.
type ckRR struct {
	hasPX   bool
	mode    uint32
	nlink   uint32
	uid     uint32
	gid     uint32
	name    string
	hasNM   bool
	target  string
	hasSL   bool
	mtime   time.Time
	hasTF   bool
	sigs    []string // every SUSP signature, in order
	ces     []ckCE
	erIDs   []string
	spFound bool
}

// ckEntry is one file, directory or symlink of a hierarchy, with all the
// records that make it up (several for a multi-extent file).
type ckEntry struct {
	path    string // slash-separated, relative; the root is "."
	id      []byte // identifier of the first record
	records []ckRecord
	rr      ckRR
	dir     bool
}

func (e *ckEntry) size() int64 {
	var n int64
	for _, r := range e.records {
		n += int64(r.size)
	}
	return n
}

func (e *ckEntry) fileMode() fs.FileMode {
	m := fs.FileMode(e.rr.mode & 0o777)
	if e.rr.mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if e.rr.mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if e.rr.mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch e.rr.mode & 0o170000 {
	case 0o040000:
		m |= fs.ModeDir
	case 0o120000:
		m |= fs.ModeSymlink
	case 0o100000:
	default:
		m |= fs.ModeIrregular
	}
	return m
}

func (ir *ckReader) sector(lba uint32) ([]byte, error) {
	b := make([]byte, ckSector)
	if int64(lba+1)*ckSector > ir.size {
		return nil, fmt.Errorf("sector %d is past the end of the image (%d bytes)", lba, ir.size)
	}
	if _, err := ir.r.ReadAt(b, int64(lba)*ckSector); err != nil {
		return nil, fmt.Errorf("sector %d: %w", lba, err)
	}
	return b, nil
}

// volume is a primary or supplementary (Joliet) volume descriptor.
type ckVolume struct {
	typ      byte
	volumeID []byte // raw 32 bytes
	blocks   uint32
	escapes  []byte
	root     ckRecord
	ptSize   uint32
	ptL, ptM uint32
	sector   uint32
}

// descriptors reads the volume descriptor set from sector 16.
func (ir *ckReader) descriptors() ([]ckVolume, []byte, error) {
	var vols []ckVolume
	var bootRecord []byte
	for s := uint32(16); ; s++ {
		b, err := ir.sector(s)
		if err != nil {
			return nil, nil, err
		}
		if string(b[1:6]) != "CD001" || b[6] != 1 {
			return nil, nil, fmt.Errorf("sector %d: not a volume descriptor", s)
		}
		switch b[0] {
		case 255:
			return vols, bootRecord, nil
		case 0:
			bootRecord, ir.bootSector = b, s
		case 1, 2:
			v := ckVolume{typ: b[0], volumeID: b[40:72], escapes: b[88:120], sector: s}
			v.blocks = binary.LittleEndian.Uint32(b[80:])
			if binary.BigEndian.Uint32(b[84:]) != v.blocks {
				return nil, nil, fmt.Errorf("sector %d: volume space size differs between byte orders", s)
			}
			v.ptSize = binary.LittleEndian.Uint32(b[132:])
			v.ptL = binary.LittleEndian.Uint32(b[140:])
			v.ptM = binary.BigEndian.Uint32(b[148:])
			r, err := ckParseRecord(b[156:190], 0, 0)
			if err != nil {
				return nil, nil, fmt.Errorf("sector %d: root record: %w", s, err)
			}
			v.root = r
			vols = append(vols, v)
		}
	}
}

func ckParseRecord(b []byte, dir uint32, off int) (ckRecord, error) {
	l := int(b[0])
	if l < 34 || l > len(b) {
		return ckRecord{}, fmt.Errorf("record at %d: bad length %d", off, l)
	}
	b = b[:l]
	r := ckRecord{dir: dir, offset: off, length: l}
	r.extent = binary.LittleEndian.Uint32(b[2:])
	if binary.BigEndian.Uint32(b[6:]) != r.extent {
		return r, fmt.Errorf("record at %d: extent differs between byte orders", off)
	}
	r.size = binary.LittleEndian.Uint32(b[10:])
	if binary.BigEndian.Uint32(b[14:]) != r.size {
		return r, fmt.Errorf("record at %d: size differs between byte orders", off)
	}
	copy(r.date[:], b[18:25])
	r.flags = b[25]
	if b[1] != 0 {
		return r, fmt.Errorf("record at %d: extended attribute record length %d", off, b[1])
	}
	idLen := int(b[32])
	if 33+idLen > l {
		return r, fmt.Errorf("record at %d: identifier of %d bytes overflows the record", off, idLen)
	}
	r.id = b[33 : 33+idLen]
	su := 33 + idLen
	if idLen%2 == 0 {
		su++ // padding
	}
	if su > l {
		return r, fmt.Errorf("record at %d: padding overflows the record", off)
	}
	r.system = b[su:]
	return r, nil
}

// readDir returns the records of the directory at lba, size bytes long,
// checking that none crosses a sector boundary.
func (ir *ckReader) readDir(lba, size uint32) ([]ckRecord, error) {
	if size%ckSector != 0 {
		return nil, fmt.Errorf("directory at sector %d: size %d is not a whole number of sectors", lba, size)
	}
	var recs []ckRecord
	for s := uint32(0); s < size/ckSector; s++ {
		b, err := ir.sector(lba + s)
		if err != nil {
			return nil, err
		}
		for off := 0; off < ckSector; {
			l := int(b[off])
			if l == 0 {
				break // the rest of the sector is unused
			}
			if off+l > ckSector {
				return nil, fmt.Errorf("directory at sector %d: record at byte %d of sector %d (%d bytes) crosses the sector boundary", lba, off, lba+s, l)
			}
			if l%2 != 0 {
				return nil, fmt.Errorf("directory at sector %d: record at byte %d of sector %d has odd length %d", lba, off, lba+s, l)
			}
			r, err := ckParseRecord(b[off:off+l], lba, int(s)*ckSector+off)
			if err != nil {
				return nil, fmt.Errorf("directory at sector %d: %w", lba, err)
			}
			recs = append(recs, r)
			off += l
		}
	}
	return recs, nil
}

// susp reads the SUSP entries of a record, following continuation areas,
// and interprets the Rock Ridge ones.
func (ir *ckReader) susp(r ckRecord) (ckRR, error) {
	var info ckRR
	area := r.system
	if len(area) >= ir.rrSkip {
		area = area[ir.rrSkip:]
	}
	var nm bytes.Buffer
	var sl strings.Builder
	slCont := false // the last SL component was continued
	slFirst := true
	nmDone, slDone := false, false
	for hops := 0; ; hops++ {
		if hops > 64 {
			return info, fmt.Errorf("more than 64 continuation areas")
		}
		var next *ckCE
		for len(area) >= 4 {
			sig := string(area[:2])
			l := int(area[2])
			if sig == "\x00\x00" || l == 0 {
				break // padding
			}
			if l < 4 || l > len(area) {
				return info, fmt.Errorf("%s entry of length %d overflows its area (%d bytes left)", sig, l, len(area))
			}
			e := area[4:l]
			info.sigs = append(info.sigs, sig)
			switch sig {
			case "SP":
				info.spFound = true
			case "ST":
				area = nil
				continue
			case "CE":
				if len(e) != 24 {
					return info, fmt.Errorf("CE entry of %d bytes", len(e))
				}
				c := ckCE{binary.LittleEndian.Uint32(e[0:]), binary.LittleEndian.Uint32(e[8:]), binary.LittleEndian.Uint32(e[16:])}
				if binary.BigEndian.Uint32(e[4:]) != c.lba || binary.BigEndian.Uint32(e[12:]) != c.offset || binary.BigEndian.Uint32(e[20:]) != c.length {
					return info, fmt.Errorf("CE entry differs between byte orders")
				}
				next = &c
				info.ces = append(info.ces, c)
			case "ER":
				if len(e) < 4 || 4+int(e[0])+int(e[1])+int(e[2]) > len(e) {
					return info, fmt.Errorf("bad ER entry")
				}
				info.erIDs = append(info.erIDs, string(e[4:4+e[0]]))
			case "PX":
				if len(e) != 32 && len(e) != 40 {
					return info, fmt.Errorf("PX entry of %d bytes", len(e))
				}
				info.hasPX = true
				info.mode = binary.LittleEndian.Uint32(e[0:])
				info.nlink = binary.LittleEndian.Uint32(e[8:])
				info.uid = binary.LittleEndian.Uint32(e[16:])
				info.gid = binary.LittleEndian.Uint32(e[24:])
				if binary.BigEndian.Uint32(e[4:]) != info.mode {
					return info, fmt.Errorf("PX mode differs between byte orders")
				}
			case "NM":
				if nmDone {
					return info, fmt.Errorf("NM entry after a final one")
				}
				if len(e) < 1 {
					return info, fmt.Errorf("empty NM entry")
				}
				info.hasNM = true
				nm.Write(e[1:])
				nmDone = e[0]&1 == 0
			case "SL":
				if slDone {
					return info, fmt.Errorf("SL entry after a final one")
				}
				if len(e) < 1 {
					return info, fmt.Errorf("empty SL entry")
				}
				info.hasSL = true
				comps := e[1:]
				for len(comps) > 0 {
					if len(comps) < 2 || 2+int(comps[1]) > len(comps) {
						return info, fmt.Errorf("SL component overflows its entry")
					}
					flags, text := comps[0], string(comps[2:2+comps[1]])
					comps = comps[2+comps[1]:]
					if !slFirst && !slCont {
						sl.WriteByte('/')
					}
					switch {
					case flags&0x08 != 0:
						sl.WriteString("/")
						slFirst, slCont = true, false
						continue
					case flags&0x02 != 0:
						sl.WriteString(".")
					case flags&0x04 != 0:
						sl.WriteString("..")
					default:
						sl.WriteString(text)
					}
					slFirst, slCont = false, flags&1 != 0
				}
				slDone = e[0]&1 == 0
			case "TF":
				if len(e) < 1 {
					return info, fmt.Errorf("empty TF entry")
				}
				flags, d := e[0], e[1:]
				if flags&0x80 != 0 {
					return info, fmt.Errorf("TF with long-form dates")
				}
				if flags&0x01 != 0 { // creation, skipped
					d = d[7:]
				}
				if flags&0x02 != 0 && len(d) >= 7 {
					info.hasTF = true
					info.mtime = ckDate(d[:7])
				}
			}
			area = area[l:]
		}
		if next == nil {
			break
		}
		if next.offset+next.length > ckSector {
			return info, fmt.Errorf("continuation area at sector %d, offset %d, %d bytes crosses the sector boundary", next.lba, next.offset, next.length)
		}
		b, err := ir.sector(next.lba)
		if err != nil {
			return info, fmt.Errorf("continuation area: %w", err)
		}
		area = b[next.offset : next.offset+next.length]
	}
	info.name = nm.String()
	info.target = sl.String()
	return info, nil
}

func ckDate(d []byte) time.Time {
	return time.Date(1900+int(d[0]), time.Month(d[1]), int(d[2]), int(d[3]), int(d[4]), int(d[5]), 0,
		time.FixedZone("", int(int8(d[6]))*15*60))
}

// ckJolietName decodes a UCS-2 big-endian identifier.
func ckJolietName(id []byte) string {
	u := make([]uint16, len(id)/2)
	for i := range u {
		u[i] = binary.BigEndian.Uint16(id[2*i:])
	}
	return string(utf16.Decode(u))
}

// hierarchy reads one whole tree from its root record: with rr the names
// are Rock Ridge names, with joliet they are decoded UCS-2 (without the
// ";1"), otherwise they are the raw identifiers. Entries are keyed by path.
// Every directory is read once; a loop or a directory reached twice is an
// error.
func (ir *ckReader) hierarchy(root ckRecord, joliet, rr bool) (map[string]*ckEntry, error) {
	out := map[string]*ckEntry{}
	seen := map[uint32]bool{}
	type job struct {
		path string
		rec  ckRecord
	}
	queue := []job{{".", root}}
	out["."] = &ckEntry{path: ".", records: []ckRecord{root}, dir: true}
	for len(queue) > 0 {
		j := queue[0]
		queue = queue[1:]
		if seen[j.rec.extent] {
			return nil, fmt.Errorf("%s: directory at sector %d reached twice", j.path, j.rec.extent)
		}
		seen[j.rec.extent] = true
		recs, err := ir.readDir(j.rec.extent, j.rec.size)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", j.path, err)
		}
		if len(recs) < 2 || !bytes.Equal(recs[0].id, []byte{0}) || !bytes.Equal(recs[1].id, []byte{1}) {
			return nil, fmt.Errorf("%s: directory does not start with . and ..", j.path)
		}
		if recs[0].extent != j.rec.extent {
			return nil, fmt.Errorf("%s: \".\" points at sector %d, not %d", j.path, recs[0].extent, j.rec.extent)
		}
		if j.path == "." && rr && !joliet {
			// The root's "." holds SP (SUSP 5.3), then ER.
			if s := recs[0].system; len(s) >= 7 && string(s[:2]) == "SP" && s[4] == 0xBE && s[5] == 0xEF {
				ir.rr, ir.rrSkip = true, int(s[6])
			}
			info, err := ir.susp(recs[0])
			if err != nil {
				return nil, fmt.Errorf("root: %w", err)
			}
			out["."].rr = info
		}
		var prev *ckEntry
		for _, r := range recs[2:] {
			if prev != nil && prev.records[len(prev.records)-1].flags&0x80 != 0 {
				// a further extent of the previous file
				if !bytes.Equal(r.id, prev.id) {
					return nil, fmt.Errorf("%s: multi-extent file %q continued by %q", j.path, prev.id, r.id)
				}
				if rr && !joliet {
					// its system use area must be sound too
					info, err := ir.susp(r)
					if err != nil {
						return nil, fmt.Errorf("%s/%s: extent %d: %w", j.path, r.id, len(prev.records), err)
					}
					if info.name != prev.rr.name {
						return nil, fmt.Errorf("%s/%s: extent %d is named %q, not %q", j.path, r.id, len(prev.records), info.name, prev.rr.name)
					}
				}
				prev.records = append(prev.records, r)
				continue
			}
			e := &ckEntry{id: r.id, records: []ckRecord{r}, dir: r.flags&0x02 != 0}
			name := string(r.id)
			if joliet {
				name = strings.TrimSuffix(ckJolietName(r.id), ";1")
			}
			if rr && !joliet {
				info, err := ir.susp(r)
				if err != nil {
					return nil, fmt.Errorf("%s/%s: %w", j.path, r.id, err)
				}
				e.rr = info
				if !info.hasNM {
					return nil, fmt.Errorf("%s/%s: no NM entry", j.path, r.id)
				}
				name = info.name
			}
			e.path = name
			if j.path != "." {
				e.path = j.path + "/" + name
			}
			if out[e.path] != nil {
				return nil, fmt.Errorf("%s: two entries named %q", j.path, name)
			}
			out[e.path] = e
			prev = e
			if e.dir {
				queue = append(queue, job{e.path, r})
			}
		}
		if prev != nil && prev.records[len(prev.records)-1].flags&0x80 != 0 {
			return nil, fmt.Errorf("%s: the last record says more extents follow", j.path)
		}
	}
	return out, nil
}

// readFile reads n bytes at off of a file, across its extents.
func (ir *ckReader) readFile(e *ckEntry, off int64, n int) ([]byte, error) {
	out := make([]byte, 0, n)
	base := int64(0)
	for _, r := range e.records {
		end := base + int64(r.size)
		for off < end && len(out) < n {
			k := min(int64(n-len(out)), end-off)
			b := make([]byte, k)
			if _, err := ir.r.ReadAt(b, int64(r.extent)*ckSector+(off-base)); err != nil {
				return nil, err
			}
			out = append(out, b...)
			off += k
		}
		base = end
	}
	if len(out) != n {
		return nil, fmt.Errorf("%s: read past the end", e.path)
	}
	return out, nil
}
