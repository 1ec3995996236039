package closure_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/nix-community/go-nix/pkg/nixbase32"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/fixture"
	"github.com/nixlive/nixlive/internal/nix/closure"
	"github.com/nixlive/nixlive/internal/nix/nar"
	"github.com/nixlive/nixlive/internal/nix/storepath"
)

// fakePath names store paths of hand-made stores: nothing in the closure
// code checks how a path's hash was derived, and neither does nix-store
// --load-db.
var fakePath = fixture.FakePath

func hashPart(p string) string { return filepath.Base(p)[:32] }

// handStore writes files into root: keys are logical paths below the
// store dir, values are contents; a value starting with "->" makes a
// symlink to the rest.
func handStore(t *testing.T, root storepath.Root, files map[string]string) {
	t.Helper()
	for p, content := range files {
		host := root.HostPath(p)
		require.NoError(t, os.MkdirAll(filepath.Dir(host), 0o755))
		if target, ok := strings.CutPrefix(content, "->"); ok {
			require.NoError(t, os.Symlink(target, host))
			continue
		}
		require.NoError(t, os.WriteFile(host, []byte(content), 0o644))
	}
}

type sample struct {
	root                   storepath.Root
	lib, app, data, leaf   string
	unrelated, missingRef  string
	expectRefs             map[string][]string
	expectClosureFromApp   []string
	hostLink, hostAppInner string
}

func newSample(t *testing.T) sample {
	t.Helper()
	s := sample{root: storepath.Root{Dir: t.TempDir()}}
	s.lib = fakePath("lib")
	s.app = fakePath("app")
	s.data = fakePath("data")
	s.leaf = fakePath("leaf")
	s.unrelated = fakePath("unrelated")
	s.missingRef = fakePath("not-in-store")
	handStore(t, s.root, map[string]string{
		s.lib + "/lib/libx.so": "\x7fELF\x00\x01\x02binary junk\x00",
		s.app + "/bin/app":     "\x7fELF\x00RPATH=" + s.lib + "/lib\x00self=" + s.app + "\x00",
		s.app + "/share":       "->" + s.data + "/share",
		// A hash glued to other nix32 characters still counts.
		s.data + "/share/x": "x" + hashPart(s.leaf) + "y\n" + hashPart(s.missingRef),
		s.leaf:              "",
		s.unrelated:         s.lib,
		// Debris that shares app's hash part must not join the closure.
		s.app + ".lock": "",
	})
	s.expectRefs = map[string][]string{
		s.lib:  nil,
		s.app:  sorted(s.lib, s.app, s.data),
		s.data: {s.leaf},
		s.leaf: nil,
	}
	s.expectClosureFromApp = sorted(s.lib, s.app, s.data, s.leaf)
	host := t.TempDir()
	s.hostLink = filepath.Join(host, "result")
	require.NoError(t, os.Symlink(s.app, s.hostLink))
	s.hostAppInner = filepath.Join(host, "app")
	require.NoError(t, os.Symlink(s.app+"/bin/app", s.hostAppInner))
	return s
}

func sorted(ps ...string) []string {
	slices.Sort(ps)
	return ps
}

func TestFromStoreRoot(t *testing.T) {
	s := newSample(t)
	for _, roots := range [][]string{
		{s.app},
		{s.app + "/bin/app"},
		{s.hostLink},
		{s.hostAppInner},
		{s.root.HostPath(s.app)},
		{s.data, s.app, s.app},
	} {
		c, err := closure.FromStoreRoot(s.root, roots)
		require.NoError(t, err, roots)
		require.Equal(t, s.expectClosureFromApp, c.Paths, roots)
		for _, r := range c.Records {
			require.Equal(t, s.expectRefs[r.Path], r.References, r.Path)
			h, n, err := nar.Hash(s.root.HostPath(r.Path))
			require.NoError(t, err)
			require.Equal(t, h, r.NarHash)
			require.Equal(t, n, r.NarSize)
		}
		rec, ok := c.Record(s.app)
		require.True(t, ok)
		require.Equal(t, s.app, rec.Path)
		_, ok = c.Record(s.unrelated)
		require.False(t, ok)
	}

	c, err := closure.FromStoreRoot(s.root, []string{s.unrelated})
	require.NoError(t, err)
	require.Equal(t, sorted(s.unrelated, s.lib), c.Paths)

	c, err = closure.FromStoreRoot(s.root, nil)
	require.NoError(t, err)
	require.Empty(t, c.Paths)
}

func TestClosureInfoRoundTrip(t *testing.T) {
	s := newSample(t)
	c, err := closure.FromStoreRoot(s.root, []string{s.app})
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, c.WriteClosureInfo(dir))
	got, err := closure.FromClosureInfo(dir, "")
	require.NoError(t, err)
	require.Equal(t, c, got)

	total, err := os.ReadFile(filepath.Join(dir, "total-nar-size"))
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("%d\n", c.TotalNarSize()), string(total))
}

func TestFromStoreRootErrors(t *testing.T) {
	s := newSample(t)
	outside := filepath.Join(t.TempDir(), "plain")
	require.NoError(t, os.WriteFile(outside, nil, 0o644))
	gone := fakePath("gone")
	for _, tc := range []struct {
		roots []string
		msg   string
	}{
		{[]string{outside}, "closure: " + outside + ": not in the store /nix/store"},
		{[]string{"/x/y"}, "closure: /x/y: not in the store /nix/store"},
		{[]string{gone}, "closure: root " + gone + ": store path " + gone + " is missing (no " + s.root.HostPath(gone) + ")"},
		{[]string{"/nix/store/bad"}, `closure: root /nix/store/bad: storepath: "/nix/store/bad": too short for <32-char hash>-<name>`},
	} {
		_, err := closure.FromStoreRoot(s.root, tc.roots)
		require.EqualError(t, err, tc.msg)
	}

	_, err := closure.FromStoreRoot(storepath.Root{Dir: t.TempDir()}, []string{s.app})
	require.ErrorContains(t, err, "listing store")

	// A file that cannot be serialised (a FIFO) deep in the closure is
	// named in the error.
	bad := fakePath("bad")
	require.NoError(t, os.MkdirAll(s.root.HostPath(bad), 0o755))
	f := s.root.HostPath(bad + "/pipe")
	require.NoError(t, syscall.Mkfifo(f, 0o644))
	require.NoError(t, os.WriteFile(s.root.HostPath(fakePath("refsbad")), []byte(bad), 0o644))
	_, err = closure.FromStoreRoot(s.root, []string{fakePath("refsbad")})
	require.ErrorContains(t, err, "closure: reading "+bad)
	require.ErrorContains(t, err, f)
}

// TestDeterministic builds a random store graph and checks that the
// closure is the same whatever the number of workers, and equals a
// straightforward graph search.
func TestDeterministic(t *testing.T) {
	root := storepath.Root{Dir: t.TempDir()}
	r := rand.New(rand.NewPCG(1, 2))
	const n = 300
	paths := make([]string, n)
	for i := range paths {
		paths[i] = fakePath(fmt.Sprintf("p%d", i))
	}
	refs := make([][]int, n)
	files := map[string]string{}
	for i := range paths {
		var content strings.Builder
		for k := r.IntN(4); k > 0; k-- {
			j := r.IntN(n)
			refs[i] = append(refs[i], j)
			fmt.Fprintf(&content, "junk%d:%s/bin\n", k, paths[j])
		}
		if r.IntN(5) == 0 {
			files[paths[i]+"/sub/f"] = content.String()
		} else {
			files[paths[i]] = content.String()
		}
	}
	handStore(t, root, files)

	rootsIdx := []int{0, 7, 42}
	seen := map[int]bool{}
	var stack []int
	for _, i := range rootsIdx {
		seen[i] = true
		stack = append(stack, i)
	}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, j := range refs[i] {
			if !seen[j] {
				seen[j] = true
				stack = append(stack, j)
			}
		}
	}
	var want []string
	for i := range seen {
		want = append(want, paths[i])
	}
	slices.Sort(want)

	var first *closure.Closure
	for _, w := range []int{1, 2, 7} {
		c, err := closure.FromStoreRootWorkers(root, []string{paths[0], paths[7], paths[42]}, w)
		require.NoError(t, err)
		require.Equal(t, want, c.Paths, "workers=%d", w)
		if first == nil {
			first = c
		} else {
			require.Equal(t, first, c, "workers=%d", w)
		}
	}
}

func TestFromClosureInfoErrors(t *testing.T) {
	a, b, c := fakePath("a"), fakePath("b"), fakePath("c")
	var h [32]byte
	rec := func(p string, refs ...string) string {
		s := p + "\nsha256:" + nixbase32.EncodeToString(h[:]) + "\n8\n\n" + fmt.Sprint(len(refs)) + "\n"
		for _, r := range refs {
			s += r + "\n"
		}
		return s
	}
	for _, tc := range []struct{ name, paths, reg, msg string }{
		{"ok", a + "\n" + b, rec(a, b) + rec(b), ""},
		{"extra listed", a + "\n" + b + "\n" + c + "\n", rec(a) + rec(b), "store-paths: line 3: " + c + " is not registered in"},
		{"not listed", a + "\n", rec(a) + rec(b), "registration: line 6: " + b + " is not listed in"},
		{"dup listed", a + "\n" + a + "\n", rec(a), "store-paths: line 2: " + a + " is listed again (first at line 1)"},
		{"dup registered", a + "\n", rec(a) + rec(a), "registration: line 6: " + a + " is registered again (first at line 1)"},
		{"dangling ref", a + "\n" + b + "\n", rec(a) + rec(b, a, c), "registration: line 12: reference " + c + " of " + b + " is not in the closure"},
		{"bad line", a + "\n\n", rec(a), "store-paths: line 2: storepath:"},
		{"bad registration", a + "\n", rec(a) + "\n", "registration: line 6: empty line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "store-paths"), []byte(tc.paths), 0o644))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "registration"), []byte(tc.reg), 0o644))
			_, err := closure.FromClosureInfo(dir, "")
			if tc.msg == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.msg)
			require.ErrorContains(t, err, dir)
		})
	}
	_, err := closure.FromClosureInfo(t.TempDir(), "")
	require.ErrorContains(t, err, "store-paths")
}
