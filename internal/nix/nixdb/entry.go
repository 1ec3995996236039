package nixdb

import (
	"fmt"
	"os"
	"slices"

	"github.com/nixlive/nixlive/internal/nix/registration"
)

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
		return 0, fmt.Errorf("%s: the Nix database was written by a newer Nix (schema %d; this postboot knows %d)", file, version, schemaVersion)
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
