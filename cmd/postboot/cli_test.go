package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/fixture"
	"github.com/nixlive/nixlive/internal/boottest/storetest"
	"github.com/nixlive/nixlive/internal/nix/nixdb"
	nixprofile "github.com/nixlive/nixlive/internal/nix/profile"
	"github.com/nixlive/nixlive/internal/nix/registration"
	"github.com/nixlive/nixlive/postboot"
)

// liveRoot makes a root as the live CD has it at post-boot time: the
// registration in the store, /run/current-system leading to the system.
func liveRoot(t *testing.T) (root string, recs []registration.Record) {
	t.Helper()
	root = t.TempDir()
	recs = fixture.Synthetic(30, 9)
	reg := filepath.Join(root, postboot.DefaultRegistration)
	require.NoError(t, os.MkdirAll(filepath.Dir(reg), 0o755))
	require.NoError(t, os.WriteFile(reg, registration.Marshal(recs), 0o444))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "run"), 0o755))
	// /run/current-system -> /run/booted-system -> the store, as stage 2
	// leaves it, through an absolute link that only makes sense inside
	// the root.
	require.NoError(t, os.Symlink("/run/booted-system", filepath.Join(root, "run/current-system")))
	require.NoError(t, os.Symlink(recs[7].Path+"/", filepath.Join(root, "run/booted-system")))
	return root, recs
}

func TestMainAllSteps(t *testing.T) {
	root, recs := liveRoot(t)
	var stderr bytes.Buffer
	require.Equal(t, 0, run([]string{"--root", root}, &stderr), stderr.String())
	require.Empty(t, stderr.String(), "quiet unless -v")

	db := storetest.OpenSQL(t, root)
	require.Len(t, storetest.QueryRows(t, db, "select path from ValidPaths"), len(recs))
	fi, err := os.Stat(filepath.Join(root, "etc/NIXOS"))
	require.NoError(t, err)
	require.True(t, fi.Mode().IsRegular())
	profile := filepath.Join(root, postboot.DefaultProfile)
	target, err := os.Readlink(profile)
	require.NoError(t, err)
	require.Equal(t, "system-1-link", target)
	gen, err := os.Readlink(profile + "-1-link")
	require.NoError(t, err)
	require.Equal(t, recs[7].Path, gen)
	auto := filepath.Join(root, "nix/var/nix/gcroots/auto", nixprofile.GCRootName(postboot.DefaultProfile+"-1-link"))
	gcTarget, err := os.Readlink(auto)
	require.NoError(t, err)
	require.Equal(t, postboot.DefaultProfile+"-1-link", gcTarget)

	// Again, verbosely: nothing changes, /etc/NIXOS is touched.
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	require.NoError(t, os.Chtimes(filepath.Join(root, "etc/NIXOS"), old, old))
	before := storetest.ListTree(t, filepath.Join(root, "nix"))
	stderr.Reset()
	require.Equal(t, 0, run([]string{"-v", "--root", root}, &stderr), stderr.String())
	require.Contains(t, stderr.String(), "msg=load-db")
	require.Contains(t, stderr.String(), "new=0")
	require.Contains(t, stderr.String(), "msg=set-profile")
	require.Equal(t, before, storetest.ListTree(t, filepath.Join(root, "nix")))
	fi, err = os.Stat(filepath.Join(root, "etc/NIXOS"))
	require.NoError(t, err)
	require.True(t, fi.ModTime().After(old))

	// A new system: set-profile alone, with the step after the flags or
	// before them.
	require.NoError(t, os.Remove(filepath.Join(root, "run/booted-system")))
	require.NoError(t, os.Symlink(recs[8].Path, filepath.Join(root, "run/booted-system")))
	require.Equal(t, 0, run([]string{"set-profile", "--root", root}, &stderr), stderr.String())
	target, err = os.Readlink(profile)
	require.NoError(t, err)
	require.Equal(t, "system-2-link", target)
	require.Equal(t, 0, run([]string{"--root", root, "--system", recs[7].Path, "set-profile"}, &stderr), stderr.String())
	target, _ = os.Readlink(profile)
	require.Equal(t, "system-3-link", target)
}

func TestMainErrors(t *testing.T) {
	root, recs := liveRoot(t)
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"--root", root, "frobnicate"}, 2, "unknown step"},
		{[]string{"--root", root, "load-db", "set-profile"}, 2, "one step at most"},
		{[]string{"--nope"}, 2, "flag provided but not defined"},
		{[]string{"--root", root, "--registration", filepath.Join(root, "missing"), "load-db"}, 1, "no such file"},
		// Nothing is valid yet.
		{[]string{"--root", root, "set-profile"}, 1, "is not valid"},
		// Not in the store, wherever it leads.
		{[]string{"--root", root, "--system", "/run", "set-profile"}, 1, "not in the Nix store"},
		{[]string{"--root", root, "--system", "/nowhere", "set-profile"}, 1, "does not exist"},
	} {
		var stderr bytes.Buffer
		require.Equal(t, c.code, run(c.args, &stderr), "%q: %s", c.args, stderr.String())
		require.Contains(t, stderr.String(), c.says, c.args)
	}
	// A failed step does not stop the others; the status says it failed.
	reg := filepath.Join(root, postboot.DefaultRegistration)
	require.NoError(t, os.Chmod(reg, 0o644))
	require.NoError(t, os.WriteFile(reg, append(registration.Marshal(recs), '\n'), 0o644))
	var stderr bytes.Buffer
	require.Equal(t, 1, run([]string{"--root", root}, &stderr))
	lines := strings.Count(string(registration.Marshal(recs)), "\n")
	require.Contains(t, stderr.String(), fmt.Sprintf("line %d: empty line", lines+1))
	require.Contains(t, stderr.String(), "set-profile")
	_, err := os.Stat(filepath.Join(root, "etc/NIXOS"))
	require.NoError(t, err)

	// A profile directory that does not exist is an error, as for nix-env.
	_, err = (&nixdb.Store{Root: root}).LoadDB(bytes.NewReader(registration.Marshal(recs)))
	require.NoError(t, err)
	_, err = nixprofile.Set(&nixdb.Store{Root: root}, "/nix/var/nix/profiles/nowhere/system", recs[0].Path)
	require.ErrorContains(t, err, "opening directory")
	// Any other profile in an existing directory is fine.
	res, err := nixprofile.Set(&nixdb.Store{Root: root}, "/nix/var/nix/profiles/per-user/root/channels", recs[0].Path)
	require.NoError(t, err)
	require.Equal(t, 1, res.Generation)
	require.True(t, strings.HasSuffix(res.Link, "/channels-1-link"))
}
