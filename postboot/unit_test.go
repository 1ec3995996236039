package postboot

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGCRootName(t *testing.T) {
	// Measured: `nix-env --store /tmp/pb/s2 -p /tmp/pb/s2/nix/var/nix/profiles/system --set ...`
	// made gcroots/auto/0qkdfg65adn7nfzsz3k6z7aakzmlz904 for generation 1
	// and bpg6pnrydh3j7y18hjv4dn66j0qdj1qd for generation 2.
	require.Equal(t, "0qkdfg65adn7nfzsz3k6z7aakzmlz904", GCRootName("/tmp/pb/s2/nix/var/nix/profiles/system-1-link"))
	require.Equal(t, "bpg6pnrydh3j7y18hjv4dn66j0qdj1qd", GCRootName("/tmp/pb/s2/nix/var/nix/profiles/system-2-link"))
}

func TestParseGeneration(t *testing.T) {
	for _, c := range []struct {
		name string
		n    int
		ok   bool
	}{
		{"system-1-link", 1, true},
		{"system-42-link", 42, true},
		{"system-007-link", 7, true},
		{"system-0-link", 0, true},
		{"system-3-link.tmp-12-34", 3, true}, // as Nix's parseName
		{"system", 0, false},
		{"system-link", 0, false},
		{"system--link", 0, false},
		{"system-x-link", 0, false},
		{"system--1-link", 0, false},
		{"system-+1-link", 0, false},
		{"system-1", 0, false},
		{"systemd-1-link", 0, false},
		{"other-1-link", 0, false},
		{".system-1-link.tmp-1-2", 0, false},
		{"system-99999999999-link", 0, false}, // not an unsigned int
	} {
		n, ok := parseGeneration("system", c.name)
		require.Equal(t, c.ok, ok, c.name)
		require.Equal(t, c.n, n, c.name)
	}
}

const sp1 = "/nix/store/i1rngfb9rq4fk4vdafz5qalx07flbs9g-f1"

func TestResolveStorePath(t *testing.T) {
	dir := t.TempDir()
	r := root(dir)
	mk := func(p string) { require.NoError(t, os.MkdirAll(filepath.Join(dir, p), 0o755)) }
	ln := func(target, p string) {
		mk(filepath.Dir(p))
		require.NoError(t, os.Symlink(target, filepath.Join(dir, p)))
	}
	mk("run")
	ln(sp1, "run/current-system")                      // absolute, into the store
	ln("current-system", "run/rel")                    // relative chain
	ln("/run/current-system", "run/abs")               // absolute chain, inside the root
	ln("../../../../run/current-system", "run/dotdot") // ".." stops at the root
	ln(sp1+"/sw/bin", "run/deep")                      // below a store path
	ln("/etc/nowhere", "run/dangling")
	ln("loop", "run/loop")
	ln("/var/run", "run2") // an intermediate link
	ln("/run", "var/run")  // ... to a link
	ln("/nix/store/.links", "run/links")
	mk("etc")

	for _, p := range []string{"/run/current-system", "/run/rel", "/run/abs", "/run/dotdot", "/run/deep",
		sp1, sp1 + "/bin/sh", "/run2/current-system", "/run/../run/abs"} {
		got, err := r.resolveStorePath(p)
		require.NoError(t, err, p)
		require.Equal(t, sp1, got, p)
	}
	for _, p := range []string{"/run/dangling", "/run/loop", "/etc", "/run/links", "/nowhere", "run/current-system"} {
		_, err := r.resolveStorePath(p)
		require.Error(t, err, p)
	}
	// The store path itself need not exist in the root.
	_, err := os.Stat(filepath.Join(dir, sp1))
	require.True(t, os.IsNotExist(err))
}

func TestResolveInRoot(t *testing.T) {
	dir := t.TempDir()
	r := root(dir)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "real/profiles"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "nix/var"), 0o755))
	require.NoError(t, os.Symlink("/real", filepath.Join(dir, "nix/var/nix")))
	require.NoError(t, os.Symlink("../../etc", filepath.Join(dir, "real/up")))

	got, err := r.resolve("/nix/var/nix/profiles/system", false)
	require.NoError(t, err)
	require.Equal(t, "/real/profiles/system", got)
	got, err = r.resolve("/nix/var/nix", false) // last component not followed
	require.NoError(t, err)
	require.Equal(t, "/nix/var/nix", got)
	got, err = r.resolve("/nix/var/nix", true)
	require.NoError(t, err)
	require.Equal(t, "/real", got)
	got, err = r.resolve("/real/up/NIXOS", false) // ".." of "/" is "/"
	require.NoError(t, err)
	require.Equal(t, "/etc/NIXOS", got)
	got, err = r.resolve("/missing/a/../b", false)
	require.NoError(t, err)
	require.Equal(t, "/missing/b", got)
	h, err := r.host("/nix/var/nix/db")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "real/db"), h)
}
