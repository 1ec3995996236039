package postboot

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// This file writes a new Nix database straight in SQLite's file format
// (https://www.sqlite.org/fileformat2.html), for the fresh load at boot:
// every row is known up front, so each table and index is laid out as a
// packed b-tree, bottom up, in one pass, where inserting through SQLite
// spends most of its time executing one INSERT per row (3–4 µs a row in
// modernc's SQLite). The result is the file SQLite would hold after the
// same statements, row for row: Nix's schema text in sqlite_master, the
// same root pages, page size 4096, UTF-8, WAL mode, no free pages.
// Tests open it with SQLite (integrity_check) and Nix.
//
// It covers what a fresh load needs: small records (no overflow pages),
// a schema that fits page 1. Anything else returns errTooBig, and the
// caller builds the database through SQLite instead.

const (
	pageSize = 4096
	// Largest payloads kept on a b-tree page (no overflow): U-35 on table
	// leaves, ((U-12)*64/255)-23 on index pages.
	maxTablePayload = pageSize - 35
	maxIndexPayload = (pageSize-12)*64/255 - 23
	// sqliteVersion is the library version the header names: the one
	// that last wrote the file.
	sqliteVersion = 3046001
)

var errTooBig = errors.New("a record is too large for the direct writer")

// b-tree page types.
const (
	indexInterior = 0x02
	tableInterior = 0x05
	indexLeaf     = 0x0a
	tableLeaf     = 0x0d
)

// dbFile is a database under construction: pages[i] is page i+1.
type dbFile struct {
	pages [][]byte
}

// reserve makes room for page numbers up to n (roots are numbered first,
// as SQLite numbers them in creation order).
func (f *dbFile) reserve(n int) {
	for len(f.pages) < n {
		f.pages = append(f.pages, nil)
	}
}

func (f *dbFile) alloc() int {
	f.pages = append(f.pages, nil)
	return len(f.pages)
}

// val is a value of a record: NULL, an integer or a text.
type val struct {
	kind byte // 0 NULL, 'i' integer, 't' text
	i    int64
	s    string
}

func null() val         { return val{} }
func num(i int64) val   { return val{kind: 'i', i: i} }
func text(s string) val { return val{kind: 't', s: s} }
func textOrNull(s string) val {
	if s == "" {
		return null()
	}
	return text(s)
}

// appendVarint appends v in SQLite's big-endian varint form.
func appendVarint(b []byte, v uint64) []byte {
	if v <= 0x7f {
		return append(b, byte(v))
	}
	if v > 0x00ffffffffffffff {
		var buf [9]byte
		buf[8] = byte(v)
		v >>= 8
		for i := 7; i >= 0; i-- {
			buf[i] = byte(v&0x7f) | 0x80
			v >>= 7
		}
		return append(b, buf[:]...)
	}
	var buf [9]byte
	n := 0
	for v != 0 {
		buf[n] = byte(v&0x7f) | 0x80
		v >>= 7
		n++
	}
	buf[0] &= 0x7f // the last byte, once reversed
	for i := n - 1; i >= 0; i-- {
		b = append(b, buf[i])
	}
	return b
}

func varintLen(v uint64) int {
	for n := 1; n < 9; n++ {
		if v < 1<<(7*n) {
			return n
		}
	}
	return 9
}

// intSerial returns the serial type and byte width of an integer, the
// smallest SQLite would use (schema format 4 has 8 and 9 for 0 and 1).
func intSerial(v int64) (uint64, int) {
	switch {
	case v == 0:
		return 8, 0
	case v == 1:
		return 9, 0
	case v >= -128 && v <= 127:
		return 1, 1
	case v >= -32768 && v <= 32767:
		return 2, 2
	case v >= -8388608 && v <= 8388607:
		return 3, 3
	case v >= -2147483648 && v <= 2147483647:
		return 4, 4
	case v >= -140737488355328 && v <= 140737488355327:
		return 5, 6
	}
	return 6, 8
}

// recordLen returns the sizes of the record of vals: its header (which
// counts its own size varint) and its body; types receives the serial
// types (it must have room).
func recordLen(vals []val, types []uint64) (hdr, body int) {
	for i, v := range vals {
		switch v.kind {
		case 0:
			types[i] = 0
		case 'i':
			t, n := intSerial(v.i)
			types[i], body = t, body+n
		default:
			types[i], body = uint64(2*len(v.s)+13), body+len(v.s)
		}
		hdr += varintLen(types[i])
	}
	if hdr+1 > 0x7f {
		return hdr + varintLen(uint64(hdr+2)), body
	}
	return hdr + 1, body
}

// appendRecord appends the record of vals: its header of serial types,
// then the values.
func appendRecord(b []byte, vals []val, types []uint64, hdr int) []byte {
	b = appendVarint(b, uint64(hdr))
	for _, t := range types[:len(vals)] {
		b = appendVarint(b, t)
	}
	for _, v := range vals {
		switch v.kind {
		case 'i':
			_, n := intSerial(v.i)
			for i := n - 1; i >= 0; i-- {
				b = append(b, byte(uint64(v.i)>>(8*i)))
			}
		case 't':
			b = append(b, v.s...)
		}
	}
	return b
}

// cellSet holds b-tree cells encoded back to back in one buffer.
type cellSet struct {
	buf  []byte
	ends []int
}

func (c *cellSet) len() int { return len(c.ends) }

func (c *cellSet) cell(i int) []byte {
	start := 0
	if i > 0 {
		start = c.ends[i-1]
	}
	return c.buf[start:c.ends[i]]
}

// addRow appends a table leaf cell: the record's size, the rowid, the
// record.
func (c *cellSet) addRow(rowid int64, vals ...val) error {
	var types [16]uint64
	hdr, body := recordLen(vals, types[:])
	if hdr+body > maxTablePayload {
		return errTooBig
	}
	c.buf = appendVarint(c.buf, uint64(hdr+body))
	c.buf = appendVarint(c.buf, uint64(rowid))
	c.buf = appendRecord(c.buf, vals, types[:], hdr)
	c.ends = append(c.ends, len(c.buf))
	return nil
}

// addKey appends an index leaf cell: the record's size, the record.
func (c *cellSet) addKey(vals ...val) error {
	var types [16]uint64
	hdr, body := recordLen(vals, types[:])
	if hdr+body > maxIndexPayload {
		return errTooBig
	}
	c.buf = appendVarint(c.buf, uint64(hdr+body))
	c.buf = appendRecord(c.buf, vals, types[:], hdr)
	c.ends = append(c.ends, len(c.buf))
	return nil
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
func (f *dbFile) place(b []byte, root int, top bool) int {
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

// writeTable lays out a rowid table whose cell i has rowid i+1 (every
// table here numbers its rows 1 to n in order) with its top page at root;
// hdr is 100 for sqlite_master on page 1.
func (f *dbFile) writeTable(root, hdr int, rows *cellSet) error {
	type child struct {
		page   int
		maxKey int64
	}
	// Leaves hold every row: split with no boundaries.
	var groups [][2]int
	start, fl := 0, pageFill{hdr: hdr}
	for i := 0; i < rows.len(); i++ {
		n := len(rows.cell(i))
		if !fl.fits(tableLeaf, n) && i > start {
			groups = append(groups, [2]int{start, i})
			start, fl = i, pageFill{}
		}
		fl.add(n)
	}
	groups = append(groups, [2]int{start, rows.len()})
	if len(groups) > 1 && hdr != 0 {
		return errTooBig // sqlite_master beyond page 1
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

// writeIndex lays out an index b-tree of keys (leaf cells, sorted) with
// its top page at root. Index b-trees keep keys in their interior pages
// too: each key is stored once.
func (f *dbFile) writeIndex(root int, keys *cellSet) error {
	groups := split(keys.len(), func(i int) int { return len(keys.cell(i)) }, indexLeaf)
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

// schemaObject is a row of sqlite_master.
type schemaObject struct {
	typ, name, table string
	root             int
	sql              string // "" for an automatic index (NULL)
}

// normalizeSQL gives a CREATE statement the form SQLite keeps in
// sqlite_master: the leading keywords upper case, "if not exists" gone.
func normalizeSQL(stmt string) string {
	s := strings.TrimSpace(stmt)
	for _, kind := range []string{"table", "index", "trigger"} {
		prefix := "create " + kind + " if not exists "
		if strings.HasPrefix(strings.ToLower(s), prefix) {
			return "CREATE " + strings.ToUpper(kind) + " " + s[len(prefix):]
		}
	}
	return s
}

// drvOutput is a row of DerivationOutputs.
type drvOutput struct {
	drv        int64
	name, path string
}

// freshDatabase writes a new database holding entries (sorted by path,
// with ids 1 to n in that order) and the derivation outputs, registered
// at now, to w.
func freshDatabase(w io.Writer, entries []*entry, outputs []drvOutput, now int64) error {
	f := &dbFile{}
	const (
		rootValidPaths = 2 + iota
		rootValidPathsIndex
		rootSequence
		rootRefs
		rootRefsIndex
		rootReferrer
		rootReference
		rootOutputs
		rootOutputsIndex
		rootOutputsPath
	)
	f.reserve(rootOutputsPath)

	// ValidPaths and its unique index on path: both in path order, as
	// the ids are.
	var paths, pathIndex cellSet
	paths.buf = make([]byte, 0, len(entries)*180)
	pathIndex.buf = make([]byte, 0, len(entries)*100)
	var refRows [][2]int64
	for i, e := range entries {
		if e.id != int64(i+1) {
			return fmt.Errorf("postboot: entry %s has id %d, want %d", e.Path, e.id, i+1)
		}
		if err := paths.addRow(e.id, null(), text(e.Path), text(hashString(e.NarHash)), num(now),
			textOrNull(e.Deriver), narSizeVal(e.NarSize), null(), null(), null()); err != nil {
			return err
		}
		if err := pathIndex.addKey(text(e.Path), num(e.id)); err != nil {
			return err
		}
		for _, c := range e.refEnts {
			refRows = append(refRows, [2]int64{e.id, c.id})
		}
	}
	var seq cellSet
	if err := seq.addRow(1, text("ValidPaths"), num(int64(len(entries)))); err != nil {
		return err
	}

	// Refs, in (referrer, reference) order (each entry's references are
	// sorted by path, and so by id), rowids 1 to n; its primary key and
	// the index on referrer in the same order, the one on reference
	// sorted.
	var refs, refsPK, byReferrer, byReference cellSet
	slices.SortFunc(refRows, func(a, b [2]int64) int { return cmpPair(a[0], a[1], b[0], b[1]) })
	for i, r := range refRows {
		rowid := int64(i + 1)
		if err := errors.Join(refs.addRow(rowid, num(r[0]), num(r[1])), refsPK.addKey(num(r[0]), num(r[1]), num(rowid)),
			byReferrer.addKey(num(r[0]), num(rowid))); err != nil {
			return err
		}
	}
	// By reference, then rowid: a counting sort on the ids keeps the
	// rowid order within each reference.
	start := make([]int, len(entries)+2)
	for _, r := range refRows {
		start[r[1]+1]++
	}
	for i := 1; i < len(start); i++ {
		start[i] += start[i-1]
	}
	order := make([]int64, len(refRows))
	for i, r := range refRows {
		order[start[r[1]]] = int64(i + 1)
		start[r[1]]++
	}
	for _, rowid := range order {
		if err := byReference.addKey(num(refRows[rowid-1][1]), num(rowid)); err != nil {
			return err
		}
	}

	// DerivationOutputs (rowids in drv, name order), its primary key and
	// its index on path.
	slices.SortFunc(outputs, func(a, b drvOutput) int {
		if c := cmpPair(a.drv, 0, b.drv, 0); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	var outRows, outPK, outPath cellSet
	byPath := make([]int, len(outputs))
	for i, o := range outputs {
		rowid := int64(i + 1)
		if err := errors.Join(outRows.addRow(rowid, num(o.drv), text(o.name), text(o.path)),
			outPK.addKey(num(o.drv), text(o.name), num(rowid))); err != nil {
			return err
		}
		byPath[i] = i
	}
	slices.SortFunc(byPath, func(a, b int) int {
		if c := strings.Compare(outputs[a].path, outputs[b].path); c != 0 {
			return c
		}
		return a - b
	})
	for _, i := range byPath {
		if err := outPath.addKey(text(outputs[i].path), num(int64(i+1))); err != nil {
			return err
		}
	}

	for _, t := range []struct {
		root  int
		cells *cellSet
		index bool
	}{
		{rootValidPaths, &paths, false}, {rootValidPathsIndex, &pathIndex, true}, {rootSequence, &seq, false},
		{rootRefs, &refs, false}, {rootRefsIndex, &refsPK, true}, {rootReferrer, &byReferrer, true}, {rootReference, &byReference, true},
		{rootOutputs, &outRows, false}, {rootOutputsIndex, &outPK, true}, {rootOutputsPath, &outPath, true},
	} {
		var err error
		if t.index {
			err = f.writeIndex(t.root, t.cells)
		} else {
			err = f.writeTable(t.root, 0, t.cells)
		}
		if err != nil {
			return err
		}
	}

	// sqlite_master, in the order SQLite adds the objects when Nix's
	// schema runs (sqlite_sequence comes with the first AUTOINCREMENT).
	objects := []schemaObject{
		{"table", "ValidPaths", "ValidPaths", rootValidPaths, normalizeSQL(schema[0])},
		{"index", "sqlite_autoindex_ValidPaths_1", "ValidPaths", rootValidPathsIndex, ""},
		{"table", "sqlite_sequence", "sqlite_sequence", rootSequence, "CREATE TABLE sqlite_sequence(name,seq)"},
		{"table", "Refs", "Refs", rootRefs, normalizeSQL(schema[1])},
		{"index", "sqlite_autoindex_Refs_1", "Refs", rootRefsIndex, ""},
		{"index", "IndexReferrer", "Refs", rootReferrer, normalizeSQL(schema[2])},
		{"index", "IndexReference", "Refs", rootReference, normalizeSQL(schema[3])},
		{"trigger", "DeleteSelfRefs", "ValidPaths", 0, normalizeSQL(schema[4])},
		{"table", "DerivationOutputs", "DerivationOutputs", rootOutputs, normalizeSQL(schema[5])},
		{"index", "sqlite_autoindex_DerivationOutputs_1", "DerivationOutputs", rootOutputsIndex, ""},
		{"index", "IndexDerivationOutputs", "DerivationOutputs", rootOutputsPath, normalizeSQL(schema[6])},
	}
	var master cellSet
	for i, o := range objects {
		if err := master.addRow(int64(i+1), text(o.typ), text(o.name), text(o.table), num(int64(o.root)), textOrNull(o.sql)); err != nil {
			return err
		}
	}
	if err := f.writeTable(1, 100, &master); err != nil {
		return err
	}
	// Nix's seven CREATE statements, one schema change each.
	writeHeader(f.pages[0], len(f.pages), 7)
	for _, p := range f.pages {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

func cmpPair(a0, a1, b0, b1 int64) int {
	switch {
	case a0 != b0:
		return cmp.Compare(a0, b0)
	default:
		return cmp.Compare(a1, b1)
	}
}

// narSizeVal is narSize as Nix stores it: NULL for 0.
func narSizeVal(n uint64) val {
	if n == 0 {
		return null()
	}
	return num(int64(n))
}

// writeHeader fills the 100-byte database header on page 1. cookie is the
// schema cookie: one count per schema change, as SQLite counts them (Nix's
// seven CREATE statements).
func writeHeader(p []byte, pages, cookie int) {
	copy(p, "SQLite format 3\x00")
	binary.BigEndian.PutUint16(p[16:], pageSize)
	p[18], p[19] = 2, 2 // WAL
	p[20], p[21], p[22], p[23] = 0, 64, 32, 32
	binary.BigEndian.PutUint32(p[24:], 1) // file change counter
	binary.BigEndian.PutUint32(p[28:], uint32(pages))
	binary.BigEndian.PutUint32(p[40:], uint32(cookie))
	binary.BigEndian.PutUint32(p[44:], 4) // schema format
	binary.BigEndian.PutUint32(p[56:], 1) // UTF-8
	binary.BigEndian.PutUint32(p[92:], 1) // version-valid-for = change counter
	binary.BigEndian.PutUint32(p[96:], sqliteVersion)
}
