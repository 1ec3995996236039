// Package sqlitefile writes a new SQLite database file directly in
// SQLite's file format (https://www.sqlite.org/fileformat2.html), for a
// database whose every row is known up front: each table and index is
// laid out as a packed b-tree, bottom up, in one pass, where inserting
// through SQLite spends most of its time executing one INSERT per row.
//
// It knows nothing of what the tables mean: the caller gives the rows of
// each table (rowids 1 to n, in order), the keys of each index (sorted),
// and the rows of sqlite_master. It supports only what a fresh, packed
// database needs: page size 4096, UTF-8, WAL mode, schema format 4, no
// free pages, records that fit their page (no overflow pages) and a
// schema that fits page 1. Anything else is ErrTooBig, and the caller
// goes through SQLite instead. It cannot update an existing file.
package sqlitefile

import "errors"

// ErrTooBig is returned for a record or schema the writer does not lay
// out (overflow pages, sqlite_master beyond page 1).
var ErrTooBig = errors.New("a record is too large for the direct writer")

// Value is a value of a record: NULL, an integer or a text.
type Value struct {
	kind byte // 0 NULL, 'i' integer, 't' text
	i    int64
	s    string
}

// Null is SQL NULL.
func Null() Value { return Value{} }

// Int is an integer value.
func Int(i int64) Value { return Value{kind: 'i', i: i} }

// Text is a text value.
func Text(s string) Value { return Value{kind: 't', s: s} }

// TextOrNull is Text(s), or NULL for "".
func TextOrNull(s string) Value {
	if s == "" {
		return Null()
	}
	return Text(s)
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
func recordLen(vals []Value, types []uint64) (hdr, body int) {
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
func appendRecord(b []byte, vals []Value, types []uint64, hdr int) []byte {
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

// maxColumns is the most values a record here may have.
const maxColumns = 16

// Cells holds the leaf cells of one b-tree, encoded back to back in one
// buffer: a table's rows or an index's keys.
type Cells struct {
	buf  []byte
	ends []int
}

// Grow makes room for about n more bytes of cells.
func (c *Cells) Grow(n int) {
	if cap(c.buf)-len(c.buf) < n {
		b := make([]byte, len(c.buf), len(c.buf)+n)
		copy(b, c.buf)
		c.buf = b
	}
}

// Len is the number of cells.
func (c *Cells) Len() int { return len(c.ends) }

func (c *Cells) cell(i int) []byte {
	start := 0
	if i > 0 {
		start = c.ends[i-1]
	}
	return c.buf[start:c.ends[i]]
}

// AddRow appends a table leaf cell: the record's size, the rowid, the
// record. A table's rows must be added with rowids 1 to n, in order.
func (c *Cells) AddRow(rowid int64, vals ...Value) error {
	var types [maxColumns]uint64
	if len(vals) > maxColumns {
		return ErrTooBig
	}
	hdr, body := recordLen(vals, types[:])
	if hdr+body > maxTablePayload {
		return ErrTooBig
	}
	c.buf = appendVarint(c.buf, uint64(hdr+body))
	c.buf = appendVarint(c.buf, uint64(rowid))
	c.buf = appendRecord(c.buf, vals, types[:], hdr)
	c.ends = append(c.ends, len(c.buf))
	return nil
}

// AddKey appends an index leaf cell: the record's size, the record (the
// indexed columns, then the rowid). Keys must be added in index order.
func (c *Cells) AddKey(vals ...Value) error {
	var types [maxColumns]uint64
	if len(vals) > maxColumns {
		return ErrTooBig
	}
	hdr, body := recordLen(vals, types[:])
	if hdr+body > maxIndexPayload {
		return ErrTooBig
	}
	c.buf = appendVarint(c.buf, uint64(hdr+body))
	c.buf = appendRecord(c.buf, vals, types[:], hdr)
	c.ends = append(c.ends, len(c.buf))
	return nil
}
