package fat

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// splitPath turns a header name into its components.
func splitPath(name string) ([]string, error) {
	p := strings.TrimPrefix(name, "/")
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return nil, pathErr(name, ErrInvalidName, "empty path (the root directory cannot be added)")
	}
	parts := strings.Split(p, "/")
	for _, c := range parts {
		if err := checkComponent(c); err != "" {
			return nil, pathErr(name, ErrInvalidName, "%s", err)
		}
	}
	return parts, nil
}

// checkComponent says what is wrong with one name, or "".
func checkComponent(c string) string {
	switch c {
	case "":
		return "empty path component"
	case ".", "..":
		return fmt.Sprintf("%q is not allowed as a name", c)
	}
	if !utf8.ValidString(c) {
		return fmt.Sprintf("name %q is not valid UTF-8", c)
	}
	for _, r := range c {
		if r < 0x20 || r == 0x7f {
			return fmt.Sprintf("name %q contains the control character %U, which FAT forbids", c, r)
		}
		if strings.ContainsRune(`"*:<>?\|`, r) {
			return fmt.Sprintf("name %q contains %q, which FAT forbids", c, r)
		}
	}
	if last := c[len(c)-1]; last == '.' || last == ' ' {
		return fmt.Sprintf("name %q ends in %q, which FAT drivers strip", c, last)
	}
	if n := len(utf16.Encode([]rune(c))); n > 255 {
		return fmt.Sprintf("name is %d UTF-16 units long; FAT allows 255", n)
	}
	return ""
}

// foldKey is the name as FAT compares it: case-insensitively. Each rune is
// mapped to upper case on its own, as the upcase table of FAT drivers does.
func foldKey(c string) string {
	return strings.Map(unicode.ToUpper, c)
}

// isShortChar reports whether an upper-cased ASCII byte may appear in a
// short (8.3) name.
func isShortChar(b byte) bool {
	switch {
	case b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'()-@^_`{}~", b) >= 0
}

func upperASCII(b byte) byte {
	if b >= 'a' && b <= 'z' {
		return b - 'a' + 'A'
	}
	return b
}

// exactShort returns the short name that holds c without loss (apart from
// case), if there is one: 1 to 8 characters, optionally a dot and 1 to 3
// more, all valid in short names.
func exactShort(c string) (s [11]byte, ok bool) {
	base, ext, found := strings.Cut(c, ".")
	if len(base) < 1 || len(base) > 8 || len(ext) > 3 || (found && (ext == "" || strings.Contains(ext, "."))) {
		return s, false
	}
	for i := range s {
		s[i] = ' '
	}
	for i := 0; i < len(base); i++ {
		u := upperASCII(base[i])
		if !isShortChar(u) {
			return s, false
		}
		s[i] = u
	}
	for i := 0; i < len(ext); i++ {
		u := upperASCII(ext[i])
		if !isShortChar(u) {
			return s, false
		}
		s[8+i] = u
	}
	return s, true
}

// basisName makes the short-name basis of a long name, as the FAT
// specification describes: upper case, characters that a short name cannot
// hold replaced by '_', spaces and leading dots dropped, the part before the
// last dot (its dots dropped) cut to 8 characters and the part after it to 3.
func basisName(c string) (base, ext string) {
	var b strings.Builder
	for _, r := range c {
		switch {
		case r == ' ':
			continue
		case r == '.':
			b.WriteByte('.')
		case r < utf8.RuneSelf && isShortChar(upperASCII(byte(r))):
			b.WriteByte(upperASCII(byte(r)))
		default:
			b.WriteByte('_')
		}
	}
	s := strings.TrimLeft(b.String(), ".")
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		s, ext = s[:i], s[i+1:]
	}
	base = strings.ReplaceAll(s, ".", "")
	if len(base) > 8 {
		base = base[:8]
	}
	if len(ext) > 3 {
		ext = ext[:3]
	}
	if base == "" {
		base = "_"
	}
	return base, ext
}

func shortBytes(base, ext string) [11]byte {
	var s [11]byte
	for i := range s {
		s[i] = ' '
	}
	copy(s[:8], base)
	copy(s[8:], ext)
	return s
}

// assignShortNames gives every child of d a short name unique in d (and
// distinct from the volume label in the root), and marks those that need
// long-name entries. Children must be sorted.
func assignShortNames(d *entry, label *[11]byte) error {
	used := make(map[[11]byte]bool, len(d.kids)+1)
	if label != nil {
		used[*label] = true
	}
	// Names that an exact short name holds keep it; they cannot collide
	// with each other, as names equal but for case are rejected earlier.
	var rest []*entry
	for _, e := range d.kids {
		if s, ok := exactShort(e.name); ok && !used[s] {
			used[s] = true
			e.short = s
			e.lfn = e.name != strings.ToUpper(e.name) // lower case: kept by a long name
			continue
		}
		rest = append(rest, e)
	}
	for _, e := range rest {
		e.lfn = true
		base, ext := basisName(e.name)
		found := false
		for n := 1; n <= 999999; n++ {
			tail := "~" + strconv.Itoa(n)
			b := base
			if len(b) > 8-len(tail) {
				b = b[:8-len(tail)]
			}
			s := shortBytes(b+tail, ext)
			if !used[s] {
				used[s] = true
				e.short = s
				found = true
				break
			}
		}
		if !found {
			return pathErr(e.path, ErrTooLarge, "no free short name for %q in its directory", e.name)
		}
	}
	return nil
}

// lfnChecksum is the checksum of a short name stored in its long-name
// entries.
func lfnChecksum(s [11]byte) byte {
	var sum byte
	for _, c := range s {
		sum = (sum>>1 | sum<<7) + c
	}
	return sum
}

// lfnSlots is the number of long-name entries a name needs.
func lfnSlots(units int) int { return (units + 12) / 13 }
