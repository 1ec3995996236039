package iso9660

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf16"
)

const (
	sectorSize = 2048
	// maxExtent is the largest extent of a multi-extent file: a whole number
	// of sectors below 4 GiB.
	maxExtent = 0xFFFFF800
)

// both appends v as a both-byte-order field (little-endian, then big-endian).
func both32(b []byte, v uint32) []byte {
	b = binary.LittleEndian.AppendUint32(b, v)
	return binary.BigEndian.AppendUint32(b, v)
}

func both16(b []byte, v uint16) []byte {
	b = binary.LittleEndian.AppendUint16(b, v)
	return binary.BigEndian.AppendUint16(b, v)
}

// recordDate is the 7-byte date of a directory record, in UTC.
func recordDate(t time.Time) []byte {
	t = t.UTC()
	y := t.Year() - 1900
	if y < 0 {
		y = 0
	}
	if y > 255 {
		y = 255
	}
	return []byte{byte(y), byte(t.Month()), byte(t.Day()), byte(t.Hour()), byte(t.Minute()), byte(t.Second()), 0}
}

// checkDate refuses a date the directory records cannot hold (their year
// is one byte from 1900); the volume descriptors' four-digit years hold
// those that remain.
func checkDate(t time.Time) error {
	if y := t.UTC().Year(); y < 1900 || y > 2155 {
		return fmt.Errorf("%s: want 1900-01-01T00:00:00Z to 2155-12-31T23:59:59Z (ISO 9660 records)", t.UTC().Format(time.RFC3339))
	}
	return nil
}

// volumeDate is the 17-byte date of a volume descriptor, in UTC.
func volumeDate(t time.Time) []byte {
	t = t.UTC()
	s := fmt.Sprintf("%04d%02d%02d%02d%02d%02d00", t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute(), t.Second())
	return append([]byte(s), 0)
}

// padded returns s in a field of n bytes padded with pad.
func padded(s string, n int, pad byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = pad
	}
	copy(b, s)
	return b
}

func sectors(n int64) int64 { return (n + sectorSize - 1) / sectorSize }

// isoNames gives each name of one directory its ISO 9660 identifier:
// upper case d-characters, at most 30 characters plus ";1" for files and 31
// for directories, made unique within the directory deterministically.
func isoNames(names []string, isDir []bool) []string {
	out := make([]string, len(names))
	used := map[string]bool{}
	for i, n := range names {
		base, ext := n, ""
		if !isDir[i] {
			if j := strings.LastIndexByte(n, '.'); j > 0 {
				base, ext = n[:j], n[j+1:]
			}
		}
		base, ext = dchars(base), dchars(ext)
		if len(ext) > 8 {
			ext = ext[:8]
		}
		limit := 31
		if !isDir[i] {
			limit = 30 - len(ext) - 1
			if ext == "" {
				limit = 30 - 1
			}
		}
		if len(base) > limit {
			base = base[:limit]
		}
		cand := func(b string) string {
			if isDir[i] {
				return b
			}
			return b + "." + ext + ";1"
		}
		id := cand(base)
		for k := 1; used[id]; k++ {
			suffix := fmt.Sprintf("_%d", k)
			b := base
			if len(b)+len(suffix) > limit {
				b = b[:limit-len(suffix)]
			}
			id = cand(b + suffix)
		}
		used[id] = true
		out[i] = id
	}
	return out
}

func dchars(s string) string {
	b := []byte(strings.ToUpper(s))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// jolietNames gives UCS-2 big-endian identifiers of at most 64 characters,
// unique within the directory.
func jolietNames(names []string, isDir []bool) [][]byte {
	out := make([][]byte, len(names))
	used := map[string]bool{}
	for i, n := range names {
		u := utf16.Encode([]rune(n))
		for j, c := range u {
			switch c {
			case '*', '/', ':', ';', '?', '\\':
				u[j] = '_'
			}
			if c < 0x20 || c >= 0xD800 && c < 0xE000 { // no controls (Joliet), no surrogates (UCS-2)
				u[j] = '_'
			}
		}
		if len(u) > 64 {
			u = u[:64]
		}
		key := string(utf16.Decode(u))
		for k := 1; used[key]; k++ {
			suffix := utf16.Encode([]rune(fmt.Sprintf("_%d", k)))
			v := u
			if len(v)+len(suffix) > 64 {
				v = v[:64-len(suffix)]
			}
			key = string(utf16.Decode(append(append([]uint16{}, v...), suffix...)))
		}
		used[key] = true
		enc := utf16.Encode([]rune(key))
		if !isDir[i] {
			enc = append(enc, ';', '1')
		}
		b := make([]byte, 0, 2*len(enc))
		for _, c := range enc {
			b = binary.BigEndian.AppendUint16(b, c)
		}
		out[i] = b
	}
	return out
}

// isoLess orders identifiers as ECMA-119 9.3 asks: by name, then extension,
// each compared as if padded with spaces, then by version.
func isoLess(a, b string) bool {
	an, ae, av := splitID(a)
	bn, be, bv := splitID(b)
	if c := padCompare(an, bn); c != 0 {
		return c < 0
	}
	if c := padCompare(ae, be); c != 0 {
		return c < 0
	}
	return av > bv
}

func splitID(s string) (name, ext, ver string) {
	s, ver, _ = strings.Cut(s, ";")
	name, ext, _ = strings.Cut(s, ".")
	return
}

func padCompare(a, b string) int {
	n := max(len(a), len(b))
	for i := range n {
		ca, cb := byte(' '), byte(' ')
		if i < len(a) {
			ca = a[i]
		}
		if i < len(b) {
			cb = b[i]
		}
		if ca != cb {
			if ca < cb {
				return -1
			}
			return 1
		}
	}
	return 0
}

func sortByID(ids []string, perm []int) {
	sort.SliceStable(perm, func(i, j int) bool { return isoLess(ids[perm[i]], ids[perm[j]]) })
}
