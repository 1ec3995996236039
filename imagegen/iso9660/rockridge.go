package iso9660

import (
	"io/fs"
	"strings"
	"time"
)

// System Use entries (SUSP) and Rock Ridge (RRIP 1.10) entries. Each entry
// is: two signature bytes, its length, version 1, then its data.

func suspEntry(sig string, data ...[]byte) []byte {
	n := 4
	for _, d := range data {
		n += len(d)
	}
	b := make([]byte, 0, n)
	b = append(b, sig[0], sig[1], byte(n), 1)
	for _, d := range data {
		b = append(b, d...)
	}
	return b
}

// rrSP marks the start of SUSP in the root's "." record.
func rrSP() []byte { return suspEntry("SP", []byte{0xBE, 0xEF, 0}) }

// rrER names the extension in use; readers look for it to enable Rock Ridge.
func rrER() []byte {
	id := "RRIP_1991A"
	des := "POSIX FILE SYSTEM SEMANTICS (ROCK RIDGE)"
	src := "SEE IEEE P1282 / RRIP 1.10"
	return suspEntry("ER", []byte{byte(len(id)), byte(len(des)), byte(len(src)), 1}, []byte(id), []byte(des), []byte(src))
}

func rrCE(lba, offset, length uint32) []byte {
	var d []byte
	d = both32(d, lba)
	d = both32(d, offset)
	d = both32(d, length)
	return suspEntry("CE", d)
}

const ceLen = 28

func posixMode(m fs.FileMode) uint32 {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	switch m.Type() {
	case fs.ModeDir:
		v |= 0o040000
	case fs.ModeSymlink:
		v |= 0o120000
	default:
		v |= 0o100000
	}
	return v
}

func rrPX(m fs.FileMode, nlink, uid, gid uint32) []byte {
	var d []byte
	d = both32(d, posixMode(m))
	d = both32(d, nlink)
	d = both32(d, uid)
	d = both32(d, gid)
	return suspEntry("PX", d)
}

// rrTF records modification, access and attribute-change times.
func rrTF(t time.Time) []byte {
	d := recordDate(t)
	return suspEntry("TF", []byte{0x0E}, d, d, d)
}

// rrNM records a POSIX name, split over several entries when long.
func rrNM(name string) [][]byte {
	const max = 250
	var out [][]byte
	for {
		part, flags := name, byte(0)
		if len(part) > max {
			part, flags = name[:max], 1 // CONTINUE
		}
		out = append(out, suspEntry("NM", []byte{flags}, []byte(part)))
		name = name[len(part):]
		if name == "" {
			return out
		}
	}
}

// rrSL records a symlink target as path components, over several entries
// when long.
func rrSL(target string) [][]byte {
	type comp struct {
		flags byte
		data  string
	}
	var comps []comp
	rest := target
	if strings.HasPrefix(rest, "/") {
		comps = append(comps, comp{flags: 0x08}) // ROOT
		rest = strings.TrimLeft(rest, "/")
	}
	for _, c := range strings.Split(rest, "/") {
		switch c {
		case "":
			continue
		case ".":
			comps = append(comps, comp{flags: 0x02})
		case "..":
			comps = append(comps, comp{flags: 0x04})
		default:
			for len(c) > 248 {
				comps = append(comps, comp{flags: 0x01, data: c[:248]}) // continues in the next
				c = c[248:]
			}
			comps = append(comps, comp{data: c})
		}
	}
	var out [][]byte
	cur := []byte{}
	flush := func(more bool) {
		f := byte(0)
		if more {
			f = 1
		}
		out = append(out, suspEntry("SL", []byte{f}, cur))
		cur = []byte{}
	}
	for _, c := range comps {
		rec := append([]byte{c.flags, byte(len(c.data))}, c.data...)
		if 5+len(cur)+len(rec) > 255 {
			flush(true)
		}
		cur = append(cur, rec...)
	}
	flush(false)
	return out
}

// susp holds one directory record's system use entries and how they are
// split between the record itself and continuation areas.
type susp struct {
	inline []byte   // in the record (a CE entry is appended when chunks exist)
	chunks [][]byte // continuation areas; all but the last end with a CE
	loc    []ceLoc  // where each chunk goes, relative to the CE region
}

type ceLoc struct {
	sector int64
	offset int
}

// pack splits entries so the record stays within 255 bytes (room is what
// the record has left) and each continuation area within one sector.
func pack(entries [][]byte, room int) susp {
	var s susp
	total := 0
	for _, e := range entries {
		total += len(e)
	}
	if total <= room {
		for _, e := range entries {
			s.inline = append(s.inline, e...)
		}
		return s
	}
	i := 0
	for ; i < len(entries) && len(s.inline)+len(entries[i]) <= room-ceLen; i++ {
		s.inline = append(s.inline, entries[i]...)
	}
	var cur []byte
	for ; i < len(entries); i++ {
		e := entries[i]
		if len(cur)+len(e) > sectorSize-ceLen {
			s.chunks = append(s.chunks, cur)
			cur = nil
		}
		cur = append(cur, e...)
	}
	s.chunks = append(s.chunks, cur)
	return s
}

// ceSize is the size of chunk i once its trailing CE (if any) is added.
func (s *susp) ceSize(i int) int {
	if i < len(s.chunks)-1 {
		return len(s.chunks[i]) + ceLen
	}
	return len(s.chunks[i])
}

// bytes returns the inline part with the CE pointing at the first chunk.
func (s *susp) bytes(ceStart uint32) []byte {
	if len(s.chunks) == 0 {
		return s.inline
	}
	l := s.loc[0]
	return append(append([]byte{}, s.inline...), rrCE(ceStart+uint32(l.sector), uint32(l.offset), uint32(s.ceSize(0)))...)
}

// chunkBytes returns chunk i with the CE pointing at chunk i+1.
func (s *susp) chunkBytes(i int, ceStart uint32) []byte {
	b := append([]byte{}, s.chunks[i]...)
	if i < len(s.chunks)-1 {
		l := s.loc[i+1]
		b = append(b, rrCE(ceStart+uint32(l.sector), uint32(l.offset), uint32(s.ceSize(i+1)))...)
	}
	return b
}
