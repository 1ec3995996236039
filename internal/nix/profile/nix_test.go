package profile_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/fixture"
	"github.com/nixlive/nixlive/internal/boottest/storetest"
	"github.com/nixlive/nixlive/internal/nix/nixdb"
	"github.com/nixlive/nixlive/internal/nix/profile"
)

// The live CD's profile and system (postboot's defaults).
const (
	defaultProfile = "/nix/var/nix/profiles/system"
	defaultSystem  = "/run/current-system"
)

var fakePath = fixture.FakePath

// TestSetProfileAgainstNix sets the system profile with nix-env and with
// SetProfile in two stores and compares the trees they leave, step by
// step: first generation, the same system again, another system, a
// rollback (by nix-env, in both) and the newest system again.
func TestSetProfileAgainstNix(t *testing.T) {
	s := storetest.MakeSource(t)
	theirs, ours, _ := s.LoadBoth(t)

	theirProfile := filepath.Join(theirs, defaultProfile)
	setCurrent := func(target string) {
		// The live CD's /run/current-system, a link inside our root.
		link := filepath.Join(ours, "run/current-system")
		require.NoError(t, os.MkdirAll(filepath.Dir(link), 0o755))
		os.Remove(link)
		require.NoError(t, os.Symlink(target, link))
	}
	step := func(name, target string, wantGen int, wantNew bool) {
		t.Helper()
		storetest.NixEnv(t, theirs, "-p", theirProfile, "--set", target)
		setCurrent(target)
		res, err := profile.Set(&nixdb.Store{Root: ours}, defaultProfile, defaultSystem)
		require.NoError(t, err, name)
		require.Equal(t, target, res.StorePath, name)
		require.Equal(t, wantGen, res.Generation, name)
		require.Equal(t, wantNew, res.NewGeneration, name)
		require.Equal(t, fmt.Sprintf("%s-%d-link", defaultProfile, wantGen), res.Link, name)
		require.Equal(t, normalTree(t, theirs), normalTree(t, ours), name)
		// Nix reads our profile.
		require.Equal(t,
			listGenerations(t, theirs, theirProfile),
			listGenerations(t, ours, filepath.Join(ours, defaultProfile)), name)
	}
	step("first", s.Sys1, 1, true)
	step("same again", s.Sys1, 1, false)
	step("another", s.Sys2, 2, true)
	for _, dir := range []string{theirs, ours} {
		storetest.NixEnv(t, dir, "-p", filepath.Join(dir, defaultProfile), "--rollback")
	}
	require.Equal(t, normalTree(t, theirs), normalTree(t, ours))
	step("newest after a rollback", s.Sys2, 2, false)
	step("back to the first", s.Sys1, 3, true)
	require.Contains(t, listGenerations(t, ours, filepath.Join(ours, defaultProfile)), "   3   ")

	// A store path given directly, and a path below one.
	res, err := profile.Set(&nixdb.Store{Root: ours}, defaultProfile, s.Sys2+"/sub/dir")
	require.NoError(t, err)
	require.Equal(t, 4, res.Generation)

	// A path that is not valid is refused, and changes nothing.
	before := storetest.ListTree(t, filepath.Join(ours, "nix/var"))
	_, err = profile.Set(&nixdb.Store{Root: ours}, defaultProfile, fakePath("nothere"))
	require.ErrorContains(t, err, "is not valid")
	require.Equal(t, before, storetest.ListTree(t, filepath.Join(ours, "nix/var")))
}

func listGenerations(t *testing.T, store, profile string) string {
	t.Helper()
	out := storetest.NixEnv(t, store, "-p", profile, "--list-generations")
	// Drop the creation times, which differ by the second.
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		lines = append(lines, "   "+f[0]+"   "+strings.Join(f[3:], " "))
	}
	return strings.Join(lines, "\n")
}

// normalTree lists root/nix/var/nix as Nix would see it from inside the
// root: link targets that name the root's host path (Nix with --store
// writes those) are made in-root paths, and the GC roots in
// gcroots/auto, named after the SHA-1 of the host or in-root path of
// their link, are checked to be so and renamed "<root of TARGET>".
// Database files are compared by name only.
func normalTree(t *testing.T, root string) []storetest.TreeEntry {
	t.Helper()
	var out []storetest.TreeEntry
	for _, e := range storetest.ListTree(t, filepath.Join(root, "nix/var/nix")) {
		if e.Type == "link" {
			e.Target = strings.TrimPrefix(e.Target, root)
			if filepath.Dir(e.Path) == "gcroots/auto" {
				name := filepath.Base(e.Path)
				require.Contains(t, []string{profile.GCRootName(e.Target), profile.GCRootName(root + e.Target)}, name, e.Path)
				e.Path = "gcroots/auto/<root of " + e.Target + ">"
			}
		}
		if filepath.Dir(e.Path) == "db" && e.Type == "file" && e.Path != "db/schema" {
			e.Size = 0
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b storetest.TreeEntry) int { return strings.Compare(a.Path, b.Path) })
	return out
}
