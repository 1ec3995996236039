// Package storetest holds what the tests of nixdb, profile and postboot
// share: a store made by real Nix (through nixtest, always with --store
// DIR) with its registration, and readers of database rows and directory
// trees to compare our results with Nix's. It is for tests only, and does
// not run Nix itself.
package storetest

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/nixlive/nixlive/internal/boottest/fixture"
	"github.com/nixlive/nixlive/internal/boottest/nixtest"
	"github.com/nixlive/nixlive/internal/nix/nixdb"
	"github.com/nixlive/nixlive/internal/nix/registration"
)

// HaveNixEnv skips the test unless Nix and nix-env are installed.
func HaveNixEnv(t testing.TB) {
	t.Helper()
	nixtest.HaveNix(t)
	if _, err := exec.LookPath("nix-env"); err != nil {
		t.Skip("nix-env not found: install nix-bin (make test installs it)")
	}
}

// Source is a store made by real Nix, and its registration.
type Source struct {
	Dir   string   // the store root
	Paths []string // every path, sorted
	Reg   []byte   // closureInfo-style registration of all of them
	Sys1  string   // two paths to use as systems
	Sys2  string
	Drv   string // a derivation
}

// MakeSource fills a store with nix-store --add paths, builtins.toFile
// paths that refer to them and to each other, a derivation (.drv, so
// that DerivationOutputs gets a row) and a hand-made path that refers to
// itself; its registration is written in closureInfo's format from
// Nix's --dump-db.
func MakeSource(t *testing.T) Source {
	t.Helper()
	HaveNixEnv(t)
	s := Source{Dir: nixtest.NewStore(t)}
	src := t.TempDir()
	file := filepath.Join(src, "hello.txt")
	require.NoError(t, os.WriteFile(file, []byte("hello\n"), 0o644))
	tree := filepath.Join(src, "tree")
	require.NoError(t, os.MkdirAll(filepath.Join(tree, "bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(tree, "bin", "tool"), []byte("#!/bin/sh\necho tool\n"), 0o755))
	require.NoError(t, os.Symlink("bin/tool", filepath.Join(tree, "link")))
	fileP := nixtest.Add(t, s.Dir, file)
	treeP := nixtest.Add(t, s.Dir, tree)
	c1 := nixtest.ToFile(t, s.Dir, "c1", "first "+fileP+"\n")
	c2 := nixtest.ToFile(t, s.Dir, "c2", "then "+c1+" and "+treeP+"\n")
	s.Sys1 = nixtest.ToFile(t, s.Dir, "system-one", "sys "+c2)
	s.Sys2 = nixtest.ToFile(t, s.Dir, "system-two", "sys "+c1)
	out, _, err := nixtest.Exec(t, s.Dir, nil, "nix-instantiate", "--expr",
		`derivation { name = "thing"; system = "x86_64-linux"; builder = "/bin/sh"; outputs = [ "out" "dev" ]; }`)
	require.NoError(t, err)
	s.Drv = strings.TrimSpace(string(out))
	require.True(t, strings.HasSuffix(s.Drv, ".drv"), s.Drv)

	recs, err := registration.Parse(strings.NewReader(nixtest.Run(t, s.Dir, "--dump-db")), "")
	require.NoError(t, err)

	// The self-referring path: a real NAR hash of files that mention
	// the path itself.
	self := fixture.FakePath("selfref")
	host := filepath.Join(s.Dir, self)
	require.NoError(t, os.MkdirAll(filepath.Join(host, "bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(host, "bin", "me"), []byte("#!/bin/sh\nexec "+self+"/bin/me "+c1+"\n"), 0o755))
	selfRec, err := registration.Parse(strings.NewReader(fmt.Sprintf("%s\nsha256:%s\n%d\n\n2\n%s\n%s\n",
		self, nixtest.NarHash(t, host), nixtest.NarSize(t, host), min(self, c1), max(self, c1))), "")
	require.NoError(t, err)
	recs = append(recs, selfRec...)
	s.Reg = registration.Marshal(recs)
	for _, r := range recs {
		s.Paths = append(s.Paths, r.Path)
	}
	slices.Sort(s.Paths)
	return s
}

// Fresh returns an empty store root holding the files of the source's
// paths (no database), as the live CD's store is before load-db.
func (s Source) Fresh(t *testing.T) string {
	t.Helper()
	dir := nixtest.NewStore(t)
	nixtest.CopyStorePaths(t, s.Dir, dir, s.Paths)
	return dir
}

// LoadBoth returns two fresh copies of the source's store, one loaded by
// nix-store --load-db and one by LoadDB, with LoadDB's result.
func (s Source) LoadBoth(t *testing.T) (theirs, ours string, res nixdb.LoadResult) {
	t.Helper()
	theirs, ours = s.Fresh(t), s.Fresh(t)
	nixtest.RunInput(t, theirs, s.Reg, "--load-db")
	res, err := (&nixdb.Store{Root: ours}).LoadDB(bytes.NewReader(s.Reg))
	require.NoError(t, err)
	return theirs, ours, res
}

// NixEnv runs nix-env on the store and returns its output.
func NixEnv(t *testing.T, store string, args ...string) string {
	t.Helper()
	out, _, err := nixtest.Exec(t, store, nil, "nix-env", args...)
	require.NoError(t, err)
	return string(out)
}

// DBFiles returns the SHA-256 of every file in root's database
// directory, by name.
func DBFiles(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	dir := filepath.Join(root, "nix/var/nix/db")
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return out
	}
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		h := sha256.Sum256(b)
		out[e.Name()] = hex.EncodeToString(h[:])
	}
	return out
}

// OpenSQL opens root's database with modernc's SQLite, read-only.
func OpenSQL(t testing.TB, root string) *sql.DB {
	t.Helper()
	u := url.URL{Scheme: "file", Path: filepath.Join(root, "nix/var/nix/db/db.sqlite"), RawQuery: "mode=ro"}
	db, err := sql.Open("sqlite", u.String())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// QueryRows returns the rows of query as strings, one per row, columns
// separated by "|", NULL as "NULL".
func QueryRows(t testing.TB, db *sql.DB, query string) []string {
	t.Helper()
	rows, err := db.Query(query)
	require.NoError(t, err)
	defer rows.Close()
	cols, err := rows.Columns()
	require.NoError(t, err)
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		require.NoError(t, rows.Scan(ptrs...))
		var parts []string
		for _, v := range vals {
			switch v := v.(type) {
			case nil:
				parts = append(parts, "NULL")
			case []byte:
				parts = append(parts, string(v))
			default:
				parts = append(parts, fmt.Sprint(v))
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	require.NoError(t, rows.Err())
	return out
}

// TreeEntry is one file of a directory tree, for comparing trees.
type TreeEntry struct {
	Path   string // relative
	Type   string // dir, file, link
	Perm   fs.FileMode
	Size   int64  // files
	Target string // links
}

// ListTree lists dir recursively, sorted.
func ListTree(t testing.TB, dir string) []TreeEntry {
	t.Helper()
	var out []TreeEntry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		e := TreeEntry{Path: rel, Perm: fi.Mode().Perm()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Type = "link"
			e.Perm = 0
			e.Target, err = os.Readlink(p)
			if err != nil {
				return err
			}
		case fi.IsDir():
			e.Type = "dir"
		default:
			e.Type = "file"
			e.Size = fi.Size()
		}
		out = append(out, e)
		return nil
	})
	require.NoError(t, err)
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
