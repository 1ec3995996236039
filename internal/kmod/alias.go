package kmod

import (
	"slices"
	"strings"
)

// alias is one line of modules.alias (or a built-in module's alias).
type alias struct {
	pattern string // as written
	module  string
	builtin bool
	glob    glob // compiled from the normalized pattern
}

// aliasIndex finds the patterns that may match a string by their literal
// prefix, the part before the first wildcard: a modalias is looked up once
// for each distinct prefix length, and only the patterns found are matched.
type aliasIndex struct {
	list     []alias
	byPrefix map[string][]int // literal prefix → indexes into list
	lengths  []int            // the distinct prefix lengths, ascending
}

func (x *aliasIndex) add(pattern, module string, builtin bool) {
	norm, ok := normalizeAlias(pattern)
	if !ok {
		return // an unmatched bracket: modprobe ignores the alias too
	}
	x.list = append(x.list, alias{pattern: pattern, module: module, builtin: builtin, glob: compile(norm)})
}

func (x *aliasIndex) build() {
	x.byPrefix = map[string][]int{}
	for i, a := range x.list {
		p := a.glob.prefix
		if _, ok := x.byPrefix[p]; !ok {
			x.lengths = append(x.lengths, len(p))
		}
		x.byPrefix[p] = append(x.byPrefix[p], i)
	}
	slices.Sort(x.lengths)
	x.lengths = slices.Compact(x.lengths)
}

// MatchAlias returns the names of the modules with an alias that matches
// modalias (a device's /sys/.../modalias, or a name such as "fs-iso9660" or
// "crypto-crc32c"), sorted and without duplicates. As with modprobe, the
// aliases of built-in modules count only when no loadable module's alias
// matches.
func (db *DB) MatchAlias(modalias string) []string {
	s, ok := normalizeAlias(modalias)
	if !ok {
		return nil
	}
	var mods, builtins []string
	x := &db.aliases
	for _, n := range x.lengths {
		if n > len(s) {
			break
		}
		for _, i := range x.byPrefix[s[:n]] {
			if a := &x.list[i]; !a.glob.match(s) {
				continue
			} else if a.builtin {
				builtins = append(builtins, a.module)
			} else {
				mods = append(mods, a.module)
			}
		}
	}
	if len(mods) == 0 {
		mods = builtins
	}
	slices.Sort(mods)
	return slices.Compact(mods)
}

// normalizeAlias is modprobe's alias normalization: '-' becomes '_' except
// inside brackets; an unmatched bracket makes the alias invalid.
func normalizeAlias(s string) (string, bool) {
	if !strings.ContainsAny(s, "-[]") {
		return s, true
	}
	b := []byte(s)
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '-':
			b[i] = '_'
		case ']':
			return "", false
		case '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return "", false
			}
			i += j
		}
	}
	return string(b), true
}

// glob is a compiled fnmatch pattern without flags: '*' matches any bytes
// (slashes and leading dots included), '?' one byte, [...] one byte of a
// set ([!...] or [^...] its complement, a-z ranges, ']' first is literal;
// no [:classes:]), and '\' quotes the next byte. It is stored as the
// segments between the stars, each a sequence of one-byte matchers.
type glob struct {
	prefix string   // the literal bytes before the first wildcard
	segs   [][]elem // len(segs) == number of stars + 1
}

// elem matches one byte: c, or any byte of set if set is not nil.
type elem struct {
	c   byte
	set *class
}

// class is a set of bytes.
type class [4]uint64

func (c *class) add(b byte)      { c[b>>6] |= 1 << (b & 63) }
func (c *class) has(b byte) bool { return c[b>>6]&(1<<(b&63)) != 0 }
func (c *class) invert()         { c[0], c[1], c[2], c[3] = ^c[0], ^c[1], ^c[2], ^c[3] }

var anyByte = func() *class { var c class; c.invert(); return &c }()

func compile(p string) glob {
	var g glob
	elems := make([]elem, 0, len(p)) // the segments are slices of it
	start := 0
	var prefix []byte
	literalRun := true
	for i := 0; i < len(p); i++ {
		e := elem{c: p[i]}
		switch p[i] {
		case '*':
			g.segs = append(g.segs, elems[start:len(elems):len(elems)])
			start, literalRun = len(elems), false
			continue
		case '?':
			e.set = anyByte
		case '[':
			if set, n, ok := bracket(p[i:]); ok { // else a literal '['
				e.set, i = &set, i+n-1
			}
		case '\\':
			if i+1 < len(p) {
				i++
				e.c = p[i]
			}
		}
		if e.set != nil {
			literalRun = false
		} else if literalRun {
			prefix = append(prefix, e.c)
		}
		elems = append(elems, e)
	}
	g.segs = append(g.segs, elems[start:])
	g.prefix = string(prefix)
	return g
}

// bracket parses a bracket expression at the start of p and returns its set
// and length; ok is false if it is not closed.
func bracket(p string) (c class, n int, ok bool) {
	i := 1
	neg := i < len(p) && (p[i] == '!' || p[i] == '^')
	if neg {
		i++
	}
	for first := true; i < len(p); first = false {
		b := p[i]
		if b == ']' && !first {
			if neg {
				c.invert()
			}
			return c, i + 1, true
		}
		if b == '\\' && i+1 < len(p) {
			i++
			b = p[i]
		}
		if i+2 < len(p) && p[i+1] == '-' && p[i+2] != ']' {
			hi := p[i+2]
			if hi == '\\' && i+3 < len(p) {
				hi, i = p[i+3], i+1
			}
			for x := int(b); x <= int(hi); x++ {
				c.add(byte(x))
			}
			i += 3
			continue
		}
		c.add(b)
		i++
	}
	return class{}, 0, false
}

// match reports whether the whole of s matches: the first segment at the
// start, the last at the end, and the ones between at their leftmost
// places (which is optimal, since each has a fixed length).
func (g *glob) match(s string) bool {
	first, last := g.segs[0], g.segs[len(g.segs)-1]
	if len(g.segs) == 1 {
		return len(s) == len(first) && matchAt(first, s)
	}
	if len(s) < len(first)+len(last) || !matchAt(first, s) || !matchAt(last, s[len(s)-len(last):]) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	for _, seg := range g.segs[1 : len(g.segs)-1] {
		i := 0
		for ; i+len(seg) <= len(s) && !matchAt(seg, s[i:]); i++ {
		}
		if i+len(seg) > len(s) {
			return false
		}
		s = s[i+len(seg):]
	}
	return true
}

// matchAt reports whether seg matches the start of s (len(s) >= len(seg)).
func matchAt(seg []elem, s string) bool {
	for i, e := range seg {
		if e.set == nil && e.c != s[i] || e.set != nil && !e.set.has(s[i]) {
			return false
		}
	}
	return true
}
