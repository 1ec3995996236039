package kmod

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nixlive/nixlive/internal/copyfile"
)

// Subset returns the index files of a database that holds only the named
// modules and what they need (as Resolve finds them): file name →
// contents, for modules.dep, modules.alias, modules.softdep, modules.builtin
// and modules.builtin.modinfo (built-in modules are all kept: they cost no
// file, and their aliases still match). Lines keep the order of this
// database, so the same names give the same bytes. Loaded from a directory
// holding these files and the module files, it resolves and matches those
// modules as this database does.
func (db *DB) Subset(names []string) (map[string][]byte, error) {
	mods, err := db.resolve(names)
	if err != nil {
		return nil, err
	}
	in := map[string]bool{}
	for _, m := range mods {
		in[m] = true
	}
	var dep, alias, soft, builtin, modinfo bytes.Buffer
	for _, m := range db.order {
		if !in[m] {
			continue
		}
		fmt.Fprintf(&dep, "%s:", db.paths[m])
		for _, d := range db.deps[m] {
			fmt.Fprintf(&dep, " %s", db.paths[d])
		}
		dep.WriteByte('\n')
	}
	for _, a := range db.aliases.list {
		switch {
		case a.builtin:
			fmt.Fprintf(&modinfo, "%s.alias=%s\x00", a.module, a.pattern)
		case in[a.module]:
			fmt.Fprintf(&alias, "alias %s %s\n", a.pattern, a.module)
		}
	}
	softMods := make([]string, 0, len(db.soft))
	for m := range db.soft {
		if in[m] {
			softMods = append(softMods, m)
		}
	}
	slices.Sort(softMods)
	for _, m := range softMods {
		sd := db.soft[m]
		fmt.Fprintf(&soft, "softdep %s", m)
		if len(sd.pre) > 0 {
			fmt.Fprintf(&soft, " pre: %s", strings.Join(sd.pre, " "))
		}
		if len(sd.post) > 0 {
			fmt.Fprintf(&soft, " post: %s", strings.Join(sd.post, " "))
		}
		soft.WriteByte('\n')
	}
	for _, l := range db.builtins {
		builtin.WriteString(l + "\n")
	}
	return map[string][]byte{
		"modules.dep":             dep.Bytes(),
		"modules.alias":           alias.Bytes(),
		"modules.softdep":         soft.Bytes(),
		"modules.builtin":         builtin.Bytes(),
		"modules.builtin.modinfo": modinfo.Bytes(),
	}, nil
}

// WriteSubset writes to dstDir the Subset of the named modules and copies
// their module files, at the same paths: a module directory that Load
// reads like this one, for these modules.
func (db *DB) WriteSubset(dstDir string, names []string) error {
	files, err := db.Subset(names)
	if err != nil {
		return err
	}
	paths, err := db.Resolve(names...)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dstDir, 0o755); err != nil {
		return fmt.Errorf("kmod: %w", err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dstDir, name), data, 0o644); err != nil {
			return fmt.Errorf("kmod: %w", err)
		}
	}
	for _, p := range paths {
		dst := filepath.Join(dstDir, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("kmod: %w", err)
		}
		if err := copyfile.Copy(filepath.Join(db.dir, p), dst, 0o644); err != nil {
			return fmt.Errorf("kmod: %w", err)
		}
	}
	return nil
}
