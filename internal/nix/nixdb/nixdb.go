// Package nixdb registers store paths in a Nix database (db.sqlite in
// /nix/var/nix/db) as Nix 2.8's `nix-store --load-db` does
// (src/nix-store/nix-store.cc, opLoadDB; src/libstore/local-store.cc,
// registerValidPaths): the same rows and ids, the same schema text, the
// same lock files and state directories, so that the Nix of the booted
// system takes over a database it could have made itself. It works on a
// root directory that stands for "/" (Nix's `--store DIR`, see nixroot).
//
// It does not: check a derivation's output paths against its hash (Nix's
// checkInvariants), create an empty database for an empty registration,
// upgrade older schemas (only version 10, Nix 2.0 to 2.19), delete or
// garbage-collect paths, or produce the same database bytes as Nix (the
// SQLite version and page layout differ; what Nix reads does not).
package nixdb

import (
	"bytes"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/nixlive/nixlive/internal/nix/nixroot"
	"github.com/nixlive/nixlive/internal/nix/registration"
)

// Store is the Nix database of the store in a root directory.
type Store struct {
	// Root is the host directory that stands for "/" ("" means "/").
	Root string
	// Now gives the registration time of new paths; nil means time.Now.
	Now func() time.Time
}

func (s *Store) root() nixroot.Root { return nixroot.New(s.Root) }

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// LoadResult says what LoadDB did.
type LoadResult struct {
	Paths   int  // distinct paths in the registration
	New     int  // paths that were not valid before
	Updated int  // valid paths whose NAR hash or size changed (or lost signatures, ca, ultimate)
	Created bool // the database did not exist before
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

// Register registers records in the store's database in one SQLite
// transaction, the way Nix 2.8's `nix-store --load-db` does
// (LocalStore::registerValidPaths in src/libstore/local-store.cc): the
// same rows, ids and schema. Nix's big lock is held shared, or exclusively
// when there is no database yet and no Nix has the store open, in which
// case the database is built aside and renamed into place. A failed or
// killed load leaves the database as it was (or absent).
func (s *Store) Register(records []registration.Record) (LoadResult, error) {
	return s.register(records, false)
}

func (s *Store) register(records []registration.Record, fromFile bool) (res LoadResult, err error) {
	// As Nix:
	//   - when a path is given more than once, its last record wins;
	//   - a new path gets a ValidPaths row with hash "sha256:<base16>", its
	//     narSize (NULL for 0, as Nix writes it), its deriver if the record
	//     has one, registrationTime = now and ultimate, sigs, ca NULL; paths
	//     are inserted in path order, so they get the ids Nix would give;
	//   - a path that is valid already gets the record's hash and narSize,
	//     and its ultimate, sigs and ca cleared (Nix's updatePathInfo); its
	//     registrationTime, deriver and references are kept, the record's
	//     references added;
	//   - every reference (self-references included) becomes a Refs row; a
	//     reference that is neither in the records nor valid already is an
	//     error ("path '…' is not valid"), and so is a cycle between
	//     different paths;
	//   - a new derivation (.drv) gets its outputs in DerivationOutputs,
	//     read from its file in the store (not checked against its hash);
	//   - a new database has Nix's schema, the schema file holding "10" and
	//     WAL journal mode; it reads back as one Nix made, though its bytes
	//     differ; the state directories are made as Nix makes them when it
	//     opens the store (prepareState).
	entries, external := collect(records, fromFile)
	res.Paths = len(entries)
	if err := checkCycles(entries); err != nil {
		return res, err
	}

	r := s.root()
	dbHost, err := r.Host(DBDir)
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
		// register, so leave the store alone (and create nothing).
		res.Created = false
		return res, nil
	}
	now := s.now().Unix()

	unlock, exclusive, err := prepareState(r, res.Created && !exists(dbFile))
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

// collect turns records into entries: when a path is given more than
// once, the last record wins, in the place of the first; the survivors
// are sorted by path, which is how Nix's std::map<StorePath,
// ValidPathInfo> orders them (registrations come sorted already, which is
// quick to see). It also links each reference to its entry (nil outside
// the input) and returns some entry with a reference outside the input.
func collect(records []registration.Record, fromFile bool) (entries []*entry, external *entry) {
	byPath := make(map[string]*entry, len(records))
	entries = make([]*entry, 0, len(records))
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
	for _, e := range entries {
		e.refEnts = make([]*entry, len(e.refs))
		for i, ref := range e.refs {
			e.refEnts[i] = byPath[ref]
			if e.refEnts[i] == nil && external == nil {
				external = e
			}
		}
	}
	return entries, external
}
