package fat

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf16"
)

// entry is a file or directory of the image.
type entry struct {
	name     string
	path     string // as given, for errors
	dir      bool
	explicit bool
	size     int64
	mtime    time.Time
	open     func() (io.ReadCloser, error)
	parent   *entry
	kids     []*entry
	byKey    map[string]*entry

	// Filled in by the plan.
	units []uint16 // the name in UTF-16, for long-name entries
	short [11]byte
	lfn   bool
	slots int    // directories: 32-byte slots of the directory's own listing
	first uint32 // first cluster, 0 if none
	nclus int64
}

type tree struct {
	root *entry
}

func newTree() *tree {
	return &tree{root: &entry{dir: true, explicit: true, byKey: map[string]*entry{}}}
}

// add puts one entry in the tree, creating missing parents.
func (t *tree) add(h *Header, open func() (io.ReadCloser, error)) (*entry, error) {
	parts, err := splitPath(h.Name)
	if err != nil {
		return nil, err
	}
	if h.Dir && h.Size != 0 {
		return nil, pathErr(h.Name, ErrInvalidName, "directory with size %d", h.Size)
	}
	if !h.Dir && (h.Size < 0 || h.Size > MaxFileSize) {
		return nil, pathErr(h.Name, ErrTooLarge, "size %d: FAT files hold 0 to %d bytes (4 GiB - 1)", h.Size, int64(MaxFileSize))
	}
	d := t.root
	for i, c := range parts {
		last := i == len(parts)-1
		key := foldKey(c)
		e := d.byKey[key]
		if e != nil && e.name != c {
			return nil, pathErr(h.Name, ErrDuplicate, "%q and %q differ only in case, and FAT compares names case-insensitively", strings.Join(append(parts[:i:i], e.name), "/"), strings.Join(parts[:i+1], "/"))
		}
		if !last {
			if e == nil {
				e = &entry{name: c, path: strings.Join(parts[:i+1], "/"), dir: true, byKey: map[string]*entry{}, parent: d}
				d.byKey[key] = e
				d.kids = append(d.kids, e)
			} else if !e.dir {
				return nil, pathErr(h.Name, ErrDuplicate, "parent %q is a file", e.path)
			}
			d = e
			continue
		}
		if e != nil {
			if e.dir && h.Dir && !e.explicit {
				e.explicit = true
				e.mtime = h.ModTime
				return e, nil
			}
			return nil, pathErr(h.Name, ErrDuplicate, "added twice")
		}
		e = &entry{name: c, path: h.Name, dir: h.Dir, explicit: true, size: h.Size, mtime: h.ModTime, open: open, parent: d}
		if h.Dir {
			e.byKey = map[string]*entry{}
		}
		d.byKey[key] = e
		d.kids = append(d.kids, e)
		return e, nil
	}
	panic("unreachable")
}

// plan is a complete layout: the Layout plus what writing needs.
type plan struct {
	Layout
	opts      Options
	label     [11]byte
	hasLabel  bool
	spc       int   // sectors per cluster
	rootSecs  int   // sectors of the fixed root directory (FAT12/16)
	totalSecs int64 // sectors in the image
	root      *entry
	dirs      []*entry // in cluster order (the FAT32 root first)
	files     []*entry // in cluster order
}

// makePlan names the entries and chooses the layout.
func makePlan(t *tree, opts Options) (*plan, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	p := &plan{opts: opts, root: t.root}
	p.label, _ = labelBytes(opts.VolumeLabel)
	p.hasLabel = opts.VolumeLabel != ""
	if !p.hasLabel {
		p.label = [11]byte{'N', 'O', ' ', 'N', 'A', 'M', 'E', ' ', ' ', ' ', ' '}
	}
	if err := p.walk(t.root); err != nil {
		return nil, err
	}
	return p.choose()
}

// walk names every entry under d and counts its directory slots, and lists
// directories and files in a fixed order: depth first, by name.
func (p *plan) walk(d *entry) error {
	sort.Slice(d.kids, func(i, j int) bool { return d.kids[i].name < d.kids[j].name })
	var label *[11]byte
	if d == p.root && p.hasLabel {
		label = &p.label
	}
	if err := assignShortNames(d, label); err != nil {
		return err
	}
	d.slots = 0
	if d != p.root {
		d.slots = 2 // "." and ".."
	} else if p.hasLabel {
		d.slots = 1
	}
	for _, e := range d.kids {
		e.units = utf16.Encode([]rune(e.name))
		d.slots++
		if e.lfn {
			d.slots += lfnSlots(len(e.units))
		}
	}
	if d.slots > maxDirEnt {
		what := "directory"
		if d == p.root {
			what = "the root directory"
		}
		return pathErr(d.path, ErrTooLarge, "%s needs %d entries (long names take several); FAT allows %d", what, d.slots, maxDirEnt)
	}
	p.dirs = append(p.dirs, d)
	for _, e := range d.kids {
		if !e.dir {
			p.files = append(p.files, e)
		}
	}
	for _, e := range d.kids {
		if e.dir {
			if err := p.walk(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// choose tries the candidates: the forced type or each type in turn, the
// forced cluster size or each one allowed; within the first type that
// fits, the smallest image wins (the larger cluster on a tie).
func (p *plan) choose() (*plan, error) {
	opts := p.opts
	types := []Type{FAT12, FAT16, FAT32}
	if opts.Type != 0 {
		types = []Type{opts.Type}
	}
	var reasons []string
	for _, typ := range types {
		var spcs []int
		switch {
		case opts.ClusterSize != 0:
			spcs = []int{opts.ClusterSize / sectorSize}
		case typ != FAT32 && opts.Type == 0:
			spcs = []int{1, 2, 4, 8} // FAT12/16 up to 4 KiB clusters, then FAT32
		default:
			spcs = []int{1, 2, 4, 8, 16, 32, 64}
		}
		var best *plan
		for _, spc := range spcs {
			c, reason := p.fit(typ, spc)
			if c == nil {
				reasons = append(reasons, reason)
				continue
			}
			if best == nil || c.totalSecs < best.totalSecs || (c.totalSecs == best.totalSecs && c.spc > best.spc) {
				best = c
			}
		}
		if best != nil {
			best.allocate()
			return best, nil
		}
	}
	var contentBytes int64
	for _, f := range p.files {
		contentBytes += f.size
	}
	return nil, &Error{Err: ErrTooLarge, Detail: fmt.Sprintf("content of %d bytes in %d files does not fit: %s", contentBytes, len(p.files), strings.Join(reasons, "; "))}
}

// fit lays the content out as typ with spc sectors per cluster, or says why
// it cannot.
func (p *plan) fit(typ Type, spc int) (*plan, string) {
	cs := int64(spc * sectorSize)
	clus := func(bytes int64) int64 { return (bytes + cs - 1) / cs }
	var need int64
	for _, f := range p.files {
		need += clus(f.size)
	}
	for _, d := range p.dirs {
		if d == p.root && typ != FAT32 {
			continue
		}
		need += max(1, clus(int64(d.slots)*32))
	}
	free := p.opts.FreeSpace
	if free == 0 {
		free = DefaultFreeSpace
	}
	need += clus(max(0, free))

	c := *p
	c.Type, c.spc, c.ClusterSize = typ, spc, int(cs)
	var lo, hi int64
	switch typ {
	case FAT12:
		lo, hi = 1, max12
	case FAT16:
		lo, hi = min16, max16
	case FAT32:
		lo, hi = min32, max32
	}
	if typ == FAT32 {
		c.ReservedSectors = 32
	} else {
		c.ReservedSectors = 1
		// 512 root slots as usual, more if the root needs them.
		c.RootEntries = max(512, (p.root.slots+15)/16*16)
		if c.RootEntries > 0xFFF0 {
			return nil, fmt.Sprintf("%s: the root directory needs %d entries, at most %d fit", typ, p.root.slots, 0xFFF0)
		}
		c.rootSecs = c.RootEntries * 32 / sectorSize
	}
	n := max(need, lo)
	if n > hi {
		return nil, fmt.Sprintf("%s with %d-byte clusters needs %d clusters, more than %d", typ, cs, n, hi)
	}
	for range 100 {
		fatBytes := (n + 2) * int64(typ) / 8
		if typ == FAT12 {
			fatBytes = ((n+2)*3 + 1) / 2
		}
		fatSecs := (fatBytes + sectorSize - 1) / sectorSize
		meta := int64(c.ReservedSectors) + 2*fatSecs + int64(c.rootSecs)
		total := (meta + n*int64(spc) + alignSector - 1) / alignSector * alignSector
		extra := total - meta - n*int64(spc) // sectors the rounding adds
		if extra >= int64(spc) {
			if more := extra / int64(spc); n+more <= hi {
				n += more // room for more clusters: cover them in the FAT
				continue
			}
			// More clusters would change the FAT type: the padding goes
			// to the root directory (FAT12/16) or the reserved sectors.
			if typ == FAT32 {
				c.ReservedSectors += int(extra)
			} else {
				c.rootSecs += int(extra)
				c.RootEntries = c.rootSecs * sectorSize / 32
			}
		}
		if total > 0xFFFFFFFF {
			return nil, fmt.Sprintf("%s with %d-byte clusters: %d sectors, more than 32 bits hold", typ, cs, total)
		}
		c.FATSectors = int(fatSecs)
		c.Clusters = int(n)
		c.totalSecs = total
		c.Size = total * sectorSize
		c.dirs = append([]*entry(nil), p.dirs...)
		c.files = append([]*entry(nil), p.files...)
		return &c, ""
	}
	return nil, fmt.Sprintf("%s with %d-byte clusters: layout does not settle", typ, cs)
}

// allocate gives every directory and non-empty file its run of clusters.
func (p *plan) allocate() {
	cs := int64(p.ClusterSize)
	next := int64(2)
	for _, d := range p.dirs {
		d.first, d.nclus = 0, 0
		if d == p.root && p.Type != FAT32 {
			continue
		}
		d.nclus = max(1, (int64(d.slots)*32+cs-1)/cs)
		d.first = uint32(next)
		next += d.nclus
	}
	for _, f := range p.files {
		f.first, f.nclus = 0, 0
		if f.size == 0 {
			continue
		}
		f.nclus = (f.size + cs - 1) / cs
		f.first = uint32(next)
		next += f.nclus
	}
	p.UsedClusters = int(next - 2)
}
