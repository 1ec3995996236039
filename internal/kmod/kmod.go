// Package kmod reads the module database of one kernel, the directory
// /lib/modules/<version> that depmod indexes, and answers what modprobe
// would: which files to load for a module, in which order, and which
// modules drive a device (its modalias).
//
// Supported, from the text files depmod writes:
//   - modules.dep (required): module files and their dependencies; module
//     files may be .ko, .ko.xz, .ko.zst or .ko.gz, and names are compared
//     with '-' and '_' as equals, as the kernel does;
//   - modules.alias: alias patterns, fnmatch globs (* ? [...]) matched as
//     modprobe matches them, '-' and '_' equal outside brackets;
//   - modules.builtin: modules built into the kernel, which need no file;
//   - modules.builtin.modinfo: the aliases of built-in modules;
//   - modules.softdep: "softdep M pre: A post: B" soft dependencies,
//     loaded around M when they are in the database.
//
// The optional files may be missing. Not supported: modprobe.d
// configuration (aliases, options, blacklists, install commands), the
// binary .bin indexes, modules.symbols, module parameters.
//
// WriteSubset (and Subset) write the database of a few modules and their
// dependencies, for an initrd that carries only those.
package kmod

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// DB is the module database of one kernel. It is read-only after Load, so
// safe for concurrent use.
type DB struct {
	dir      string
	order    []string            // module names in modules.dep order
	paths    map[string]string   // name → file, relative to dir
	deps     map[string][]string // name → dependency names, as modules.dep lists them
	builtin  map[string]bool
	builtins []string // modules.builtin lines
	soft     map[string]softdep
	aliases  aliasIndex
}

type softdep struct{ pre, post []string }

// Load reads the database in dir, a /lib/modules/<version> directory.
// Errors name the file and line at fault; a missing modules.dep gives an
// error that matches fs.ErrNotExist.
func Load(dir string) (*DB, error) {
	db := &DB{dir: dir, paths: map[string]string{}, deps: map[string][]string{},
		builtin: map[string]bool{}, soft: map[string]softdep{}}
	steps := []struct {
		file     string
		optional bool
		parse    func(line string) error
	}{
		{"modules.dep", false, db.parseDep},
		{"modules.builtin", true, db.parseBuiltin},
		{"modules.alias", true, db.parseAlias},
		{"modules.softdep", true, db.parseSoftdep},
	}
	for _, s := range steps {
		if err := eachLine(filepath.Join(dir, s.file), s.optional, s.parse); err != nil {
			return nil, err
		}
	}
	if err := db.loadBuiltinModinfo(); err != nil {
		return nil, err
	}
	for _, m := range db.order {
		for _, d := range db.deps[m] {
			if _, ok := db.paths[d]; !ok {
				return nil, fmt.Errorf("kmod: %s: %s needs %s, which has no entry", filepath.Join(dir, "modules.dep"), m, d)
			}
		}
	}
	if err := db.checkLoops(); err != nil {
		return nil, err
	}
	db.aliases.build()
	return db, nil
}

// eachLine calls fn for every line of a file that is neither blank nor a
// comment, and names the file and line in fn's errors.
func eachLine(file string, optional bool, fn func(string) error) error {
	data, err := os.ReadFile(file)
	if err != nil {
		if optional && os.IsNotExist(err) {
			return nil
		}
		return fmt.Errorf("kmod: %w", err)
	}
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' {
			continue
		}
		if err := fn(s); err != nil {
			return fmt.Errorf("kmod: %s:%d: %w", file, n, err)
		}
	}
	return nil
}

func (db *DB) parseDep(line string) error {
	file, deps, ok := strings.Cut(line, ":")
	if !ok {
		return fmt.Errorf("no ':' in %q", line)
	}
	file = db.rel(strings.TrimSpace(file))
	name := nameOf(file)
	if _, dup := db.paths[name]; dup {
		return nil // depmod lists each module once; keep the first
	}
	db.order = append(db.order, name)
	db.paths[name] = file
	for _, d := range strings.Fields(deps) {
		db.deps[name] = append(db.deps[name], nameOf(d))
	}
	return nil
}

func (db *DB) parseBuiltin(line string) error {
	db.builtins = append(db.builtins, line)
	db.builtin[nameOf(line)] = true
	return nil
}

func (db *DB) parseAlias(line string) error {
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "alias" {
		return fmt.Errorf("want \"alias PATTERN MODULE\", got %q", line)
	}
	db.aliases.add(f[1], Normalize(f[2]), false)
	return nil
}

func (db *DB) parseSoftdep(line string) error {
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "softdep" {
		return fmt.Errorf("want \"softdep MODULE pre: ... post: ...\", got %q", line)
	}
	m := Normalize(f[1])
	sd := db.soft[m]
	var list *[]string // as modprobe: words before "pre:" or "post:" are ignored
	for _, w := range f[2:] {
		switch w {
		case "pre:":
			list = &sd.pre
		case "post:":
			list = &sd.post
		default:
			if list != nil {
				*list = append(*list, w)
			}
		}
	}
	db.soft[m] = sd
	return nil
}

// loadBuiltinModinfo reads the aliases of built-in modules from
// modules.builtin.modinfo: NUL-terminated "module.key=value" records.
func (db *DB) loadBuiltinModinfo() error {
	data, err := os.ReadFile(filepath.Join(db.dir, "modules.builtin.modinfo"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kmod: %w", err)
	}
	for _, rec := range bytes.Split(data, []byte{0}) {
		mod, val, ok := strings.Cut(string(rec), ".alias=")
		if ok && mod != "" && val != "" && !strings.ContainsAny(mod, "=\n") {
			db.aliases.add(val, Normalize(mod), true)
		}
	}
	return nil
}

// rel makes a modules.dep path relative to the database directory (depmod
// writes them relative; very old versions wrote absolute paths).
func (db *DB) rel(p string) string {
	if path.IsAbs(p) {
		if r, err := filepath.Rel(db.dir, p); err == nil && !strings.HasPrefix(r, "..") {
			return filepath.ToSlash(r)
		}
	}
	return p
}

// Normalize gives the canonical form of a module name: '-' becomes '_'.
func Normalize(name string) string { return strings.ReplaceAll(name, "-", "_") }

// nameOf is the module name of a module file: its base name up to the
// first '.', normalized.
func nameOf(file string) string {
	base := path.Base(file)
	if i := strings.IndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	return Normalize(base)
}

// Builtin reports whether the named module is built into the kernel.
func (db *DB) Builtin(name string) bool { return db.builtin[Normalize(name)] }

// Path returns the file of the named module, relative to the database
// directory, as modules.dep gives it.
func (db *DB) Path(name string) (string, bool) {
	p, ok := db.paths[Normalize(name)]
	return p, ok
}

// Dir is the directory the database was loaded from.
func (db *DB) Dir() string { return db.dir }

// Modules lists the names of the loadable modules in modules.dep order.
func (db *DB) Modules() []string { return append([]string(nil), db.order...) }

// Glob returns the names of the loadable modules whose file matches one of
// patterns (path.Match, relative to the database directory, against the
// file's path without ".ko" and its compression suffix, such as
// "kernel/drivers/ata/*") and no pattern that starts with "!" (such as
// "!kernel/drivers/ata/pata_pcmcia"), in modules.dep order. A malformed
// pattern is an error.
func (db *DB) Glob(patterns []string) ([]string, error) {
	var in, out []string
	for _, p := range patterns {
		if _, err := path.Match(strings.TrimPrefix(p, "!"), ""); err != nil {
			return nil, fmt.Errorf("kmod: pattern %q: %w", p, err)
		}
		if x, ok := strings.CutPrefix(p, "!"); ok {
			out = append(out, x)
		} else {
			in = append(in, p)
		}
	}
	var names []string
	for _, m := range db.order {
		stem := db.paths[m]
		if i := strings.LastIndex(stem, ".ko"); i >= 0 {
			stem = stem[:i]
		}
		if matchAny(in, stem) && !matchAny(out, stem) {
			names = append(names, m)
		}
	}
	return names, nil
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}
