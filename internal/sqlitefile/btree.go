package sqlitefile

import "encoding/binary"

// The layout this package writes (https://www.sqlite.org/fileformat2.html).
const (
	// PageSize is the page size of the files written.
	PageSize = 4096
	pageSize = PageSize
	// Largest payloads kept on a b-tree page (no overflow): U-35 on table
	// leaves, ((U-12)*64/255)-23 on index pages.
	maxTablePayload = pageSize - 35
	maxIndexPayload = (pageSize-12)*64/255 - 23
	// sqliteVersion is the library version the header names: the one
	// that last wrote the file.
	sqliteVersion = 3046001
)

// b-tree page types.
const (
	indexInterior = 0x02
	tableInterior = 0x05
	indexLeaf     = 0x0a
	tableLeaf     = 0x0d
)

// File is a database under construction: pages[i] is page i+1. Page 1
// holds the header and sqlite_master (WriteSchema); the caller numbers
// the other b-trees' root pages first (Reserve), as SQLite numbers them in
// creation order.
type File struct {
	// SchemaCookie is the header's schema cookie: one count per schema
	// change, as SQLite counts them (one per CREATE statement).
	SchemaCookie int
	pages        [][]byte
}

// Reserve makes room for page numbers up to n, for root pages.
func (f *File) Reserve(n int) {
	for len(f.pages) < n {
		f.pages = append(f.pages, nil)
	}
}

func (f *File) alloc() int {
	f.pages = append(f.pages, nil)
	return len(f.pages)
}

// pageFill tracks how full a page would be.
type pageFill struct {
	hdr, n, used int
}

func (f *pageFill) fits(typ byte, size int) bool {
	h := 12
	if typ == tableLeaf || typ == indexLeaf {
		h = 8
	}
	return f.hdr+h+2*(f.n+1)+f.used+size <= pageSize
}

func (f *pageFill) add(size int) { f.n, f.used = f.n+1, f.used+size }

// pageBytes lays out a page of type typ from cells [from, to) of c (each
// prefixed with its left child for interior index pages: children[i]),
// with right as the right-most child of an interior page.
func pageBytes(typ byte, hdr int, cells [][]byte, right int) []byte {
	b := make([]byte, pageSize)
	h := b[hdr:]
	h[0] = typ
	binary.BigEndian.PutUint16(h[3:], uint16(len(cells)))
	hsize := 8
	if typ == tableInterior || typ == indexInterior {
		hsize = 12
		binary.BigEndian.PutUint32(h[8:], uint32(right))
	}
	end := pageSize
	ptr := hdr + hsize
	for _, c := range cells {
		end -= len(c)
		copy(b[end:], c)
		binary.BigEndian.PutUint16(b[ptr:], uint16(end))
		ptr += 2
	}
	binary.BigEndian.PutUint16(h[5:], uint16(end)) // an empty page: pageSize
	return b
}

// place stores a finished page: at root when it is the tree's top, else
// at a new page number.
func (f *File) place(b []byte, root int, top bool) int {
	n := root
	if !top {
		n = f.alloc()
	}
	f.pages[n-1] = b
	return n
}

// split packs n cells of the given sizes into pages of type typ, in order.
// Each group is [start, end) and the cell at end is the boundary, which
// leaves the page: in an index b-tree it goes up into the parent, between
// the two pages; in a table's interior level its child becomes the page's
// right-most child. The last group ends at n, with no boundary. No group
// is empty.
func split(n int, size func(int) int, typ byte) (groups [][2]int) {
	start := 0
	var f pageFill
	for i := 0; i < n; i++ {
		if f.fits(typ, size(i)) {
			f.add(size(i))
			continue
		}
		groups = append(groups, [2]int{start, i})
		start, f = i+1, pageFill{}
	}
	groups = append(groups, [2]int{start, n})
	// The last boundary took the last cell: give the last group the
	// previous group's last cell instead (pages hold several cells).
	if last := &groups[len(groups)-1]; last[0] == last[1] && len(groups) > 1 {
		prev := &groups[len(groups)-2]
		prev[1]--
		last[0] = prev[1] + 1
	}
	return groups
}

// WriteTable lays out a rowid table whose cell i has rowid i+1 with its
// top page at root.
func (f *File) WriteTable(root int, rows *Cells) error { return f.writeTable(root, 0, rows) }

// writeTable lays out a rowid table whose cell i has rowid i+1 (every
// table here numbers its rows 1 to n in order) with its top page at root;
// hdr is 100 for sqlite_master on page 1.
func (f *File) writeTable(root, hdr int, rows *Cells) error {
	type child struct {
		page   int
		maxKey int64
	}
	// Leaves hold every row: split with no boundaries.
	var groups [][2]int
	start, fl := 0, pageFill{hdr: hdr}
	for i := 0; i < rows.Len(); i++ {
		n := len(rows.cell(i))
		if !fl.fits(tableLeaf, n) && i > start {
			groups = append(groups, [2]int{start, i})
			start, fl = i, pageFill{}
		}
		fl.add(n)
	}
	groups = append(groups, [2]int{start, rows.Len()})
	if len(groups) > 1 && hdr != 0 {
		return ErrTooBig // sqlite_master beyond page 1
	}
	var level []child
	var cells [][]byte
	for _, g := range groups {
		cells = cells[:0]
		for i := g[0]; i < g[1]; i++ {
			cells = append(cells, rows.cell(i))
		}
		level = append(level, child{f.place(pageBytes(tableLeaf, hdr, cells, 0), root, len(groups) == 1), int64(g[1])})
	}
	// Interior levels: a cell (child, its largest rowid) per child but
	// the right-most.
	for len(level) > 1 {
		icells := make([][]byte, len(level))
		for i, c := range level {
			icells[i] = appendVarint(binary.BigEndian.AppendUint32(nil, uint32(c.page)), uint64(c.maxKey))
		}
		// The last child is the last page's right-most pointer; split the
		// cells before it.
		groups := split(len(level)-1, func(i int) int { return len(icells[i]) }, tableInterior)
		var next []child
		for _, g := range groups {
			right := level[g[1]] // the boundary's child, or the last child
			b := pageBytes(tableInterior, 0, icells[g[0]:g[1]], right.page)
			next = append(next, child{f.place(b, root, len(groups) == 1), right.maxKey})
		}
		level = next
	}
	return nil
}

// WriteIndex lays out an index b-tree of keys (leaf cells, sorted) with
// its top page at root. Index b-trees keep keys in their interior pages
// too: each key is stored once.
func (f *File) WriteIndex(root int, keys *Cells) error {
	groups := split(keys.Len(), func(i int) int { return len(keys.cell(i)) }, indexLeaf)
	var children []int
	var dividers [][]byte // leaf cells that go up a level
	var cells [][]byte
	for gi, g := range groups {
		cells = cells[:0]
		for i := g[0]; i < g[1]; i++ {
			cells = append(cells, keys.cell(i))
		}
		children = append(children, f.place(pageBytes(indexLeaf, 0, cells, 0), root, len(groups) == 1))
		if gi < len(groups)-1 {
			dividers = append(dividers, keys.cell(g[1]))
		}
	}
	// Interior levels: cell i is children[i] followed by dividers[i]; the
	// last child is the right-most pointer; a boundary divider goes up,
	// its child becoming the right-most pointer of the page before it.
	for len(children) > 1 {
		icells := make([][]byte, len(dividers))
		for i, d := range dividers {
			icells[i] = append(binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(d)), uint32(children[i])), d...)
		}
		groups := split(len(icells), func(i int) int { return len(icells[i]) }, indexInterior)
		var nextChildren []int
		var nextDividers [][]byte
		for gi, g := range groups {
			right := children[g[1]] // the boundary's child, or the last child
			nextChildren = append(nextChildren, f.place(pageBytes(indexInterior, 0, icells[g[0]:g[1]], right), root, len(groups) == 1))
			if gi < len(groups)-1 {
				nextDividers = append(nextDividers, dividers[g[1]])
			}
		}
		children, dividers = nextChildren, nextDividers
	}
	return nil
}
