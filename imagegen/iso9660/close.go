package iso9660

import (
	"bytes"
	"encoding/binary"
	"errors"
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

// Close lays out the directories and path tables after the data, writes
// the volume descriptors, the boot catalog and, for hybrid images, the MBR
// and GPT. It does not close the File.
func (w *Writer) Close() error {
	if err := w.usable(); err != nil {
		return err
	}
	if err := w.finishFile(); err != nil {
		return err
	}
	w.done = true
	if len(w.opts.Boot) > 0 {
		cat := w.nodes[w.opts.Catalog]
		cat.lba, cat.size = w.catalogSector(), sectorSize
	}
	for p := range w.boot {
		n := w.nodes[p]
		if n == nil || !n.mode.IsRegular() || n.size == 0 {
			return fmt.Errorf("iso9660: boot image /%s was not added as a non-empty file", p)
		}
	}

	prim := w.layout(false, w.next)
	end := prim.ptM + sectors(int64(prim.ptSize))
	var jol *hierarchy
	if w.opts.Joliet {
		jol = w.layout(true, end)
		end = jol.ptM + sectors(int64(jol.ptSize))
	}
	total := end
	if w.opts.Hybrid != nil {
		// Whole 1 MiB "cylinders" (64 heads × 32 sectors), as isohybrid
		// does for picky BIOSes, with room at the end for the backup GPT.
		need := total*4 + gptTailSectors
		total = (need + 2047) / 2048 * 2048 / 4
	}
	if total > 1<<32-1 {
		return errors.New("iso9660: image larger than 8 TiB")
	}

	if err := w.writeHierarchy(prim); err != nil {
		return err
	}
	if jol != nil {
		if err := w.writeHierarchy(jol); err != nil {
			return err
		}
	}
	if err := w.writeDescriptors(prim, jol, uint32(total)); err != nil {
		return err
	}
	if err := w.f.Truncate(total * sectorSize); err != nil {
		return fmt.Errorf("iso9660: %w", err)
	}
	if w.opts.Hybrid != nil {
		if err := w.writeHybrid(total); err != nil {
			return err
		}
	}
	return nil
}

func (w *Writer) catalogSector() uint32 { return uint32(w.empty) - 1 }

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

func ptID(d *node, joliet bool) []byte {
	if d.parent == nil {
		return []byte{0}
	}
	if joliet {
		return d.jID
	}
	return []byte(d.isoID)
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

func (w *Writer) writeHierarchy(h *hierarchy) error {
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
	var l, m []byte
	for _, d := range h.dirs {
		id := ptID(d, h.joliet)
		lba, parent := d.lba, uint16(1)
		if d.parent != nil {
			parent = d.parent.ptNum
		}
		if h.joliet {
			lba = d.jLBA
			if d.parent != nil {
				parent = d.parent.jPTNum
			}
		}
		for _, t := range []*[]byte{&l, &m} {
			*t = append(*t, byte(len(id)), 0)
		}
		l = binary.LittleEndian.AppendUint32(l, lba)
		l = binary.LittleEndian.AppendUint16(l, parent)
		m = binary.BigEndian.AppendUint32(m, lba)
		m = binary.BigEndian.AppendUint16(m, parent)
		for _, t := range []*[]byte{&l, &m} {
			*t = append(*t, id...)
			if len(id)%2 == 1 {
				*t = append(*t, 0)
			}
		}
	}
	if _, err := w.f.WriteAt(l, h.ptL*sectorSize); err != nil {
		return fmt.Errorf("iso9660: write path table: %w", err)
	}
	if _, err := w.f.WriteAt(m, h.ptM*sectorSize); err != nil {
		return fmt.Errorf("iso9660: write path table: %w", err)
	}
	return nil
}

func (w *Writer) writeDescriptors(prim, jol *hierarchy, total uint32) error {
	sector := int64(16)
	put := func(b []byte) error {
		_, err := w.f.WriteAt(b, sector*sectorSize)
		sector++
		if err != nil {
			return fmt.Errorf("iso9660: write volume descriptor: %w", err)
		}
		return nil
	}
	if err := put(w.volumeDescriptor(prim, total)); err != nil {
		return err
	}
	if len(w.opts.Boot) > 0 {
		br := make([]byte, sectorSize)
		copy(br, "\x00CD001\x01EL TORITO SPECIFICATION")
		binary.LittleEndian.PutUint32(br[0x47:], w.catalogSector())
		if err := put(br); err != nil {
			return err
		}
	}
	if jol != nil {
		if err := put(w.volumeDescriptor(jol, total)); err != nil {
			return err
		}
	}
	term := make([]byte, sectorSize)
	copy(term, "\xffCD001\x01")
	if err := put(term); err != nil {
		return err
	}
	if len(w.opts.Boot) > 0 {
		if _, err := w.f.WriteAt(w.catalog(), int64(w.catalogSector())*sectorSize); err != nil {
			return fmt.Errorf("iso9660: write boot catalog: %w", err)
		}
	}
	return nil
}

// volumeDescriptor is the primary (or, for Joliet, supplementary) one.
func (w *Writer) volumeDescriptor(h *hierarchy, total uint32) []byte {
	text := func(s string, n int) []byte { return padded(s, n, ' ') }
	b := make([]byte, 0, sectorSize)
	typ := byte(1)
	if h.joliet {
		typ = 2
		text = func(s string, n int) []byte { return ucs2Field(s, n) }
	}
	sys := w.opts.SystemID
	if sys == "" {
		sys = "LINUX"
	}
	b = append(b, typ)
	b = append(b, "CD001\x01\x00"...)
	b = append(b, text(sys, 32)...)
	b = append(b, text(w.opts.VolumeID, 32)...)
	b = append(b, make([]byte, 8)...)
	b = both32(b, total)
	esc := make([]byte, 32)
	if h.joliet {
		copy(esc, "%/E") // UCS-2 level 3
	}
	b = append(b, esc...)
	b = both16(b, 1) // volume set size
	b = both16(b, 1) // volume sequence number
	b = both16(b, sectorSize)
	b = both32(b, uint32(h.ptSize))
	b = binary.LittleEndian.AppendUint32(b, uint32(h.ptL))
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(h.ptM))
	b = binary.BigEndian.AppendUint32(b, 0)
	// The root's record, without system use entries.
	root := w.root
	lba, size := root.lba, root.size
	if h.joliet {
		lba, size = root.jLBA, root.jSize
	}
	r := make([]byte, 0, 34)
	r = append(r, 34, 0)
	r = both32(r, lba)
	r = both32(r, uint32(size))
	r = append(r, recordDate(root.mtime)...)
	r = append(r, 0x02, 0, 0)
	r = both16(r, 1)
	r = append(r, 1, 0)
	b = append(b, r...)
	b = append(b, text("", 128)...) // volume set
	b = append(b, text(w.opts.Publisher, 128)...)
	b = append(b, text(w.opts.Preparer, 128)...)
	b = append(b, text(w.opts.Application, 128)...)
	b = append(b, text("", 37)...) // copyright file
	b = append(b, text("", 37)...) // abstract file
	b = append(b, text("", 37)...) // bibliographic file
	d := volumeDate(w.opts.ModTime)
	b = append(b, d...)                              // created
	b = append(b, d...)                              // modified
	b = append(b, []byte("0000000000000000\x00")...) // expires: never
	b = append(b, d...)                              // effective
	b = append(b, 1, 0)                              // file structure version
	return append(b, make([]byte, sectorSize-len(b))...)
}

// ucs2Field encodes s as UCS-2 big-endian in n bytes, padded with spaces.
func ucs2Field(s string, n int) []byte {
	b := make([]byte, 0, n)
	for _, r := range s {
		if len(b)+2 > n {
			break
		}
		if r > 0xFFFF {
			r = '_'
		}
		b = binary.BigEndian.AppendUint16(b, uint16(r))
	}
	for len(b)+2 <= n {
		b = append(b, 0, ' ')
	}
	return append(b, make([]byte, n-len(b))...)
}

// catalog builds the El Torito boot catalog: the validation entry, the
// default (first) entry, then one section per further entry.
func (w *Writer) catalog() []byte {
	b := make([]byte, 0, sectorSize)
	entry := func(e BootEntry) []byte {
		n := w.nodes[mustClean(e.Path)]
		count := e.LoadSectors
		if count == 0 {
			count = uint16(min((n.size+511)/512, 0xFFFF))
		}
		r := []byte{0x88, 0, 0, 0, 0, 0}
		r = binary.LittleEndian.AppendUint16(r, count)
		r = binary.LittleEndian.AppendUint32(r, n.lba)
		return append(r, make([]byte, 20)...)
	}
	first := w.opts.Boot[0]
	v := make([]byte, 32)
	v[0], v[1] = 1, byte(first.Platform)
	v[30], v[31] = 0x55, 0xAA
	var sum uint16
	for i := 0; i < 32; i += 2 {
		sum += binary.LittleEndian.Uint16(v[i:])
	}
	binary.LittleEndian.PutUint16(v[28:], -sum)
	b = append(b, v...)
	b = append(b, entry(first)...)
	rest := w.opts.Boot[1:]
	for i, e := range rest {
		hdr := []byte{0x90, byte(e.Platform), 1, 0}
		if i == len(rest)-1 {
			hdr[0] = 0x91 // last section
		}
		b = append(b, append(hdr, make([]byte, 28)...)...)
		b = append(b, entry(e)...)
	}
	return append(b, make([]byte, sectorSize-len(b))...)
}

func mustClean(p string) string {
	c, _ := clean(p)
	return c
}
