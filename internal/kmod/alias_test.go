package kmod

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"abc", "abc", true},
		{"abc", "abcd", false},
		{"*", "", true},
		{"*", "any/thing.at all", true},
		{"a*", "a", true},
		{"a*c", "abbbc", true},
		{"a*c", "abbbcd", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "acb", false},
		{"*ab*ab*", "xabyab", true},
		{"*ab*ab*", "xaab", false},
		{"*aab", "aaab", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"[abc]x", "bx", true},
		{"[abc]x", "dx", false},
		{"[!abc]x", "dx", true},
		{"[^abc]x", "ax", false},
		{"[a-f0-9]", "7", true},
		{"[a-f0-9]", "g", false},
		{"[]a]", "]", true},
		{"[!]a]", "]", false},
		{"[a-]", "-", true},
		{"[\\]]", "]", true},
		{"\\*", "*", true},
		{"\\*", "x", false},
		{"a\\", "a\\", true},
		{"[abc", "[abc", true},
		{"pci:v00008086d00007010sv*sd*bc*sc*i*", "pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80", true},
		{"pci:v*d*sv*sd*bc01sc01i*", "pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80", true},
		{"pci:v*d*sv*sd*bc01sc06i*", "pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80", false},
		{"cpu:type:x86,ven*fam*mod*:feature:*0094*", "cpu:type:x86,ven0000fam0006mod003F:feature:,0000,0001,0094,00E3", true},
	} {
		g := compile(tc.pattern)
		assert.Equal(t, tc.want, g.match(tc.s), "%q ~ %q", tc.pattern, tc.s)
		assert.Equal(t, tc.want, refMatch(tc.pattern, tc.s), "reference: %q ~ %q", tc.pattern, tc.s)
	}
	assert.Equal(t, "pci:v0000", compile("pci:v0000*d[12]").prefix)
	assert.Equal(t, "a*b", compile(`a\*b?`).prefix)
}

func TestNormalizeAlias(t *testing.T) {
	for in, want := range map[string]string{
		"fs-iso9660": "fs_iso9660",
		"a-[x-z]-b":  "a_[x-z]_b",
		"plain":      "plain",
	} {
		got, ok := normalizeAlias(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"a]", "a[b", "[a]]"} {
		_, ok := normalizeAlias(bad)
		assert.False(t, ok, bad)
	}
}

// refMatch is a plain recursive fnmatch, memoized, to check the compiled
// matcher.
func refMatch(p, s string) bool {
	memo := map[[2]int]bool{}
	var m func(i, j int) bool
	m = func(i, j int) bool {
		key := [2]int{i, j}
		if r, ok := memo[key]; ok {
			return r
		}
		r := false
		p, s := p[i:], s[j:]
		switch {
		case p == "":
			r = s == ""
		case p[0] == '*':
			r = m(i+1, j) || s != "" && m(i, j+1)
		case p[0] == '?':
			r = s != "" && m(i+1, j+1)
		case p[0] == '[':
			if set, n, ok := bracket(p); ok {
				r = s != "" && set.has(s[0]) && m(i+n, j+1)
				break
			}
			r = s != "" && s[0] == '[' && m(i+1, j+1)
		case p[0] == '\\' && len(p) > 1:
			r = s != "" && s[0] == p[1] && m(i+2, j+1)
		default:
			r = s != "" && s[0] == p[0] && m(i+1, j+1)
		}
		memo[key] = r
		return r
	}
	return m(0, 0)
}

func FuzzGlob(f *testing.F) {
	f.Add("a*b?c[d-f]*", "axxbycezz")
	f.Add("*ab*ab*", "xabyab")
	f.Add("[!]a-]*\\*", "q*")
	f.Add("***********(****", "n\f\x8av\x0f8\xd9=Pj\xb0;\x88s'G\xa7\t\xe1w\xbb\xbe\x9a&\xa8\xfd\x10\xe2v\x110i\x95b\x9c")
	f.Fuzz(func(t *testing.T, p, s string) {
		if len(p) > 64 || len(s) > 256 {
			return
		}
		g := compile(p)
		if got, want := g.match(s), refMatch(p, s); got != want {
			t.Fatalf("%q ~ %q: got %v, want %v", p, s, got, want)
		}
		if got := g.match(s); got && !hasPrefix(s, g.prefix) {
			t.Fatalf("%q matches %q without its prefix %q", p, s, g.prefix)
		}
	})
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }
