package nixdb

import (
	"fmt"
	"path"
)

// CheckValid fails unless p is a valid path in the database. The store
// should be open (Open).
func (s *Store) CheckValid(p string) error {
	dbHost, err := s.root().Host(DBDir)
	if err != nil {
		return err
	}
	version, err := readSchema(path.Join(dbHost, "schema"))
	if err != nil {
		return err
	}
	if version != schemaVersion {
		return fmt.Errorf("path '%s' is not valid: there is no Nix database (schema version %d) in %s", p, version, dbHost)
	}
	db, err := openDB(path.Join(dbHost, "db.sqlite"), false)
	if err != nil {
		return err
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("select count(*) from ValidPaths where path = ?", p).Scan(&n); err != nil {
		return fmt.Errorf("reading the database: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("path '%s' is not valid in the Nix database", p)
	}
	return nil
}
