package nixdb

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/nixlive/nixlive/internal/sqlitefile"
)

// This file lays out a new Nix database for sqlitefile, the direct
// writer, for the fresh load at boot: the file SQLite would hold after
// Nix's schema and the same inserts, row for row (Nix's schema text in
// sqlite_master, the same root pages). Tests open it with SQLite
// (integrity_check) and Nix.

// The root pages of the b-trees, numbered as SQLite numbers them when
// Nix's schema runs on an empty file (page 1 is sqlite_master).
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

// tree is a b-tree of the new file and its cells.
type tree struct {
	root  int
	cells *sqlitefile.Cells
	index bool
}

// freshDatabase writes a new database holding entries (sorted by path,
// with ids 1 to n in that order) and the derivation outputs, registered
// at now, to w.
func freshDatabase(w io.Writer, entries []*entry, outputs []drvOutput, now int64) error {
	paths, pathIndex, refRows, err := validPathsCells(entries, now)
	if err != nil {
		return err
	}
	var seq sqlitefile.Cells
	if err := seq.AddRow(1, sqlitefile.Text("ValidPaths"), sqlitefile.Int(int64(len(entries)))); err != nil {
		return err
	}
	refs, refsPK, byReferrer, byReference, err := refsCells(refRows, len(entries))
	if err != nil {
		return err
	}
	outRows, outPK, outPath, err := outputsCells(outputs)
	if err != nil {
		return err
	}
	// Nix's seven CREATE statements, one schema change each.
	f := &sqlitefile.File{SchemaCookie: 7}
	f.Reserve(rootOutputsPath)
	for _, t := range []tree{
		{rootValidPaths, paths, false}, {rootValidPathsIndex, pathIndex, true}, {rootSequence, &seq, false},
		{rootRefs, refs, false}, {rootRefsIndex, refsPK, true}, {rootReferrer, byReferrer, true}, {rootReference, byReference, true},
		{rootOutputs, outRows, false}, {rootOutputsIndex, outPK, true}, {rootOutputsPath, outPath, true},
	} {
		write := f.WriteTable
		if t.index {
			write = f.WriteIndex
		}
		if err := write(t.root, t.cells); err != nil {
			return err
		}
	}
	if err := f.WriteSchema(schemaObjects()); err != nil {
		return err
	}
	_, err = f.WriteTo(w)
	return err
}

// validPathsCells returns the rows of ValidPaths and the keys of its
// unique index on path, both in path order as the ids are, and the
// (referrer, reference) pairs of Refs.
func validPathsCells(entries []*entry, now int64) (paths, pathIndex *sqlitefile.Cells, refRows [][2]int64, err error) {
	paths, pathIndex = new(sqlitefile.Cells), new(sqlitefile.Cells)
	paths.Grow(len(entries) * 180)
	pathIndex.Grow(len(entries) * 100)
	for i, e := range entries {
		if e.id != int64(i+1) {
			return nil, nil, nil, fmt.Errorf("nixdb: entry %s has id %d, want %d", e.Path, e.id, i+1)
		}
		if err := paths.AddRow(e.id, sqlitefile.Null(), sqlitefile.Text(e.Path), sqlitefile.Text(hashString(e.NarHash)),
			sqlitefile.Int(now), sqlitefile.TextOrNull(e.Deriver), narSizeVal(e.NarSize),
			sqlitefile.Null(), sqlitefile.Null(), sqlitefile.Null()); err != nil {
			return nil, nil, nil, err
		}
		if err := pathIndex.AddKey(sqlitefile.Text(e.Path), sqlitefile.Int(e.id)); err != nil {
			return nil, nil, nil, err
		}
		for _, c := range e.refEnts {
			refRows = append(refRows, [2]int64{e.id, c.id})
		}
	}
	return paths, pathIndex, refRows, nil
}

// refsCells returns Refs, in (referrer, reference) order (each entry's
// references are sorted by path, and so by id), rowids 1 to n; its
// primary key and the index on referrer in the same order, the one on
// reference sorted. ids is the largest path id.
func refsCells(refRows [][2]int64, ids int) (refs, pk, byReferrer, byReference *sqlitefile.Cells, err error) {
	refs, pk, byReferrer, byReference = new(sqlitefile.Cells), new(sqlitefile.Cells), new(sqlitefile.Cells), new(sqlitefile.Cells)
	slices.SortFunc(refRows, func(a, b [2]int64) int { return cmpPair(a[0], a[1], b[0], b[1]) })
	num := sqlitefile.Int
	for i, r := range refRows {
		rowid := int64(i + 1)
		if err := errors.Join(refs.AddRow(rowid, num(r[0]), num(r[1])), pk.AddKey(num(r[0]), num(r[1]), num(rowid)),
			byReferrer.AddKey(num(r[0]), num(rowid))); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	// By reference, then rowid: a counting sort on the ids keeps the
	// rowid order within each reference.
	start := make([]int, ids+2)
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
		if err := byReference.AddKey(num(refRows[rowid-1][1]), num(rowid)); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	return refs, pk, byReferrer, byReference, nil
}

// outputsCells returns DerivationOutputs (rowids in drv, name order), its
// primary key and its index on path.
func outputsCells(outputs []drvOutput) (rows, pk, byPath *sqlitefile.Cells, err error) {
	rows, pk, byPath = new(sqlitefile.Cells), new(sqlitefile.Cells), new(sqlitefile.Cells)
	slices.SortFunc(outputs, func(a, b drvOutput) int {
		if c := cmpPair(a.drv, 0, b.drv, 0); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	num, text := sqlitefile.Int, sqlitefile.Text
	order := make([]int, len(outputs))
	for i, o := range outputs {
		rowid := int64(i + 1)
		if err := errors.Join(rows.AddRow(rowid, num(o.drv), text(o.name), text(o.path)),
			pk.AddKey(num(o.drv), text(o.name), num(rowid))); err != nil {
			return nil, nil, nil, err
		}
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := strings.Compare(outputs[a].path, outputs[b].path); c != 0 {
			return c
		}
		return a - b
	})
	for _, i := range order {
		if err := byPath.AddKey(text(outputs[i].path), num(int64(i+1))); err != nil {
			return nil, nil, nil, err
		}
	}
	return rows, pk, byPath, nil
}

// schemaObjects is sqlite_master, in the order SQLite adds the objects
// when Nix's schema runs (sqlite_sequence comes with the first
// AUTOINCREMENT).
func schemaObjects() []sqlitefile.Object {
	norm := sqlitefile.NormalizeSQL
	obj := func(typ, name, table string, root int, sql string) sqlitefile.Object {
		return sqlitefile.Object{Type: typ, Name: name, Table: table, Root: root, SQL: sql}
	}
	return []sqlitefile.Object{
		obj("table", "ValidPaths", "ValidPaths", rootValidPaths, norm(schema[0])),
		obj("index", "sqlite_autoindex_ValidPaths_1", "ValidPaths", rootValidPathsIndex, ""),
		obj("table", "sqlite_sequence", "sqlite_sequence", rootSequence, "CREATE TABLE sqlite_sequence(name,seq)"),
		obj("table", "Refs", "Refs", rootRefs, norm(schema[1])),
		obj("index", "sqlite_autoindex_Refs_1", "Refs", rootRefsIndex, ""),
		obj("index", "IndexReferrer", "Refs", rootReferrer, norm(schema[2])),
		obj("index", "IndexReference", "Refs", rootReference, norm(schema[3])),
		obj("trigger", "DeleteSelfRefs", "ValidPaths", 0, norm(schema[4])),
		obj("table", "DerivationOutputs", "DerivationOutputs", rootOutputs, norm(schema[5])),
		obj("index", "sqlite_autoindex_DerivationOutputs_1", "DerivationOutputs", rootOutputsIndex, ""),
		obj("index", "IndexDerivationOutputs", "DerivationOutputs", rootOutputsPath, norm(schema[6])),
	}
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
func narSizeVal(n uint64) sqlitefile.Value {
	if n == 0 {
		return sqlitefile.Null()
	}
	return sqlitefile.Int(int64(n))
}
