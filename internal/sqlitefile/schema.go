package sqlitefile

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// Object is a row of sqlite_master.
type Object struct {
	Type, Name, Table string
	Root              int    // its root page; 0 for a trigger
	SQL               string // "" for an automatic index (NULL)
}

// NormalizeSQL gives a CREATE statement the form SQLite keeps in
// sqlite_master: the leading keywords upper case, "if not exists" gone.
func NormalizeSQL(stmt string) string {
	s := strings.TrimSpace(stmt)
	for _, kind := range []string{"table", "index", "trigger"} {
		prefix := "create " + kind + " if not exists "
		if strings.HasPrefix(strings.ToLower(s), prefix) {
			return "CREATE " + strings.ToUpper(kind) + " " + s[len(prefix):]
		}
	}
	return s
}

// WriteSchema lays out sqlite_master on page 1 with objects, in order.
func (f *File) WriteSchema(objects []Object) error {
	var master Cells
	for i, o := range objects {
		if err := master.AddRow(int64(i+1), Text(o.Type), Text(o.Name), Text(o.Table), Int(int64(o.Root)), TextOrNull(o.SQL)); err != nil {
			return fmt.Errorf("sqlite_master row %s: %w", o.Name, err)
		}
	}
	f.Reserve(1)
	return f.writeTable(1, 100, &master)
}

// WriteTo writes the file: the header on page 1 (after WriteSchema), then
// every page.
func (f *File) WriteTo(w io.Writer) (int64, error) {
	if len(f.pages) == 0 || f.pages[0] == nil {
		return 0, fmt.Errorf("sqlitefile: no schema on page 1")
	}
	writeHeader(f.pages[0], len(f.pages), f.SchemaCookie)
	var n int64
	for i, p := range f.pages {
		if p == nil {
			return n, fmt.Errorf("sqlitefile: page %d was reserved but never written", i+1)
		}
		m, err := w.Write(p)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// writeHeader fills the 100-byte database header on page 1. cookie is the
// schema cookie.
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
