package nixdb_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/internal/boottest/nixtest"
	"github.com/nixlive/nixlive/internal/boottest/storetest"
	"github.com/nixlive/nixlive/internal/nix/nixdb"
	"github.com/nixlive/nixlive/internal/nix/registration"
)

// TestLoadDBAgainstNix loads the same registration with nix-store
// --load-db and with LoadDB into two copies of a store, and compares what
// Nix reads back from both databases, and the databases themselves.
func TestLoadDBAgainstNix(t *testing.T) {
	s := storetest.MakeSource(t)
	theirs, ours, res := s.LoadBoth(t)
	require.Equal(t, nixdb.LoadResult{Paths: len(s.Paths), New: len(s.Paths), Created: true}, res)

	compareStores(t, theirs, ours)
	nixtest.Run(t, ours, "--verify", "--check-contents")

	// The database files: schema "10" with no newline, WAL mode, no
	// journal left behind.
	schema, err := os.ReadFile(filepath.Join(ours, "nix/var/nix/db/schema"))
	require.NoError(t, err)
	require.Equal(t, "10", string(schema))
	require.Equal(t, []string{"wal"}, storetest.QueryRows(t, storetest.OpenSQL(t, ours), "pragma journal_mode"))
	require.Equal(t, []string{"ok"}, storetest.QueryRows(t, storetest.OpenSQL(t, ours), "pragma integrity_check"), "the directly written file")
	require.Equal(t, fileNames(t, filepath.Join(theirs, "nix/var/nix/db")), fileNames(t, filepath.Join(ours, "nix/var/nix/db")))

	// Loading again changes nothing, for either.
	before := storetest.DBFiles(t, ours)
	res, err = (&nixdb.Store{Root: ours}).LoadDB(bytes.NewReader(s.Reg))
	require.NoError(t, err)
	require.Equal(t, nixdb.LoadResult{Paths: len(s.Paths)}, res)
	require.Equal(t, before, storetest.DBFiles(t, ours), "a second load rewrote the database")
	nixtest.RunInput(t, theirs, s.Reg, "--load-db")
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
	s := storetest.MakeSource(t)
	theirs, ours := s.Fresh(t), s.Fresh(t)
	nixtest.RunInput(t, theirs, s.Reg, "--load-db")
	dbDir := filepath.Join(ours, "nix/var/nix/db")
	require.NoError(t, os.MkdirAll(dbDir, 0o755))
	lock, err := os.OpenFile(filepath.Join(dbDir, "big-lock"), os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(t, err)
	defer lock.Close()
	require.NoError(t, unix.Flock(int(lock.Fd()), unix.LOCK_SH))
	res, err := (&nixdb.Store{Root: ours}).LoadDB(bytes.NewReader(s.Reg))
	require.NoError(t, err)
	require.Equal(t, nixdb.LoadResult{Paths: len(s.Paths), New: len(s.Paths), Created: true}, res)
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
	td, od := storetest.OpenSQL(t, theirs), storetest.OpenSQL(t, ours)
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
		require.Equal(t, storetest.QueryRows(t, td, q), storetest.QueryRows(t, od, q), q)
	}
	require.NotEmpty(t, storetest.QueryRows(t, od, "select * from DerivationOutputs"))
	// New paths are registered "now".
	for _, row := range storetest.QueryRows(t, od, "select registrationTime from ValidPaths") {
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
	s := storetest.MakeSource(t)
	recs, err := registration.Parse(bytes.NewReader(s.Reg), "")
	require.NoError(t, err)
	// A store where the first paths are valid already (Nix registered
	// them, with registration times in the past)...
	base := nixtest.NewStore(t)
	nixtest.CopyStorePaths(t, s.Dir, base, []string{"/nix"})
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
		_, err = (&nixdb.Store{Root: ours}).LoadDB(bytes.NewReader(input))
		require.NoError(t, err)
		compareStores(t, theirs, ours)
		td, od := storetest.OpenSQL(t, theirs), storetest.OpenSQL(t, ours)
		// Kept registration times of the old paths.
		q := "select path, registrationTime from ValidPaths where path != '" + extra.Path + "' order by id"
		require.Equal(t, storetest.QueryRows(t, td, q), storetest.QueryRows(t, od, q))
	}
}
