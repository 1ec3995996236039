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

// refMatch is a plain recursive fnmatch, to check the compiled matcher.
func refMatch(p, s string) bool {
	if p == "" {
		return s == ""
	}
	switch p[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if refMatch(p[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && refMatch(p[1:], s[1:])
	case '[':
		if set, n, ok := bracket(p); ok {
			return s != "" && set.has(s[0]) && refMatch(p[n:], s[1:])
		}
	case '\\':
		if len(p) > 1 {
			return s != "" && s[0] == p[1] && refMatch(p[2:], s[1:])
		}
	}
	return s != "" && s[0] == p[0] && refMatch(p[1:], s[1:])
}

func FuzzGlob(f *testing.F) {
	f.Add("a*b?c[d-f]*", "axxbycezz")
	f.Add("*ab*ab*", "xabyab")
	f.Add("[!]a-]*\\*", "q*")
	f.Fuzz(func(t *testing.T, p, s string) {
		if len(p) > 24 || len(s) > 48 {
			return // the reference is exponential
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
