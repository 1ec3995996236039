package postboot_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/internal/boottest/nixtest"
	"github.com/nixlive/nixlive/internal/nix/registration"
	"github.com/nixlive/nixlive/postboot"
)

func haveNixEnv(t testing.TB) {
	t.Helper()
	nixtest.HaveNix(t)
	if _, err := exec.LookPath("nix-env"); err != nil {
		t.Skip("nix-env not found: install nix-bin (make test installs it)")
	}
}

// source is a store made by real Nix, and its registration.
type source struct {
	dir   string   // the store root
	paths []string // every path, sorted
	reg   []byte   // closureInfo-style registration of all of them
	sys1  string   // two paths to use as systems
	sys2  string
	drv   string // a derivation
}

// makeSource fills a store with nix-store --add paths, builtins.toFile
// paths that refer to them and to each other, a derivation (.drv, so
// that DerivationOutputs gets a row) and a hand-made path that refers to
// itself; its registration is written in closureInfo's format from
// Nix's --dump-db.
func makeSource(t *testing.T) source {
	t.Helper()
	haveNixEnv(t)
	s := source{dir: nixtest.NewStore(t)}
	src := t.TempDir()
	file := filepath.Join(src, "hello.txt")
	require.NoError(t, os.WriteFile(file, []byte("hello\n"), 0o644))
	tree := filepath.Join(src, "tree")
	require.NoError(t, os.MkdirAll(filepath.Join(tree, "bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(tree, "bin", "tool"), []byte("#!/bin/sh\necho tool\n"), 0o755))
	require.NoError(t, os.Symlink("bin/tool", filepath.Join(tree, "link")))
	fileP := nixtest.Add(t, s.dir, file)
	treeP := nixtest.Add(t, s.dir, tree)
	c1 := nixtest.ToFile(t, s.dir, "c1", "first "+fileP+"\n")
	c2 := nixtest.ToFile(t, s.dir, "c2", "then "+c1+" and "+treeP+"\n")
	s.sys1 = nixtest.ToFile(t, s.dir, "system-one", "sys "+c2)
	s.sys2 = nixtest.ToFile(t, s.dir, "system-two", "sys "+c1)
	out, _, err := nixtest.Exec(t, s.dir, nil, "nix-instantiate", "--expr",
		`derivation { name = "thing"; system = "x86_64-linux"; builder = "/bin/sh"; outputs = [ "out" "dev" ]; }`)
	require.NoError(t, err)
	s.drv = strings.TrimSpace(string(out))
	require.True(t, strings.HasSuffix(s.drv, ".drv"), s.drv)

	recs, err := registration.Parse(strings.NewReader(nixtest.Run(t, s.dir, "--dump-db")), "")
	require.NoError(t, err)

	// The self-referring path: a real NAR hash of files that mention
	// the path itself.
	self := fakePath("selfref")
	host := filepath.Join(s.dir, self)
	require.NoError(t, os.MkdirAll(filepath.Join(host, "bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(host, "bin", "me"), []byte("#!/bin/sh\nexec "+self+"/bin/me "+c1+"\n"), 0o755))
	selfRec, err := registration.Parse(strings.NewReader(fmt.Sprintf("%s\nsha256:%s\n%d\n\n2\n%s\n%s\n",
		self, nixtest.NarHash(t, host), nixtest.NarSize(t, host), min(self, c1), max(self, c1))), "")
	require.NoError(t, err)
	recs = append(recs, selfRec...)
	s.reg = registration.Marshal(recs)
	for _, r := range recs {
		s.paths = append(s.paths, r.Path)
	}
	slices.Sort(s.paths)
	return s
}

// fresh returns an empty store root holding the files of the source's
// paths (no database), as the live CD's store is before load-db.
func (s source) fresh(t *testing.T) string {
	t.Helper()
	dir := nixtest.NewStore(t)
	nixtest.CopyStorePaths(t, s.dir, dir, s.paths)
	return dir
}

// loadBoth returns two fresh copies of the source's store, one loaded by
// nix-store --load-db and one by LoadDB, with LoadDB's result.
func (s source) loadBoth(t *testing.T) (theirs, ours string, res postboot.LoadResult) {
	t.Helper()
	theirs, ours = s.fresh(t), s.fresh(t)
	nixtest.RunInput(t, theirs, s.reg, "--load-db")
	res, err := (&postboot.Store{Root: ours}).LoadDB(bytes.NewReader(s.reg))
	require.NoError(t, err)
	return theirs, ours, res
}

func nixEnv(t *testing.T, store string, args ...string) string {
	t.Helper()
	out, _, err := nixtest.Exec(t, store, nil, "nix-env", args...)
	require.NoError(t, err)
	return string(out)
}

// TestLoadDBAgainstNix loads the same registration with nix-store
// --load-db and with LoadDB into two copies of a store, and compares what
// Nix reads back from both databases, and the databases themselves.
func TestLoadDBAgainstNix(t *testing.T) {
	s := makeSource(t)
	theirs, ours, res := s.loadBoth(t)
	require.Equal(t, postboot.LoadResult{Paths: len(s.paths), New: len(s.paths), Created: true}, res)

	compareStores(t, theirs, ours)
	nixtest.Run(t, ours, "--verify", "--check-contents")

	// The database files: schema "10" with no newline, WAL mode, no
	// journal left behind.
	schema, err := os.ReadFile(filepath.Join(ours, "nix/var/nix/db/schema"))
	require.NoError(t, err)
	require.Equal(t, "10", string(schema))
	require.Equal(t, []string{"wal"}, queryRows(t, openSQL(t, ours), "pragma journal_mode"))
	require.Equal(t, []string{"ok"}, queryRows(t, openSQL(t, ours), "pragma integrity_check"), "the directly written file")
	require.Equal(t, fileNames(t, filepath.Join(theirs, "nix/var/nix/db")), fileNames(t, filepath.Join(ours, "nix/var/nix/db")))

	// Loading again changes nothing, for either.
	before := dbFiles(t, ours)
	res, err = (&postboot.Store{Root: ours}).LoadDB(bytes.NewReader(s.reg))
	require.NoError(t, err)
	require.Equal(t, postboot.LoadResult{Paths: len(s.paths)}, res)
	require.Equal(t, before, dbFiles(t, ours), "a second load rewrote the database")
	nixtest.RunInput(t, theirs, s.reg, "--load-db")
	compareStores(t, theirs, ours)

	// Nix goes on from our database as from its own: a path it adds
	// gets the next id in both.
	file := filepath.Join(t.TempDir(), "later.txt")
	require.NoError(t, os.WriteFile(file, []byte("added later\n"), 0o644))
	require.Equal(t, nixtest.Add(t, theirs, file), nixtest.Add(t, ours, file))
	compareStores(t, theirs, ours)
	nixtest.Run(t, ours, "--verify", "--check-contents")
}

// TestLoadDBSharedAgainstNix is TestLoadDBAgainstNix with another
// process holding Nix's big lock (as a running Nix would), so that the
// database is created in place rather than aside.
func TestLoadDBSharedAgainstNix(t *testing.T) {
	s := makeSource(t)
	theirs, ours := s.fresh(t), s.fresh(t)
	nixtest.RunInput(t, theirs, s.reg, "--load-db")
	dbDir := filepath.Join(ours, "nix/var/nix/db")
	require.NoError(t, os.MkdirAll(dbDir, 0o755))
	lock, err := os.OpenFile(filepath.Join(dbDir, "big-lock"), os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(t, err)
	defer lock.Close()
	require.NoError(t, unix.Flock(int(lock.Fd()), unix.LOCK_SH))
	res, err := (&postboot.Store{Root: ours}).LoadDB(bytes.NewReader(s.reg))
	require.NoError(t, err)
	require.Equal(t, postboot.LoadResult{Paths: len(s.paths), New: len(s.paths), Created: true}, res)
	compareStores(t, theirs, ours)
	nixtest.Run(t, ours, "--verify", "--check-contents")
	require.Equal(t, fileNames(t, filepath.Join(theirs, "nix/var/nix/db")), fileNames(t, dbDir))
}

func fileNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// compareStores compares what Nix reads from two stores' databases and
// the databases' contents (registration times aside).
func compareStores(t *testing.T, theirs, ours string) {
	t.Helper()
	dump := nixtest.Run(t, theirs, "--dump-db")
	require.Equal(t, dump, nixtest.Run(t, ours, "--dump-db"))
	recs, err := registration.Parse(strings.NewReader(dump), "")
	require.NoError(t, err)
	for _, r := range recs {
		p := r.Path
		for _, q := range []string{"--references", "--referrers", "--requisites", "--deriver", "--hash", "--size"} {
			require.Equal(t, nixtest.Run(t, theirs, "-q", q, p), nixtest.Run(t, ours, "-q", q, p), "-q %s %s", q, p)
		}
	}
	td, od := openSQL(t, theirs), openSQL(t, ours)
	for _, q := range []string{
		"select type, name, tbl_name, sql from sqlite_master order by rowid",
		"select id, path, hash, deriver, narSize, ultimate, sigs, ca from ValidPaths order by id",
		"select referrer, reference from Refs order by referrer, reference",
		"select drv, id, path from DerivationOutputs order by drv, id",
		"select name, seq from sqlite_sequence",
		"pragma journal_mode",
		"pragma page_size",
		"pragma encoding",
		"pragma auto_vacuum",
		"pragma user_version",
	} {
		require.Equal(t, queryRows(t, td, q), queryRows(t, od, q), q)
	}
	require.NotEmpty(t, queryRows(t, od, "select * from DerivationOutputs"))
	// New paths are registered "now".
	for _, row := range queryRows(t, od, "select registrationTime from ValidPaths") {
		var ts int64
		_, err := fmt.Sscan(row, &ts)
		require.NoError(t, err)
		require.InDelta(t, time.Now().Unix(), ts, 600)
	}
}

// TestLoadDBOverExistingAgainstNix loads into a store whose database Nix
// made (paths added with nix-store --add carry ca, and would keep it if
// load-db did not clear it), a registration with duplicates that changes
// a size and a hash, with both Nix and us, and compares every column.
func TestLoadDBOverExistingAgainstNix(t *testing.T) {
	s := makeSource(t)
	recs, err := registration.Parse(bytes.NewReader(s.reg), "")
	require.NoError(t, err)
	// A store where the first paths are valid already (Nix registered
	// them, with registration times in the past)...
	base := nixtest.NewStore(t)
	nixtest.CopyStorePaths(t, s.dir, base, []string{"/nix"})
	// ... a registration that changes one path's size, another's hash,
	// gives one twice (the last wins) and adds a new path referring to
	// an old one.
	changed := slices.Clone(recs)
	changed[0].NarSize += 8
	changed[1].NarHash[0] ^= 1
	dup := changed[2]
	dup.NarSize = 1
	changed = append([]registration.Record{dup}, changed...)
	extra := registration.Record{Path: fakePath("extra"), NarSize: 0, References: []string{recs[0].Path}}
	changed = append(changed, extra)
	var reg bytes.Buffer
	for _, r := range changed { // Marshal would sort, and the order of duplicates matters
		reg.Write(registration.Marshal([]registration.Record{r}))
	}
	// Only the new record and one old one, the old one referring to
	// something only the database knows.
	partial := registration.Marshal([]registration.Record{extra, recs[len(recs)-2]})

	for _, input := range [][]byte{reg.Bytes(), partial} {
		theirs, ours := nixtest.NewStore(t), nixtest.NewStore(t)
		nixtest.CopyStorePaths(t, base, theirs, []string{"/nix"})
		nixtest.CopyStorePaths(t, base, ours, []string{"/nix"})
		nixtest.RunInput(t, theirs, input, "--load-db")
		_, err = (&postboot.Store{Root: ours}).LoadDB(bytes.NewReader(input))
		require.NoError(t, err)
		compareStores(t, theirs, ours)
		td, od := openSQL(t, theirs), openSQL(t, ours)
		// Kept registration times of the old paths.
		q := "select path, registrationTime from ValidPaths where path != '" + extra.Path + "' order by id"
		require.Equal(t, queryRows(t, td, q), queryRows(t, od, q))
	}
}

// TestSetProfileAgainstNix sets the system profile with nix-env and with
// SetProfile in two stores and compares the trees they leave, step by
// step: first generation, the same system again, another system, a
// rollback (by nix-env, in both) and the newest system again.
func TestSetProfileAgainstNix(t *testing.T) {
	s := makeSource(t)
	theirs, ours, _ := s.loadBoth(t)

	theirProfile := filepath.Join(theirs, postboot.DefaultProfile)
	setCurrent := func(target string) {
		// The live CD's /run/current-system, a link inside our root.
		link := filepath.Join(ours, "run/current-system")
		require.NoError(t, os.MkdirAll(filepath.Dir(link), 0o755))
		os.Remove(link)
		require.NoError(t, os.Symlink(target, link))
	}
	step := func(name, target string, wantGen int, wantNew bool) {
		t.Helper()
		nixEnv(t, theirs, "-p", theirProfile, "--set", target)
		setCurrent(target)
		res, err := (&postboot.Store{Root: ours}).SetProfile(postboot.DefaultProfile, postboot.DefaultSystem)
		require.NoError(t, err, name)
		require.Equal(t, target, res.StorePath, name)
		require.Equal(t, wantGen, res.Generation, name)
		require.Equal(t, wantNew, res.NewGeneration, name)
		require.Equal(t, fmt.Sprintf("%s-%d-link", postboot.DefaultProfile, wantGen), res.Link, name)
		require.Equal(t, normalTree(t, theirs), normalTree(t, ours), name)
		// Nix reads our profile.
		require.Equal(t,
			listGenerations(t, theirs, theirProfile),
			listGenerations(t, ours, filepath.Join(ours, postboot.DefaultProfile)), name)
	}
	step("first", s.sys1, 1, true)
	step("same again", s.sys1, 1, false)
	step("another", s.sys2, 2, true)
	for _, dir := range []string{theirs, ours} {
		nixEnv(t, dir, "-p", filepath.Join(dir, postboot.DefaultProfile), "--rollback")
	}
	require.Equal(t, normalTree(t, theirs), normalTree(t, ours))
	step("newest after a rollback", s.sys2, 2, false)
	step("back to the first", s.sys1, 3, true)
	require.Contains(t, listGenerations(t, ours, filepath.Join(ours, postboot.DefaultProfile)), "   3   ")

	// A store path given directly, and a path below one.
	res, err := (&postboot.Store{Root: ours}).SetProfile(postboot.DefaultProfile, s.sys2+"/sub/dir")
	require.NoError(t, err)
	require.Equal(t, 4, res.Generation)

	// A path that is not valid is refused, and changes nothing.
	before := listTree(t, filepath.Join(ours, "nix/var"))
	_, err = (&postboot.Store{Root: ours}).SetProfile(postboot.DefaultProfile, fakePath("nothere"))
	require.ErrorContains(t, err, "is not valid")
	require.Equal(t, before, listTree(t, filepath.Join(ours, "nix/var")))
}

func listGenerations(t *testing.T, store, profile string) string {
	t.Helper()
	out := nixEnv(t, store, "-p", profile, "--list-generations")
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
func normalTree(t *testing.T, root string) []treeEntry {
	t.Helper()
	var out []treeEntry
	for _, e := range listTree(t, filepath.Join(root, "nix/var/nix")) {
		if e.Type == "link" {
			e.Target = strings.TrimPrefix(e.Target, root)
			if filepath.Dir(e.Path) == "gcroots/auto" {
				name := filepath.Base(e.Path)
				require.Contains(t, []string{postboot.GCRootName(e.Target), postboot.GCRootName(root + e.Target)}, name, e.Path)
				e.Path = "gcroots/auto/<root of " + e.Target + ">"
			}
		}
		if filepath.Dir(e.Path) == "db" && e.Type == "file" && e.Path != "db/schema" {
			e.Size = 0
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b treeEntry) int { return strings.Compare(a.Path, b.Path) })
	return out
}
