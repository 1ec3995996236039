package nixdb

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"

	"github.com/nixlive/nixlive/internal/nix/nixroot"
	"github.com/nixlive/nixlive/internal/sqlitefile"
)

// freshName is where buildFresh builds a new database before renaming it
// to db.sqlite.
const freshName = "db.sqlite.postboot-new"

// directWriter selects freshDatabase for new databases; tests turn it off
// to compare with the database SQLite itself builds.
var directWriter = true

// buildFresh writes a new database with entries, all new, when there is
// none and the big lock is ours alone: in a file beside db.sqlite, with
// neither journal nor syncs (nobody else can see it), its indexes built
// after the rows went in, then switched to WAL, synced and renamed into
// place. The result reads exactly like a database Nix made: same schema
// text, same ids (1 to n in path order), same rows. Killed before the
// rename, it leaves no database (and a stray file the next run removes).
func buildFresh(r nixroot.Root, dbHost string, entries []*entry, now int64) (err error) {
	tmp := path.Join(dbHost, freshName)
	dbFile := path.Join(dbHost, "db.sqlite")
	for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
		if err := os.Remove(tmp + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	for i, e := range entries {
		e.id = int64(i + 1)
	}
	outputs, err := derivationOutputs(r, entries)
	if err != nil {
		return err
	}
	if directWriter {
		err := writeFresh(tmp, entries, outputs, now)
		switch {
		case err == nil:
			return installFresh(tmp, dbFile, dbHost)
		case !errors.Is(err, sqlitefile.ErrTooBig):
			return err
		}
		os.Remove(tmp)
	}
	// Records the direct writer does not lay out: through SQLite.
	if err := buildFreshSQLite(tmp, entries, outputs, now); err != nil {
		return err
	}
	return installFresh(tmp, dbFile, dbHost)
}

// writeFresh writes a new database file with freshDatabase.
func writeFresh(tmp string, entries []*entry, outputs []drvOutput, now int64) error {
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = freshDatabase(w, entries, outputs, now)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// installFresh syncs a complete new database and renames it into place,
// with the schema file.
func installFresh(tmp, dbFile, dbHost string) error {
	if err := syncFile(tmp); err != nil {
		return err
	}
	// A journal of no database would be taken for the new one's.
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if err := os.Remove(dbFile + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(tmp, dbFile); err != nil {
		return err
	}
	// Nix writes the schema file right after creating the database,
	// before filling it; here the database is complete by then.
	return writeSchema(path.Join(dbHost, "schema"))
}

func syncFile(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", p, err)
	}
	return nil
}

// buildFreshSQLite writes the new database at tmp through SQLite's own
// inserts, with neither journal nor syncs.
func buildFreshSQLite(tmp string, entries []*entry, outputs []drvOutput, now int64) (err error) {
	db, err := openSQLite(tmp, true, "journal_mode(off)", "synchronous(off)", "locking_mode(exclusive)", "cache_size(-131072)")
	if err != nil {
		return err
	}
	defer func() {
		if db != nil {
			db.Close()
		}
	}()
	tx, err := db.Begin()
	if err != nil {
		return fmt.Errorf("starting the transaction: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	// ValidPaths and Refs first, the indexes on Refs, the trigger and
	// DerivationOutputs after the rows: sqlite_master lists them in the
	// same order as for a database made in one go.
	for _, stmt := range schema[:2] {
		if _, err := tx.Exec(stmt); err != nil {
			return fmt.Errorf("creating the schema: %w", err)
		}
	}
	if err := insertPaths(tx, entries, now); err != nil {
		return err
	}
	if err := insertRefs(tx, "insert", entries, nil); err != nil {
		return err
	}
	for _, stmt := range schema[2:] {
		if _, err := tx.Exec(stmt); err != nil {
			return fmt.Errorf("creating the schema: %w", err)
		}
	}
	if err := insertOutputs(tx, outputs); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	var mode string
	if err := db.QueryRow("pragma journal_mode = wal").Scan(&mode); err != nil || mode != "wal" {
		return fmt.Errorf("setting the journal mode to wal: %q, %v", mode, err)
	}
	err = db.Close()
	db = nil
	if err != nil {
		return fmt.Errorf("closing the database: %w", err)
	}
	return nil
}
