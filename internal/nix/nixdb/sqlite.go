package nixdb

import (
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// openDB opens the database file as Nix does: busy timeout of an hour,
// foreign keys on, synchronous=normal, WAL checkpoints every 40000 pages;
// plus a larger page cache for the one big transaction. Transactions
// begin IMMEDIATE so that a concurrent writer waits on the busy handler
// at BEGIN rather than failing at its first write. Without create, a
// missing file is an error, as for Nix once the schema file exists.
func openDB(file string, create bool) (*sql.DB, error) {
	return openSQLite(file, create, "busy_timeout(3600000)", "foreign_keys(1)", "synchronous(normal)",
		"wal_autocheckpoint(40000)", "cache_size(-65536)")
}

func openSQLite(file string, create bool, pragmas ...string) (*sql.DB, error) {
	q := url.Values{}
	if !create {
		q.Set("mode", "rw")
	}
	q.Set("_txlock", "immediate")
	q["_pragma"] = pragmas
	u := url.URL{Scheme: "file", Path: file, RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", file, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening %s: %w", file, err)
	}
	return db, nil
}

// setJournalMode switches the database to WAL unless it is already, as
// Nix does on every open (use-sqlite-wal defaults to true).
func setJournalMode(db *sql.DB) error {
	var mode string
	if err := db.QueryRow("pragma main.journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("querying the journal mode: %w", err)
	}
	if mode == "wal" {
		return nil
	}
	if err := db.QueryRow("pragma main.journal_mode = wal").Scan(&mode); err != nil {
		return fmt.Errorf("setting the journal mode: %w", err)
	}
	if mode != "wal" {
		return fmt.Errorf("setting the journal mode: SQLite kept %q", mode)
	}
	return nil
}

// hashString is the hash as Nix stores it: "sha256:" + base16.
func hashString(h [32]byte) string {
	return "sha256:" + hex.EncodeToString(h[:])
}

// narSizeValue is narSize as Nix binds it: NULL for 0, and the 64 bits
// as a signed integer.
func narSizeValue(n uint64) any {
	if n == 0 {
		return nil
	}
	return int64(n)
}

// batchRows is how many rows one INSERT statement carries: one statement
// per row would cost more in the driver than in SQLite.
const batchRows = 64

// batch accumulates the rows of a multi-row INSERT.
type batch struct {
	tx   *sql.Tx
	head string // "insert into T (a, b) values "
	cols int
	full *sql.Stmt // prepared for batchRows rows
	args []any
}

func newBatch(tx *sql.Tx, head string, cols int) *batch {
	return &batch{tx: tx, head: head, cols: cols, args: make([]any, 0, batchRows*cols)}
}

func (b *batch) sql(rows int) string {
	tuple := "(" + strings.Repeat("?, ", b.cols-1) + "?)"
	return b.head + strings.Repeat(tuple+", ", rows-1) + tuple
}

func (b *batch) add(vals ...any) error {
	b.args = append(b.args, vals...)
	if len(b.args) == batchRows*b.cols {
		return b.flush()
	}
	return nil
}

func (b *batch) flush() (err error) {
	rows := len(b.args) / b.cols
	switch {
	case rows == 0:
		return nil
	case rows == batchRows:
		if b.full == nil {
			if b.full, err = b.tx.Prepare(b.sql(rows)); err != nil {
				return err
			}
		}
		_, err = b.full.Exec(b.args...)
	default:
		_, err = b.tx.Exec(b.sql(rows), b.args...)
	}
	b.args = b.args[:0]
	return err
}

func (b *batch) close() error {
	err := b.flush()
	if b.full != nil {
		b.full.Close()
	}
	return err
}

// insertPaths inserts the ValidPaths rows of new entries, with their ids.
func insertPaths(tx *sql.Tx, entries []*entry, now int64) error {
	b := newBatch(tx, "insert into ValidPaths (id, path, hash, registrationTime, deriver, narSize) values ", 6)
	for _, e := range entries {
		var deriver any
		if e.Deriver != "" {
			deriver = e.Deriver
		}
		if err := b.add(e.id, e.Path, hashString(e.NarHash), now, deriver, narSizeValue(e.NarSize)); err != nil {
			b.close()
			return fmt.Errorf("registering paths: %w", err)
		}
	}
	if err := b.close(); err != nil {
		return fmt.Errorf("registering paths: %w", err)
	}
	return nil
}

// insertRefs inserts the references of entries, in (referrer, reference)
// order; external maps references outside entries to their ids.
func insertRefs(tx *sql.Tx, verb string, entries []*entry, external map[string]int64) error {
	b := newBatch(tx, verb+" into Refs (referrer, reference) values ", 2)
	for _, e := range entries {
		for i, c := range e.refEnts {
			id := external[e.refs[i]]
			if c != nil {
				id = c.id
			}
			if err := b.add(e.id, id); err != nil {
				b.close()
				return fmt.Errorf("registering references: %w", err)
			}
		}
	}
	if err := b.close(); err != nil {
		return fmt.Errorf("registering references: %w", err)
	}
	return nil
}

// insertOutputs records the outputs of new derivations (from
// derivationOutputs) in DerivationOutputs, as Nix's addValidPath does.
func insertOutputs(tx *sql.Tx, outputs []drvOutput) error {
	if len(outputs) == 0 {
		return nil
	}
	stmt, err := tx.Prepare("insert or replace into DerivationOutputs (drv, id, path) values (?, ?, ?)")
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, o := range outputs {
		if _, err := stmt.Exec(o.drv, o.name, o.path); err != nil {
			return fmt.Errorf("derivation %d, output %s: %w", o.drv, o.name, err)
		}
	}
	return nil
}
