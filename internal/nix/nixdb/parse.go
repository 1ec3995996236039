package nixdb

import (
	"bytes"
	"strconv"

	"github.com/nixlive/nixlive/internal/nix/registration"
	"github.com/nixlive/nixlive/internal/nix/storepath"
)

// parseRegistration is registration.Parse with a fast path: the common
// case, a registration as closureInfo writes it, is read by quickParse,
// which accepts a subset of what Parse accepts and then gives exactly the
// records Parse gives (FuzzQuickParse checks both). Anything else, an
// error in particular, goes to Parse, whose errors name the line.
//
// quickParse also shares one string between a path and every reference to
// it, which saves memory and time later on.
func parseRegistration(data []byte) ([]registration.Record, error) {
	if recs, ok := quickParse(data); ok {
		return recs, nil
	}
	return registration.Parse(bytes.NewReader(data), StoreDir)
}

// nix32 maps a character to its nix32 digit, or 0xff.
var nix32 = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range []byte("0123456789abcdfghijklmnpqrsvwxyz") {
		t[c] = byte(i)
	}
	return t
}()

// quickParse reads data if it is a registration whose every record has
// "sha256:" + nix32 hashes; ok is false for anything else (and for an
// empty input), which Parse then reads (or refuses).
func quickParse(data []byte) (recs []registration.Record, ok bool) {
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return nil, false
	}
	strs := make(map[string]string)
	intern := func(b []byte) string {
		if s, ok := strs[string(b)]; ok {
			return s
		}
		s := string(b)
		strs[s] = s
		return s
	}
	pos := 0
	line := func() []byte {
		i := bytes.IndexByte(data[pos:], '\n')
		if i < 0 {
			return nil
		}
		l := data[pos : pos+i]
		pos += i + 1
		return l
	}
	// Each record has at least 5 lines: a count that would need more
	// lines than there are bytes left is not worth preallocating for.
	recs = make([]registration.Record, 0, bytes.Count(data, []byte{'\n'})/5)
	for pos < len(data) {
		var r registration.Record
		l := line()
		if !quickStorePath(l) {
			return nil, false
		}
		r.Path = intern(l)
		if l = line(); !quickHash(l, &r.NarHash) {
			return nil, false
		}
		var n uint64
		if r.NarSize, ok = quickNumber(line()); !ok {
			return nil, false
		}
		if l = line(); len(l) > 0 {
			if !quickStorePath(l) {
				return nil, false
			}
			r.Deriver = intern(l)
		} else if l == nil {
			return nil, false
		}
		if n, ok = quickNumber(line()); !ok || n > uint64(len(data)-pos) {
			return nil, false
		}
		if n > 0 {
			r.References = make([]string, n)
			for i := range r.References {
				l := line()
				if !quickStorePath(l) {
					return nil, false
				}
				r.References[i] = intern(l)
			}
		}
		recs = append(recs, r)
	}
	return recs, true
}

// quickStorePath is storepath.Parse's check for /nix/store paths.
func quickStorePath(l []byte) bool {
	const prefix = StoreDir + "/"
	if len(l) < len(prefix)+storepath.HashLen+2 || string(l[:len(prefix)]) != prefix {
		return false
	}
	base := l[len(prefix):]
	for _, c := range base[:storepath.HashLen] {
		if nix32[c] == 0xff {
			return false
		}
	}
	if base[storepath.HashLen] != '-' {
		return false
	}
	name := base[storepath.HashLen+1:]
	if len(name) > storepath.MaxNameLen || name[0] == '.' {
		return false
	}
	for _, c := range name {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '+', c == '-', c == '.', c == '_', c == '?', c == '=':
		default:
			return false
		}
	}
	return true
}

// quickHash decodes "sha256:" + 52 nix32 characters as nixbase32.Decode
// does: the last character is the least significant, and the top bits
// that do not fit in 32 bytes must be zero.
func quickHash(l []byte, h *[32]byte) bool {
	const prefix = "sha256:"
	if len(l) != len(prefix)+52 || string(l[:len(prefix)]) != prefix {
		return false
	}
	src := l[len(prefix):]
	*h = [32]byte{}
	for n := 0; n < len(src); n++ {
		d := nix32[src[len(src)-n-1]]
		if d == 0xff {
			return false
		}
		b := n * 5
		i, j := b/8, b%8
		h[i] |= d << j
		carry := d >> (8 - j)
		if i+1 < len(h) {
			h[i+1] |= carry
		} else if carry != 0 {
			return false
		}
	}
	return true
}

// quickNumber reads a decimal number of digits only (registration.Parse,
// as Nix, also takes a leading "+": such input goes to it).
func quickNumber(l []byte) (uint64, bool) {
	if len(l) == 0 || len(l) > 20 {
		return 0, false
	}
	for _, c := range l {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(string(l), 10, 64)
	return n, err == nil
}
