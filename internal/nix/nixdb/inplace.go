package nixdb

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path"

	"github.com/nixlive/nixlive/internal/nix/nixroot"
)

// loadInPlace registers entries in the database in one transaction of
// its own, with Nix's settings (see openDB): for a database that exists
// already, or when other processes have the store open.
func loadInPlace(r nixroot.Root, dbHost string, entries []*entry, now int64, res *LoadResult) (err error) {
	// What a killed buildFresh left behind: nobody is building it, as
	// that takes the big lock exclusively, and we hold it shared.
	for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
		os.Remove(path.Join(dbHost, freshName) + suffix)
	}
	db, err := openDB(path.Join(dbHost, "db.sqlite"), res.Created)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing the database: %w", cerr)
		}
	}()
	if err := setJournalMode(db); err != nil {
		return err
	}
	tx, err := db.Begin() // BEGIN IMMEDIATE: see openDB
	if err != nil {
		return fmt.Errorf("starting the transaction: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if res.Created {
		for _, stmt := range schema {
			if _, err := tx.Exec(stmt); err != nil {
				return fmt.Errorf("creating the schema: %w", err)
			}
		}
	}
	if err := fill(tx, r, entries, now, res); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	if res.Created {
		// After the commit: a schema file always comes with a complete
		// database (Nix writes it before filling the database, but with
		// "if not exists" it copes with a database without one).
		if err := writeSchema(path.Join(dbHost, "schema")); err != nil {
			return err
		}
	}
	return nil
}

// old is what the database says about a path that is valid already.
type old struct {
	hash              sql.NullString
	narSize, ultimate sql.NullInt64
	sigs, ca          sql.NullString
}

// fill does the reads and writes of one load into an existing (or
// half-made) database inside tx.
func fill(tx *sql.Tx, r nixroot.Root, entries []*entry, now int64, res *LoadResult) error {
	olds, external, err := readOld(tx, entries)
	if err != nil {
		return err
	}
	fresh, err := assignIDs(tx, entries, olds)
	if err != nil {
		return err
	}
	res.New = len(fresh)
	if err := insertPaths(tx, fresh, now); err != nil {
		return err
	}
	outputs, err := derivationOutputs(r, fresh)
	if err != nil {
		return err
	}
	if err := insertOutputs(tx, outputs); err != nil {
		return err
	}
	if res.Updated, err = updateOld(tx, entries, olds); err != nil {
		return err
	}
	// Nix's "insert or replace" would delete and insert again a
	// reference that is there already; ignoring it keeps the same rows.
	return insertRefs(tx, "insert or ignore", entries, external)
}

// readOld reads what the database knows of entries (their ids included)
// and the ids of their references outside entries, which must be valid
// already: all looked up before anything is written.
func readOld(tx *sql.Tx, entries []*entry) (olds map[*entry]old, external map[string]int64, err error) {
	var empty bool
	if err := tx.QueryRow("select not exists (select 1 from ValidPaths)").Scan(&empty); err != nil {
		return nil, nil, fmt.Errorf("reading the database: %w", err)
	}
	olds = map[*entry]old{}
	external = map[string]int64{}
	if !empty {
		query, err := tx.Prepare("select id, hash, narSize, ultimate, sigs, ca from ValidPaths where path = ?")
		if err != nil {
			return nil, nil, err
		}
		defer query.Close()
		for _, e := range entries {
			var o old
			err := query.QueryRow(e.Path).Scan(&e.id, &o.hash, &o.narSize, &o.ultimate, &o.sigs, &o.ca)
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return nil, nil, fmt.Errorf("reading the database: %w", err)
			default:
				olds[e] = o
			}
		}
	}
	// Every reference outside the input must be valid already; looked
	// up before anything is written.
	for _, e := range entries {
		for i, c := range e.refEnts {
			ref := e.refs[i]
			if _, ok := external[ref]; c != nil || ok {
				continue
			}
			var id int64
			err := sql.ErrNoRows
			if !empty {
				err = tx.QueryRow("select id from ValidPaths where path = ?", ref).Scan(&id)
			}
			if errors.Is(err, sql.ErrNoRows) {
				return nil, nil, notValid(e, ref)
			}
			if err != nil {
				return nil, nil, fmt.Errorf("reading the database: %w", err)
			}
			external[ref] = id
		}
	}
	return olds, external, nil
}

// assignIDs gives the entries that are not valid yet the ids SQLite would
// give them one by one, and returns them.
func assignIDs(tx *sql.Tx, entries []*entry, olds map[*entry]old) (fresh []*entry, err error) {
	var next int64
	if err := tx.QueryRow(`select max(ifnull((select seq from sqlite_sequence where name = 'ValidPaths'), 0),
		ifnull((select max(id) from ValidPaths), 0)) + 1`).Scan(&next); err != nil {
		return nil, fmt.Errorf("reading the database: %w", err)
	}
	for _, e := range entries {
		if _, ok := olds[e]; !ok {
			e.id = next
			next++
			fresh = append(fresh, e)
		}
	}
	return fresh, nil
}

// updateOld gives the valid entries whose hash or size changed (or that
// carry signatures, ca or ultimate) the record's, as Nix's updatePathInfo
// does, and returns how many it updated.
func updateOld(tx *sql.Tx, entries []*entry, olds map[*entry]old) (updated int, err error) {
	var update *sql.Stmt
	for _, e := range entries {
		o, ok := olds[e]
		if !ok {
			continue
		}
		hash := hashString(e.NarHash)
		size := narSizeValue(e.NarSize)
		same := o.hash.Valid && o.hash.String == hash &&
			o.narSize.Valid == (size != nil) && (size == nil || o.narSize.Int64 == size.(int64)) &&
			!o.ultimate.Valid && !o.sigs.Valid && !o.ca.Valid
		if same {
			continue
		}
		if update == nil {
			var err error
			if update, err = tx.Prepare("update ValidPaths set narSize = ?, hash = ?, ultimate = null, sigs = null, ca = null where id = ?"); err != nil {
				return updated, err
			}
			defer update.Close()
		}
		if _, err := update.Exec(size, hash, e.id); err != nil {
			return updated, fmt.Errorf("%s: updating %s: %w", e.where(), e.Path, err)
		}
		updated++
	}
	return updated, nil
}
