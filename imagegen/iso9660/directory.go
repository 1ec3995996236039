package iso9660

// Directory hierarchies (ECMA-119 6.8 and 9.1, with Rock Ridge for the primary
// one and Joliet's UCS-2 names for the second): their layout after the file
// data, their records and the sectors they are written to.

import (
	"bytes"
	"fmt"
	"io/fs"
	"sort"
)

// hierarchy is one directory tree as recorded: the primary one (ISO names
// with Rock Ridge) or the Joliet one.
type hierarchy struct {
	joliet bool
	dirs   []*node               // breadth first, the path table order
	recs   map[*node][]dirRecord // per directory: ".", "..", children
	ce     [][]byte              // continuation sectors (primary only)
	start  int64                 // first sector of the directories
	ceAt   int64                 // first sector of the continuation areas
	ptL    int64                 // sector of the little-endian path table
	ptM    int64
	ptSize int
}

// dirRecord is a directory record before sector numbers are known.
type dirRecord struct {
	target *node // the entry it describes; for "." and ".." the directory
	id     []byte
	flags  byte
	part   int // extent index of a multi-extent file
	parts  int
	susp   susp
	offset int // within the directory's sectors
}

// layout assigns sectors to one hierarchy's directories, continuation
// areas and path tables, starting at sector at.
func (w *Writer) layout(joliet bool, at int64) *hierarchy {
	h := &hierarchy{joliet: joliet, recs: map[*node][]dirRecord{}}
	// Breadth first, children sorted by their identifiers.
	h.dirs = []*node{w.root}
	for i := 0; i < len(h.dirs); i++ {
		d := h.dirs[i]
		w.name(d, joliet)
		for _, c := range d.children {
			if c.isDir() {
				h.dirs = append(h.dirs, c)
			}
		}
	}
	for i, d := range h.dirs {
		if joliet {
			d.jPTNum = uint16(min(i+1, 0xFFFF))
		} else {
			d.ptNum = uint16(min(i+1, 0xFFFF))
		}
	}
	// Directory sizes do not depend on sector numbers, so records can be
	// built and measured first.
	next := at
	var ceSecs []int // bytes used in each continuation sector
	for _, d := range h.dirs {
		recs := w.records(d, joliet)
		off := 0
		for i := range recs {
			r := &recs[i]
			l := r.length()
			if off%sectorSize+l > sectorSize {
				off = (off/sectorSize + 1) * sectorSize
			}
			r.offset = off
			off += l
			for k := range r.susp.chunks {
				size := r.susp.ceSize(k)
				if len(ceSecs) == 0 || ceSecs[len(ceSecs)-1]+size > sectorSize {
					ceSecs = append(ceSecs, 0)
				}
				r.susp.loc = append(r.susp.loc, ceLoc{sector: int64(len(ceSecs) - 1), offset: ceSecs[len(ceSecs)-1]})
				ceSecs[len(ceSecs)-1] += size
			}
		}
		size := sectors(int64(off)) * sectorSize
		if joliet {
			d.jLBA, d.jSize = uint32(next), size
		} else {
			d.lba, d.size = uint32(next), size
		}
		next += size / sectorSize
		h.recs[d] = recs
	}
	h.ceAt = next
	next += int64(len(ceSecs))
	h.ce = make([][]byte, len(ceSecs))
	for _, d := range h.dirs {
		h.ptSize += 8 + len(ptID(d, joliet)) + len(ptID(d, joliet))%2
	}
	h.ptL = next
	h.ptM = next + sectors(int64(h.ptSize))
	h.start = at
	return h
}

// name gives the children of d their identifiers and sorts them.
func (w *Writer) name(d *node, joliet bool) {
	names := make([]string, len(d.children))
	dirs := make([]bool, len(d.children))
	// Identifiers are assigned in the order of the POSIX names, so that
	// the same tree always gets the same ones.
	sort.Slice(d.children, func(i, j int) bool { return d.children[i].name < d.children[j].name })
	for i, c := range d.children {
		names[i], dirs[i] = c.name, c.isDir()
	}
	if joliet {
		ids := jolietNames(names, dirs)
		for i, c := range d.children {
			c.jID = ids[i]
		}
		sort.SliceStable(d.children, func(i, j int) bool {
			return bytes.Compare(d.children[i].jID, d.children[j].jID) < 0
		})
		return
	}
	ids := isoNames(names, dirs)
	for i, c := range d.children {
		c.isoID = ids[i]
	}
	sort.SliceStable(d.children, func(i, j int) bool { return isoLess(d.children[i].isoID, d.children[j].isoID) })
}

func (r *dirRecord) length() int {
	l := 33 + len(r.id)
	if len(r.id)%2 == 0 {
		l++
	}
	l += len(r.susp.inline) + map[bool]int{true: ceLen, false: 0}[len(r.susp.chunks) > 0]
	return l + l%2 // ECMA-119 9.1.13: a record is an even number of bytes
}

// records builds directory d's records: ".", "..", then its children,
// multi-extent files as several records.
func (w *Writer) records(d *node, joliet bool) []dirRecord {
	parent := d.parent
	if parent == nil {
		parent = d
	}
	var recs []dirRecord
	mk := func(target *node, id []byte, flags byte, part, parts int, entries [][]byte) dirRecord {
		r := dirRecord{target: target, id: id, flags: flags, part: part, parts: parts}
		if !joliet {
			base := 33 + len(id)
			if len(id)%2 == 0 {
				base++
			}
			r.susp = pack(entries, 254-base) // 254: the longest even record
		}
		return r
	}
	dot := [][]byte{}
	if !joliet {
		if d.parent == nil {
			dot = append(dot, rrSP())
		}
		dot = append(dot, rrPX(d.mode, nlink(d), d.uid, d.gid), rrTF(d.mtime))
		if d.parent == nil {
			dot = append(dot, rrER())
		}
	}
	recs = append(recs, mk(d, []byte{0}, 0x02, 0, 1, dot))
	var dotdot [][]byte
	if !joliet {
		dotdot = [][]byte{rrPX(parent.mode, nlink(parent), parent.uid, parent.gid), rrTF(parent.mtime)}
	}
	recs = append(recs, mk(parent, []byte{1}, 0x02, 0, 1, dotdot))
	for _, c := range d.children {
		if joliet && c.mode.Type() == fs.ModeSymlink {
			continue
		}
		var entries [][]byte
		id := []byte(c.isoID)
		if joliet {
			id = c.jID
		} else {
			entries = append(entries, rrPX(c.mode, nlink(c), c.uid, c.gid), rrTF(c.mtime))
			entries = append(entries, rrNM(c.name)...)
			if c.linkname != "" {
				entries = append(entries, rrSL(c.linkname)...)
			}
		}
		if c.isDir() {
			recs = append(recs, mk(c, id, 0x02, 0, 1, entries))
			continue
		}
		parts := 1
		if c.size > maxExtent {
			parts = int((c.size + maxExtent - 1) / maxExtent)
		}
		for k := range parts {
			flags := byte(0)
			if k < parts-1 {
				flags = 0x80 // more extents follow
			}
			recs = append(recs, mk(c, id, flags, k, parts, entries))
		}
	}
	return recs
}

func nlink(n *node) uint32 {
	if !n.isDir() {
		return 1
	}
	l := uint32(2)
	for _, c := range n.children {
		if c.isDir() {
			l++
		}
	}
	return l
}

func (h *hierarchy) extent(n *node) (lba uint32, size int64) {
	if h.joliet && n.isDir() {
		return n.jLBA, n.jSize
	}
	if n.mode.Type() == fs.ModeSymlink { // symlinks have no data
		return 0, 0
	}
	return n.lba, n.size
}

func (r *dirRecord) bytes(h *hierarchy) []byte {
	lba, size := h.extent(r.target)
	if r.parts > 1 {
		lba += uint32(int64(r.part) * maxExtent / sectorSize)
		size = min(size-int64(r.part)*maxExtent, maxExtent)
	}
	if r.target.mode.Type() == fs.ModeSymlink {
		lba = 0
	}
	b := make([]byte, 0, 255)
	b = append(b, 0, 0) // length, patched; no extended attribute record
	b = both32(b, lba)
	b = both32(b, uint32(size))
	b = append(b, recordDate(r.target.mtime)...)
	b = append(b, r.flags, 0, 0)
	b = both16(b, 1) // volume sequence number
	b = append(b, byte(len(r.id)))
	b = append(b, r.id...)
	if len(r.id)%2 == 0 {
		b = append(b, 0)
	}
	b = append(b, r.susp.bytes(uint32(h.ceAt))...)
	if len(b)%2 == 1 {
		b = append(b, 0) // ECMA-119 9.1.13
	}
	b[0] = byte(len(b))
	return b
}

// writeHierarchy writes one hierarchy's directories, continuation areas
// and path tables.
func (w *Writer) writeHierarchy(h *hierarchy) error {
	if err := w.writeDirectories(h); err != nil {
		return err
	}
	return w.writePathTables(h)
}

// writeDirectories writes the directory records and, for Rock Ridge
// entries too long for them, the continuation areas.
func (w *Writer) writeDirectories(h *hierarchy) error {
	for _, d := range h.dirs {
		lba, size := d.lba, d.size
		if h.joliet {
			lba, size = d.jLBA, d.jSize
		}
		buf := make([]byte, size)
		for _, r := range h.recs[d] {
			copy(buf[r.offset:], r.bytes(h))
			for k := range r.susp.chunks {
				loc := r.susp.loc[k]
				if h.ce[loc.sector] == nil {
					h.ce[loc.sector] = make([]byte, sectorSize)
				}
				copy(h.ce[loc.sector][loc.offset:], r.susp.chunkBytes(k, uint32(h.ceAt)))
			}
		}
		if _, err := w.f.WriteAt(buf, int64(lba)*sectorSize); err != nil {
			return fmt.Errorf("iso9660: write directory: %w", err)
		}
	}
	for i, c := range h.ce {
		if _, err := w.f.WriteAt(c, (h.ceAt+int64(i))*sectorSize); err != nil {
			return fmt.Errorf("iso9660: write continuation area: %w", err)
		}
	}
	return nil
}
