package nixdb_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/fixture"
	"github.com/nixlive/nixlive/internal/boottest/storetest"
	"github.com/nixlive/nixlive/internal/nix/nixdb"
	"github.com/nixlive/nixlive/internal/nix/registration"
)

// TestFreshDatabaseMatchesSQLite loads the same registrations into two
// fresh roots, once through the direct writer and once through SQLite's
// own inserts, and compares every table, the schema and the settings; the
// C SQLite shell checks the direct writer's file (integrity_check), which
// walks every b-tree page and index entry. The sizes give b-trees of one
// page, two levels and three levels.
func TestFreshDatabaseMatchesSQLite(t *testing.T) {
	if _, err := exec.LookPath("sqlite3"); err != nil {
		t.Skip("needs the sqlite3 shell (Debian's sqlite3; make test installs it)")
	}
	for _, n := range []int{1, 9, 2500, 20000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			recs := fixture.Synthetic(n, 7)
			for i := range recs {
				if i%5 == 1 {
					recs[i].Deriver = fixture.FakePath(fmt.Sprintf("deriver-%d.drv", i))
				}
				if i%11 == 2 {
					recs[i].NarSize = 0 // stored as NULL
				}
			}
			// The longest store path names Nix allows, in the index too.
			if n > 1 {
				recs = append(recs, registration.Record{Path: fixture.FakePath(strings.Repeat("x", 211-33)), NarSize: 1})
			}
			reg := registration.Marshal(recs)
			load := func(direct bool) string {
				*nixdb.DirectWriter = direct
				defer func() { *nixdb.DirectWriter = true }()
				root := t.TempDir()
				_, err := (&nixdb.Store{Root: root, Now: fixedNow}).LoadDB(bytes.NewReader(reg))
				require.NoError(t, err)
				return filepath.Join(root, "nix/var/nix/db/db.sqlite")
			}
			ours, sqlites := load(true), load(false)

			out, err := exec.Command("sqlite3", ours, "pragma integrity_check").CombinedOutput()
			require.NoError(t, err, "%s", out)
			require.Equal(t, "ok", strings.TrimSpace(string(out)), "integrity_check")

			for _, q := range []string{
				"select type, name, tbl_name, sql from sqlite_master order by rowid",
				"select id, path, hash, registrationTime, deriver, narSize, ultimate, sigs, ca from ValidPaths order by id",
				"select referrer, reference from Refs order by referrer, reference",
				"select referrer, reference from Refs indexed by IndexReference order by reference, referrer",
				"select path, id from ValidPaths indexed by sqlite_autoindex_ValidPaths_1 order by path",
				"select name, seq from sqlite_sequence",
				"select count(*) from DerivationOutputs",
				"pragma journal_mode", "pragma page_size", "pragma encoding", "pragma auto_vacuum",
				"pragma user_version", "pragma freelist_count",
			} {
				require.Equal(t, rows(t, sqlites, q), rows(t, ours, q), q)
			}
		})
	}
}

func fixedNow() time.Time { return time.Unix(1700000000, 0) }

func rows(t *testing.T, file, query string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", file)
	require.NoError(t, err)
	defer db.Close()
	return storetest.QueryRows(t, db, query)
}

// FuzzFreshDatabase loads arbitrary registrations into fresh roots twice,
// through the direct writer and through SQLite's inserts: both refuse the
// same inputs, and for the others the files SQLite reads back hold the
// same rows, and the direct writer's passes integrity_check.
func FuzzFreshDatabase(f *testing.F) {
	f.Add(registration.Marshal(fixture.Synthetic(5, 3)))
	f.Add(registration.Marshal(fixture.Synthetic(300, 4)))
	one := fixture.Synthetic(1, 5)
	one[0].Deriver = fixture.FakePath("d.drv")
	f.Add(registration.Marshal(one))
	f.Fuzz(func(t *testing.T, input []byte) {
		load := func(direct bool) (string, error) {
			*nixdb.DirectWriter = direct
			defer func() { *nixdb.DirectWriter = true }()
			root := t.TempDir()
			_, err := (&nixdb.Store{Root: root, Now: fixedNow}).LoadDB(bytes.NewReader(input))
			return filepath.Join(root, "nix/var/nix/db/db.sqlite"), err
		}
		ours, errOurs := load(true)
		theirs, errTheirs := load(false)
		require.Equal(t, errTheirs == nil, errOurs == nil, "direct: %v; SQLite: %v", errOurs, errTheirs)
		if errOurs != nil {
			return
		}
		// Nothing to register makes no database, in both.
		_, statOurs := os.Stat(ours)
		_, statTheirs := os.Stat(theirs)
		require.Equal(t, statTheirs == nil, statOurs == nil)
		if statOurs != nil {
			return
		}
		require.Equal(t, []string{"ok"}, rows(t, ours, "pragma integrity_check"))
		for _, q := range []string{
			"select id, path, hash, registrationTime, deriver, narSize from ValidPaths order by id",
			"select referrer, reference from Refs order by referrer, reference",
			"select name, seq from sqlite_sequence",
		} {
			require.Equal(t, rows(t, theirs, q), rows(t, ours, q), q)
		}
	})
}
