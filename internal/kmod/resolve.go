package kmod

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Resolve returns the files to load, relative to the database directory,
// for the named modules: every module once, each after the modules it
// needs, in an order that depends only on the database and the names.
//
// A name is looked up as modprobe looks it up: a loadable module (with '-'
// and '_' equal), then an alias (such as "fs-isofs" or a modalias), which
// stands for every module it matches, then a built-in module (which needs
// no file and is skipped), then a built-in module's alias. A module's soft dependencies ("pre:" ones before it,
// "post:" ones after) are added when they are found and skipped when not,
// as modprobe does. A name found nowhere is an error that names it.
func (db *DB) Resolve(names ...string) ([]string, error) {
	mods, err := db.resolve(names)
	if err != nil {
		return nil, err
	}
	files := make([]string, len(mods))
	for i, m := range mods {
		files[i] = db.paths[m]
	}
	return files, nil
}

// resolve is Resolve giving module names.
func (db *DB) resolve(names []string) ([]string, error) {
	r := resolver{db: db, state: map[string]int{}}
	var unknown []string
	for _, n := range names {
		mods, ok := db.lookup(n)
		if !ok {
			unknown = append(unknown, n)
			continue
		}
		for _, m := range mods {
			r.top(m)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("kmod: no module %s in %s", strings.Join(quote(unknown), ", "), db.dir)
	}
	return r.order, nil
}

// lookup returns the loadable modules a name stands for, trying what
// modprobe tries, in its order: a module name, an alias, a built-in
// module, a built-in module's alias (MatchAlias does the last two). ok is
// false if the name is none of these.
func (db *DB) lookup(name string) (mods []string, ok bool) {
	n := Normalize(name)
	if _, ok := db.paths[n]; ok {
		return []string{n}, true
	}
	matches := db.MatchAlias(name)
	for _, m := range matches {
		if _, ok := db.paths[m]; ok {
			mods = append(mods, m)
		}
	}
	return mods, len(matches) > 0 || db.builtin[n]
}

// resolver orders modules depth first: soft "pre" dependencies, then hard
// dependencies (in reverse modules.dep order, as modprobe loads them), then
// the module, then its soft "post" dependencies. Load has made sure that
// hard dependencies do not loop. A soft dependency that needs (through
// modules.dep, whose lists are transitive) a module still being visited
// would come before it: it is put off until the name being resolved is
// done, so that every module still comes after all it needs.
type resolver struct {
	db    *DB
	state map[string]int // 1: being visited, 2: done
	order []string
	later []string
}

func (r *resolver) top(m string) {
	r.visit(m)
	for len(r.later) > 0 {
		l := r.later[0]
		r.later = r.later[1:]
		r.visit(l)
	}
}

func (r *resolver) visit(m string) {
	if r.state[m] != 0 {
		return
	}
	r.state[m] = 1
	sd := r.db.soft[m]
	r.visitSoft(sd.pre)
	deps := r.db.deps[m]
	for i := len(deps) - 1; i >= 0; i-- {
		r.visit(deps[i])
	}
	r.state[m] = 2
	r.order = append(r.order, m)
	r.visitSoft(sd.post)
}

func (r *resolver) visitSoft(names []string) {
	for _, n := range names {
		mods, _ := r.db.lookup(n)
		for _, m := range mods {
			if r.blocked(m) {
				r.later = append(r.later, m)
			} else {
				r.visit(m)
			}
		}
	}
}

// blocked reports whether m or a module it needs is being visited.
func (r *resolver) blocked(m string) bool {
	if r.state[m] == 1 {
		return true
	}
	for _, d := range r.db.deps[m] {
		if r.state[d] == 1 {
			return true
		}
	}
	return false
}

// checkLoops fails if a module depends on itself through modules.dep.
func (db *DB) checkLoops() error {
	state := map[string]int{} // 1: being visited, 2: done
	var visit func(m string) error
	visit = func(m string) error {
		switch state[m] {
		case 1:
			return fmt.Errorf("kmod: %s: dependency loop through %s", filepath.Join(db.dir, "modules.dep"), m)
		case 2:
			return nil
		}
		state[m] = 1
		for _, d := range db.deps[m] {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[m] = 2
		return nil
	}
	for _, m := range db.order {
		if err := visit(m); err != nil {
			return err
		}
	}
	return nil
}

func quote(names []string) []string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return q
}
