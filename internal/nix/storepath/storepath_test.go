package storepath_test

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nix-community/go-nix/pkg/nixbase32"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/nixtest"
	"github.com/nixlive/nixlive/internal/nix/nar"
	"github.com/nixlive/nixlive/internal/nix/storepath"
)

const h32 = "xp0dpr9yz5h0fk5c5lpj7zzqjbdh3w8c"

func TestParse(t *testing.T) {
	p, err := storepath.Parse("", "/nix/store/"+h32+"-hello-2.12.1")
	require.NoError(t, err)
	require.Equal(t, storepath.StorePath{Hash: h32, Name: "hello-2.12.1"}, p)
	require.Equal(t, "/nix/store/"+h32+"-hello-2.12.1", p.Abs(""))
	require.Equal(t, "/gnu/store/"+h32+"-hello-2.12.1", p.Abs("/gnu/store"))

	p, err = storepath.Parse("/gnu/store", "/gnu/store/"+h32+"-A+Z_.?=-9")
	require.NoError(t, err)
	require.Equal(t, "A+Z_.?=-9", p.Name)

	_, err = storepath.Parse("", "/nix/store/"+h32+"-"+strings.Repeat("n", 211))
	require.NoError(t, err)
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ storeDir, path, msg string }{
		{"", "/nix/store/" + h32 + "-a b", `name contains ' '`},
		{"", "/nix/store/" + h32 + "-a/b", "not a top-level store path"},
		{"", "/nix/store/" + h32 + "-a/", "not a top-level store path"},
		{"", "/nix/store/" + h32 + "-", "too short"},
		{"", "/nix/store/" + h32 + "-.x", `starts with "."`},
		{"", "/nix/store/" + h32 + "-" + strings.Repeat("n", 212), "more than 211"},
		{"", "/nix/store/" + h32 + "_x", `no "-" after`},
		{"", "/nix/store/" + strings.Replace(h32, "x", "e", 1) + "-x", `'e' is not in the nix32 alphabet`},
		{"", "/nix/store/" + strings.ToUpper(h32) + "-x", `'X' is not in the nix32 alphabet`},
		{"", "/nix/store//" + h32 + "-x", "not a top-level"},
		{"", "/nix/stor/" + h32 + "-x", "not in the store /nix/store"},
		{"", "nix/store/" + h32 + "-x", "not in the store"},
		{"/nix/store/", "/nix/store/" + h32 + "-x", "not a canonical"},
		{"nix", "nix/" + h32 + "-x", "not an absolute path"},
		{"/", "/" + h32 + "-x", "not a canonical"},
	} {
		_, err := storepath.Parse(tc.storeDir, tc.path)
		require.ErrorContains(t, err, tc.msg, tc.path)
		require.ErrorContains(t, err, "storepath: ", tc.path)
	}
}

// Vectors measured with Nix 2.8 (nix-store --add, builtins.toFile).
func TestMakeStorePathVectors(t *testing.T) {
	var hello [32]byte
	_, err := nixbase32.Decode(hello[:], []byte("04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw"))
	require.NoError(t, err)
	p, err := storepath.SourcePath("f", hello, "")
	require.NoError(t, err)
	require.Equal(t, "/nix/store/xp0dpr9yz5h0fk5c5lpj7zzqjbdh3w8c-f", p)

	p, err = storepath.TextPath("a", sha256.Sum256([]byte("plain")), nil, "")
	require.NoError(t, err)
	require.Equal(t, "/nix/store/kz41pqxnwzfqn8c984809r0q753r7kav-a", p)

	ref := "/nix/store/xp0dpr9yz5h0fk5c5lpj7zzqjbdh3w8c-f"
	p, err = storepath.TextPath("b", sha256.Sum256([]byte("ref "+ref)), []string{ref}, "")
	require.NoError(t, err)
	require.Equal(t, "/nix/store/l9sv62jdygp1s996iglij71wl7s9fnrx-b", p)
}

func TestMakeStorePathErrors(t *testing.T) {
	var h [32]byte
	_, err := storepath.MakeStorePath("source", h[:20], "x", nil, false, "")
	require.ErrorContains(t, err, "20 bytes")
	_, err = storepath.MakeStorePath("source", h[:], ".x", nil, false, "")
	require.ErrorContains(t, err, `starts with "."`)
	_, err = storepath.MakeStorePath("output:out", h[:], "x", nil, true, "")
	require.ErrorContains(t, err, "cannot have references")
	_, err = storepath.MakeStorePath("text", h[:], "x", []string{"/nix/store/bad"}, false, "")
	require.ErrorContains(t, err, "/nix/store/bad")
	// Reference order does not matter.
	a := "/nix/store/" + strings.Repeat("a", 32) + "-a"
	b := "/nix/store/" + strings.Repeat("b", 32) + "-b"
	p1, err := storepath.MakeStorePath("text", h[:], "x", []string{a, b}, false, "")
	require.NoError(t, err)
	p2, err := storepath.MakeStorePath("text", h[:], "x", []string{b, a, a}, false, "")
	require.NoError(t, err)
	require.Equal(t, p1, p2)
}

// TestSourcePathAgainstNix adds a file, an executable and a directory with
// a symlink with nix-store --add and recomputes each path from its NAR.
func TestSourcePathAgainstNix(t *testing.T) {
	nixtest.HaveNix(t)
	src := t.TempDir()
	file := filepath.Join(src, "file.txt")
	require.NoError(t, os.WriteFile(file, []byte("some text\n"), 0o644))
	exe := filepath.Join(src, "tool")
	require.NoError(t, os.WriteFile(exe, []byte("#!/bin/sh\nexit 0\n"), 0o755))
	dir := filepath.Join(src, "tree")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sub", "data"), []byte{0, 1, 2}, 0o644))
	require.NoError(t, os.Symlink("sub/data", filepath.Join(dir, "link")))
	link := filepath.Join(src, "lonelink")
	require.NoError(t, os.Symlink("/etc/hostname", link))

	store := nixtest.NewStore(t)
	root := storepath.Root{Dir: store}
	for _, p := range []string{file, exe, dir, link} {
		got := nixtest.Add(t, store, p)
		h, _, err := nar.Hash(root.HostPath(got))
		require.NoError(t, err)
		want, err := storepath.SourcePath(filepath.Base(p), h, "")
		require.NoError(t, err)
		require.Equal(t, want, got, p)
	}
}

// TestTextPathAgainstNix checks TextPath (and with it the reference part
// of the fingerprint) against builtins.toFile.
func TestTextPathAgainstNix(t *testing.T) {
	nixtest.HaveNix(t)
	store := nixtest.NewStore(t)
	a := nixtest.ToFile(t, store, "a", "alpha")
	b := nixtest.ToFile(t, store, "b", "beta")
	text := "uses " + b + " and " + a + "\n"
	c := nixtest.ToFile(t, store, "c", text)
	want, err := storepath.TextPath("c", sha256.Sum256([]byte(text)), []string{a, b}, "")
	require.NoError(t, err)
	require.Equal(t, want, c)
	require.ElementsMatch(t, []string{a, b}, nixtest.Lines(nixtest.Run(t, store, "-q", "--references", c)))
}

func TestRoot(t *testing.T) {
	dir := t.TempDir()
	r := storepath.Root{Dir: dir}
	require.Equal(t, dir+"/nix/store/"+h32+"-x", r.HostPath("/nix/store/"+h32+"-x"))
	require.Equal(t, "/nix/store/"+h32+"-x", storepath.Root{}.HostPath("/nix/store/"+h32+"-x"))
	require.Equal(t, "/nix/store/"+h32+"-x", storepath.Root{Dir: "/"}.HostPath("/nix/store/"+h32+"-x"))

	_, err := r.List()
	require.ErrorContains(t, err, dir+"/nix/store")

	store := filepath.Join(dir, "nix/store")
	require.NoError(t, os.MkdirAll(filepath.Join(store, ".links"), 0o755))
	for _, n := range []string{"nix-path-registration", h32 + "-b", h32 + "-b.lock", h32 + "-b.x.chroot", strings.Repeat("a", 32) + "-a.lock", "zz"} {
		require.NoError(t, os.WriteFile(filepath.Join(store, n), nil, 0o644))
	}
	require.NoError(t, os.Mkdir(filepath.Join(store, strings.Repeat("0", 32)+"-d"), 0o755))
	got, err := r.List()
	require.NoError(t, err)
	require.Equal(t, []string{
		"/nix/store/" + strings.Repeat("0", 32) + "-d",
		"/nix/store/" + strings.Repeat("a", 32) + "-a.lock", // no a: a real path named *.lock
		"/nix/store/" + h32 + "-b",
	}, got)

	// Another logical store dir maps the same way.
	g := storepath.Root{Dir: dir, StoreDir: "/gnu/store"}
	require.Equal(t, dir+"/gnu/store/"+h32+"-x", g.HostPath("/gnu/store/"+h32+"-x"))
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	r := storepath.Root{Dir: dir}
	sp := "/nix/store/" + h32 + "-pkg"
	host := t.TempDir()
	link := filepath.Join(host, "result")
	require.NoError(t, os.Symlink(sp, link))
	link2 := filepath.Join(host, "result2")
	require.NoError(t, os.Symlink("result", link2))
	inner := filepath.Join(host, "sh")
	require.NoError(t, os.Symlink(sp+"/bin/sh", inner))
	loop := filepath.Join(host, "loop")
	require.NoError(t, os.Symlink("loop", loop))
	plain := filepath.Join(host, "plain")
	require.NoError(t, os.WriteFile(plain, nil, 0o644))
	dangling := filepath.Join(host, "dangling")
	require.NoError(t, os.Symlink("/no/such/thing", dangling))

	want := storepath.StorePath{Hash: h32, Name: "pkg"}
	for _, p := range []string{sp, sp + "/bin/sh", link, link2, inner, r.HostPath(sp), r.HostPath(sp) + "/lib"} {
		got, err := r.Resolve(p)
		require.NoError(t, err, p)
		require.Equal(t, want, got, p)
	}
	for p, msg := range map[string]string{
		plain:                      plain + ": not in the store /nix/store",
		dangling:                   "/no/such/thing does not exist",
		loop:                       "too many levels",
		"/nix/store/" + h32:        "too short",
		"/nix/store":               "not in the store",
		"/nix/store/" + h32 + "-ä": "name contains",
	} {
		_, err := r.Resolve(p)
		require.ErrorContains(t, err, msg, p)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("/nix/store/" + h32 + "-hello")
	f.Add("/nix/store/" + h32 + "-.hidden")
	f.Add("/nix/store/" + h32 + "-a/b")
	f.Add("/nix/store/" + h32)
	f.Add("/nix/store/e" + h32[1:] + "-x")
	f.Add("/nix/store/" + h32 + "-" + strings.Repeat("z", 212))
	f.Fuzz(func(t *testing.T, s string) {
		p, err := storepath.Parse("", s)
		if err != nil {
			return
		}
		// Whatever parses is canonical: printing gives the input back,
		// and the parts pass their own checks.
		require.Equal(t, s, p.Abs(""))
		require.NoError(t, storepath.CheckHash(p.Hash))
		require.NoError(t, storepath.CheckName(p.Name))
		_, err = nixbase32.DecodeString(p.Hash)
		require.NoError(t, err)
	})
}

const sp1 = "/nix/store/i1rngfb9rq4fk4vdafz5qalx07flbs9g-f1"

// TestResolveStorePath resolves inside a root (ResolveInRoot), as
// postboot's set-profile does.
func TestResolveStorePath(t *testing.T) {
	dir := t.TempDir()
	r := storepath.Root{Dir: dir}
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
		got, err := r.ResolveInRoot(p)
		require.NoError(t, err, p)
		require.Equal(t, sp1, got.Abs(""), p)
	}
	for _, p := range []string{"/run/dangling", "/run/loop", "/etc", "/run/links", "/nowhere", "run/current-system"} {
		_, err := r.ResolveInRoot(p)
		require.Error(t, err, p)
	}
	// The store path itself need not exist in the root.
	_, err := os.Stat(filepath.Join(dir, sp1))
	require.True(t, os.IsNotExist(err))
}
