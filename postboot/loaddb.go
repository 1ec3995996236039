package postboot

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/nix-community/go-nix/pkg/derivation"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/nixlive/nixlive/internal/atomicfile"
	"github.com/nixlive/nixlive/internal/nix/registration"
)

// LoadResult says what LoadDB did.
type LoadResult struct {
	Paths   int  // distinct paths in the registration
	New     int  // paths that were not valid before
	Updated int  // valid paths whose NAR hash or size changed (or lost signatures, ca, ultimate)
	Created bool // the database did not exist before
}

// entry is a registered path on its way into the database.
type entry struct {
	registration.Record
	refs    []string // References, sorted, without duplicates
	refEnts []*entry // the entries of refs, nil for paths outside the input
	line    int      // the line the record starts on, 0 if not from a file
	id      int64    // its ValidPaths id, once known
	visit   int8     // checkCycles' mark
}

func (e *entry) where() string {
	if e.line > 0 {
		return fmt.Sprintf("line %d", e.line)
	}
	return "record of " + e.Path
}

// refWhere is the line of e's reference ref as written in the file.
func (e *entry) refWhere(ref string) string {
	if e.line > 0 {
		if i := slices.Index(e.References, ref); i >= 0 {
			return fmt.Sprintf("line %d", e.line+5+i)
		}
	}
	return e.where()
}

// LoadDB reads a registration (closureInfo's format, as in NixOS's
// nix-path-registration) from r and registers its paths in the store's
// database, as `nix-store --load-db` does. See Register.
//
// The input is parsed strictly before anything is written: an error names
// the line, and leaves the store as it was.
func (s *Store) LoadDB(r io.Reader) (LoadResult, error) {
	var buf bytes.Buffer
	if f, ok := r.(interface{ Stat() (fs.FileInfo, error) }); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			buf.Grow(int(fi.Size()) + 1)
		}
	}
	if _, err := buf.ReadFrom(r); err != nil {
		return LoadResult{}, err
	}
	data := buf.Bytes()
	recs, err := parseRegistration(data)
	if err != nil {
		return LoadResult{}, err
	}
	return s.register(recs, true)
}

// Register registers records in the store's database the way Nix 2.8's
// `nix-store --load-db` does (LocalStore::registerValidPaths), in one
// SQLite transaction:
//
//   - when a path is given more than once, its last record wins;
//   - a new path gets a ValidPaths row with hash "sha256:<base16>", its
//     narSize (NULL for 0, as Nix writes it), its deriver if the record
//     has one, registrationTime = now and ultimate, sigs, ca NULL; paths
//     are inserted in path order, so they get the ids Nix would give;
//   - a path that is valid already gets the record's hash and narSize, and
//     its ultimate, sigs and ca cleared (Nix's updatePathInfo); its
//     registrationTime and deriver are kept, and so are its references,
//     to which the record's are added;
//   - every reference (self-references included) becomes a Refs row; a
//     reference that is neither in the records nor valid already is an
//     error ("path '…' is not valid"), and so is a cycle between
//     different paths;
//   - a new derivation (.drv) path gets its outputs in DerivationOutputs,
//     read from the .drv file in the store as Nix reads it. (Nix also
//     checks that the output paths are the ones the derivation hashes
//     to; we do not.)
//
// A new database is created as Nix creates one: the same schema, the
// schema file holding "10", WAL journal mode; it reads back the same as
// one Nix made (same rows, same ids), though its bytes differ. Nix's big
// lock (db/big-lock) is held shared while loading, as Nix holds it, and
// concurrent writers wait for each other on SQLite's lock. When there is
// no database yet and the big lock is free (no Nix process has the store
// open), it is taken exclusively instead, and the database is built
// beside db.sqlite and renamed into place (see buildFresh), which is
// several times faster. Either way, a failed or killed load leaves the
// database as it was (or absent).
//
// The store's other state directories are created as Nix creates them on
// opening the store (see prepareState).
func (s *Store) Register(records []registration.Record) (LoadResult, error) {
	return s.register(records, false)
}

func (s *Store) register(records []registration.Record, fromFile bool) (res LoadResult, err error) {
	// Last wins, in the place of the first; the survivors sorted by
	// path, which is how Nix's std::map<StorePath, ValidPathInfo> orders
	// them (registrations come sorted already, which is quick to see).
	byPath := make(map[string]*entry, len(records))
	entries := make([]*entry, 0, len(records))
	line := 1
	for _, rec := range records {
		e := &entry{Record: rec}
		if fromFile {
			e.line = line
			line += 5 + len(rec.References)
		}
		e.refs = rec.References
		if !sortedUnique(e.refs) {
			e.refs = slices.Clone(e.refs)
			slices.Sort(e.refs)
			e.refs = slices.Compact(e.refs)
		}
		if first := byPath[rec.Path]; first != nil {
			*first = *e
			continue
		}
		byPath[rec.Path] = e
		entries = append(entries, e)
	}
	if !slices.IsSortedFunc(entries, func(a, b *entry) int { return strings.Compare(a.Path, b.Path) }) {
		slices.SortFunc(entries, func(a, b *entry) int { return strings.Compare(a.Path, b.Path) })
	}
	res.Paths = len(entries)
	var external *entry // some entry with a reference outside the input
	for _, e := range entries {
		e.refEnts = make([]*entry, len(e.refs))
		for i, ref := range e.refs {
			e.refEnts[i] = byPath[ref]
			if e.refEnts[i] == nil && external == nil {
				external = e
			}
		}
	}
	if err := checkCycles(entries); err != nil {
		return res, err
	}

	r := s.root()
	dbHost, err := r.host(dbDir)
	if err != nil {
		return res, err
	}
	schemaFile, dbFile := path.Join(dbHost, "schema"), path.Join(dbHost, "db.sqlite")
	version, err := checkSchema(schemaFile)
	if err != nil {
		return res, err
	}
	res.Created = version == 0
	if res.Created && external != nil {
		// Without a database no reference outside the input can be
		// valid: say which, without creating anything.
		for i, c := range external.refEnts {
			if c == nil {
				return res, notValid(external, external.refs[i])
			}
		}
	}
	if len(entries) == 0 && res.Created {
		// Nix would create an empty database; there is nothing to
		// register, so leave the store alone.
		return res, nil
	}
	now := s.now().Unix()

	unlock, exclusive, err := r.prepareState(res.Created && !exists(dbFile))
	if err != nil {
		return res, err
	}
	defer unlock()
	if exclusive {
		// Nobody has the store open: unless a database appeared
		// meanwhile, build it aside and move it into place.
		if version, err = checkSchema(schemaFile); err != nil {
			return res, err
		}
		if version == 0 && !exists(dbFile) {
			res.New = len(entries)
			return res, buildFresh(r, dbHost, entries, now)
		}
		res.Created = version == 0
	}
	return res, loadInPlace(r, dbHost, entries, now, &res)
}

func sortedUnique(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			return false
		}
	}
	return true
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// checkSchema reads the schema file and refuses versions we cannot write.
func checkSchema(file string) (int, error) {
	version, err := readSchema(file)
	if err != nil {
		return 0, err
	}
	switch {
	case version > schemaVersion:
		return 0, fmt.Errorf("current Nix store schema is version %d, but postboot only supports %d", version, schemaVersion)
	case version > 0 && version < schemaVersion:
		return 0, fmt.Errorf("the Nix store schema is version %d: let Nix upgrade it to %d first", version, schemaVersion)
	}
	return version, nil
}

func notValid(e *entry, ref string) error {
	return fmt.Errorf("%s: path '%s' is not valid: %s refers to it, but it is neither registered here nor valid in the database",
		e.refWhere(ref), ref, e.Path)
}

// checkCycles fails on a cycle between different paths of the input, as
// Nix's topological sort does (self-references are fine).
func checkCycles(entries []*entry) error {
	const (
		visiting = 1
		done     = 2
	)
	var visit func(e, parent *entry) error
	visit = func(e, parent *entry) error {
		switch e.visit {
		case visiting:
			return fmt.Errorf("%s: cycle detected in the references of '%s' from '%s'", parent.refWhere(e.Path), e.Path, parent.Path)
		case done:
			return nil
		}
		e.visit = visiting
		for _, c := range e.refEnts {
			if c != nil && c != e {
				if err := visit(c, e); err != nil {
					return err
				}
			}
		}
		e.visit = done
		return nil
	}
	for _, e := range entries {
		if err := visit(e, nil); err != nil {
			return err
		}
	}
	return nil
}

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
func buildFresh(r root, dbHost string, entries []*entry, now int64) (err error) {
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
		case !errors.Is(err, errTooBig):
			return err
		}
		os.Remove(tmp)
	}
	// Records the direct writer does not lay out: through SQLite.
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

// loadInPlace registers entries in the database in one transaction of
// its own, with Nix's settings (see openDB): for a database that exists
// already, or when other processes have the store open.
func loadInPlace(r root, dbHost string, entries []*entry, now int64, res *LoadResult) (err error) {
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

func writeSchema(p string) error {
	f, err := atomicfile.Create(p, 0o644)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := fmt.Fprintf(f, "%d", schemaVersion); err != nil {
		return err
	}
	return f.Commit()
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

// old is what the database says about a path that is valid already.
type old struct {
	hash              sql.NullString
	narSize, ultimate sql.NullInt64
	sigs, ca          sql.NullString
}

// fill does the reads and writes of one load into an existing (or
// half-made) database inside tx.
func fill(tx *sql.Tx, r root, entries []*entry, now int64, res *LoadResult) error {
	var empty bool
	if err := tx.QueryRow("select not exists (select 1 from ValidPaths)").Scan(&empty); err != nil {
		return fmt.Errorf("reading the database: %w", err)
	}
	olds := map[*entry]old{}
	external := map[string]int64{}
	if !empty {
		query, err := tx.Prepare("select id, hash, narSize, ultimate, sigs, ca from ValidPaths where path = ?")
		if err != nil {
			return err
		}
		defer query.Close()
		for _, e := range entries {
			var o old
			err := query.QueryRow(e.Path).Scan(&e.id, &o.hash, &o.narSize, &o.ultimate, &o.sigs, &o.ca)
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return fmt.Errorf("reading the database: %w", err)
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
				return notValid(e, ref)
			}
			if err != nil {
				return fmt.Errorf("reading the database: %w", err)
			}
			external[ref] = id
		}
	}

	// New paths get the ids SQLite would give them one by one.
	var next int64
	if err := tx.QueryRow(`select max(ifnull((select seq from sqlite_sequence where name = 'ValidPaths'), 0),
		ifnull((select max(id) from ValidPaths), 0)) + 1`).Scan(&next); err != nil {
		return fmt.Errorf("reading the database: %w", err)
	}
	var fresh []*entry
	for _, e := range entries {
		if _, ok := olds[e]; !ok {
			e.id = next
			next++
			fresh = append(fresh, e)
		}
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
				return err
			}
			defer update.Close()
		}
		if _, err := update.Exec(size, hash, e.id); err != nil {
			return fmt.Errorf("%s: updating %s: %w", e.where(), e.Path, err)
		}
		res.Updated++
	}

	// Nix's "insert or replace" would delete and insert again a
	// reference that is there already; ignoring it keeps the same rows.
	return insertRefs(tx, "insert or ignore", entries, external)
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

// derivationOutputs reads the .drv files among entries from the store, as
// Nix reads them, and returns their outputs whose paths are known (not
// floating content-addressed ones), by entry and output name.
func derivationOutputs(r root, entries []*entry) ([]drvOutput, error) {
	var out []drvOutput
	for _, e := range entries {
		if !strings.HasSuffix(e.Path, ".drv") {
			continue
		}
		storeHost, err := r.host(storeDir)
		if err != nil {
			return nil, err
		}
		b, err := os.ReadFile(path.Join(storeHost, path.Base(e.Path)))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: derivation %s: its file is not in the store (Nix reads it to register its outputs)", e.where(), e.Path)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: derivation %s: %w", e.where(), e.Path, err)
		}
		drv, err := derivation.ReadDerivation(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%s: derivation %s: %w", e.where(), e.Path, err)
		}
		names := make([]string, 0, len(drv.Outputs))
		for name := range drv.Outputs {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if p := drv.Outputs[name].Path; p != "" {
				out = append(out, drvOutput{e.id, name, p})
			}
		}
	}
	return out, nil
}
