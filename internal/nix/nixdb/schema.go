package nixdb

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/nixlive/nixlive/internal/atomicfile"
)

// schemaVersion is the Nix database schema this package writes: the one
// of Nix 2.0 to 2.19, recorded in /nix/var/nix/db/schema.
const schemaVersion = 10

// schema creates the tables of a Nix database. The text after each
// object's name is what SQLite keeps in sqlite_master, and it is kept
// character for character as Nix 2.8 leaves it there (comments
// included), so that the schema of a database we create reads back
// exactly like one Nix created. It is the schema of go-nix's
// pkg/sqlite/nix_v10, without its sqlite_sequence line (SQLite makes that
// table itself for the AUTOINCREMENT column, and refuses to be told to)
// and without a comment on the hash column that Nix 2.8's text does not
// have. "if not exists" lets it run over a half-made database, as Nix's
// does.
var schema = []string{
	`create table if not exists ValidPaths (
    id               integer primary key autoincrement not null,
    path             text unique not null,
    hash             text not null,
    registrationTime integer not null,
    deriver          text,
    narSize          integer,
    ultimate         integer, -- null implies "false"
    sigs             text, -- space-separated
    ca               text -- if not null, an assertion that the path is content-addressed; see ValidPathInfo
)`,
	`create table if not exists Refs (
    referrer  integer not null,
    reference integer not null,
    primary key (referrer, reference),
    foreign key (referrer) references ValidPaths(id) on delete cascade,
    foreign key (reference) references ValidPaths(id) on delete restrict
)`,
	`create index if not exists IndexReferrer on Refs(referrer)`,
	`create index if not exists IndexReference on Refs(reference)`,
	// A path that refers to itself would make deleting it violate the
	// "on delete restrict" above: drop the self-reference first.
	`create trigger if not exists DeleteSelfRefs before delete on ValidPaths
  begin
    delete from Refs where referrer = old.id and reference = old.id;
  end`,
	`create table if not exists DerivationOutputs (
    drv  integer not null,
    id   text not null, -- symbolic output id, usually "out"
    path text not null,
    primary key (drv, id),
    foreign key (drv) references ValidPaths(id) on delete cascade
)`,
	`create index if not exists IndexDerivationOutputs on DerivationOutputs(path)`,
}

// readSchema returns the version in the schema file (0 when there is
// none yet), as Nix reads it.
func readSchema(p string) (int, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	// Nix takes the whole file as the number: "10\n" is corrupt to it.
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 0 {
		// A newer Nix's number with a newline is still a newer Nix's:
		// say so rather than "corrupt".
		if m, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && m > schemaVersion {
			return m, nil
		}
		return 0, fmt.Errorf("%s is corrupt: %q", p, b)
	}
	return n, nil
}

// writeSchema writes the schema file as Nix does: the version, no newline.
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
