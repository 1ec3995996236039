package storepath

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nixlive/nixlive/internal/nix/nixroot"
)

// Root is a store seen through a host directory, like Nix's `--store DIR`
// (a "chroot store"): store paths keep their logical names
// (/nix/store/<hash>-<name>, which is what references inside files say),
// but their bytes live under Dir, at Dir/nix/store/<hash>-<name>.
type Root struct {
	// Dir is the host directory standing for "/"; "" or "/" means the
	// real root, so the store is read in place.
	Dir string
	// StoreDir is the logical store directory; "" means DefaultStoreDir.
	StoreDir string
}

// Store returns the logical store directory of r.
func (r Root) Store() string {
	if r.StoreDir == "" {
		return DefaultStoreDir
	}
	return r.StoreDir
}

// HostPath returns where the logical path p (a store path, a file inside
// one, or the store dir itself) is found on the host.
func (r Root) HostPath(p string) string {
	if r.Dir == "" || r.Dir == "/" {
		return p
	}
	// Join, not Clean-and-concatenate: p is absolute, and filepath.Join
	// keeps it below Dir even if p were to contain "..".
	return filepath.Join(r.Dir, p)
}

// HostStoreDir returns the host directory holding r's store paths.
func (r Root) HostStoreDir() string { return r.HostPath(r.Store()) }

// List returns the absolute logical paths of the store objects present in
// r's store directory, sorted. Entries whose names are not store path base
// names (.links, nix-path-registration, temporary directories) are
// skipped, and so is the debris Nix leaves next to a path it built or
// locked: "<path>.lock" lock files and "<drv>.chroot" build roots. Such an
// entry shares the hash part of the path it belongs to, so keeping it would
// make every reference to that path also pull it in. The rule used is
// general: an entry "<hash>-<name>.<anything>" is skipped when
// "<hash>-<name>" is present too. Real store objects can never pair up like
// that, since their hash covers their name.
func (r Root) List() ([]string, error) {
	if err := CheckStoreDir(r.Store()); err != nil {
		return nil, err
	}
	dir := r.HostStoreDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("storepath: listing store %s: %w", dir, err)
	}
	names := make(map[string]bool, len(entries))
	for _, e := range entries {
		names[e.Name()] = true
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if _, err := ParseBase(n); err != nil || isDebris(n, names) {
			continue
		}
		out = append(out, r.Store()+"/"+n)
	}
	slices.Sort(out)
	return out, nil
}

// isDebris reports whether n is "<p>.<suffix>" for some p in names.
func isDebris(n string, names map[string]bool) bool {
	for i := HashLen + 2; i < len(n); i++ {
		if n[i] == '.' && names[n[:i]] {
			return true
		}
	}
	return false
}

// Resolve maps p, a host path (relative or absolute), to the store path
// it designates, as Nix's followLinksToStorePath does
// (src/libstore/store-api.cc): a store path, a path inside one, or a
// symlink chain that leads into the store, whose targets are taken as
// logical paths (no look at the host's /nix). A host path under
// r.HostStoreDir() is accepted too: it can only mean that store path.
// Resolve does not check that the store path exists.
func (r Root) Resolve(p string) (StorePath, error) {
	abs := p
	if !filepath.IsAbs(abs) {
		var err error
		if abs, err = filepath.Abs(p); err != nil {
			return StorePath{}, fmt.Errorf("storepath: %s: %w", p, err)
		}
	}
	alias := r.HostStoreDir()
	if alias == r.Store() {
		alias = ""
	}
	return r.followLinks(nixroot.Root("/"), p, abs, alias)
}

// ResolveInRoot is Resolve for p, an absolute path inside r.Dir seen as
// "/" (nixroot): its components and the links met on the way are
// resolved inside r.Dir, as Nix with --store DIR running chrooted in DIR
// would see them.
func (r Root) ResolveInRoot(p string) (StorePath, error) {
	if !path.IsAbs(p) {
		return StorePath{}, fmt.Errorf("storepath: %s: not an absolute path", p)
	}
	return r.followLinks(nixroot.New(r.Dir), p, p, "")
}

// followLinks is the one store-path resolver: it walks p inside in and
// stops as soon as the path is in the store (or under alias, the host
// store dir), without looking at the store path itself: whether it is
// valid is the database's business, as for Nix.
func (r Root) followLinks(in nixroot.Root, given, p, alias string) (StorePath, error) {
	store := r.Store()
	w, err := in.Walk(p, true, func(q string) bool {
		return inDir(q, store) || (alias != "" && inDir(q, alias))
	})
	switch {
	case err != nil:
		return StorePath{}, fmt.Errorf("storepath: %w", err)
	case w.Stopped:
		q := w.Path
		if alias != "" && inDir(q, alias) {
			q = store + strings.TrimPrefix(q, alias)
		}
		return ToStorePath(store, q)
	case w.Missing:
		return StorePath{}, fmt.Errorf("storepath: %w", &NotInStoreError{Path: given, Store: store, Missing: w.Path, links: w.Links})
	}
	e := &NotInStoreError{Path: given, Store: store, links: w.Links}
	if w.Links > 0 {
		e.LeadsTo = w.Path
	}
	return StorePath{}, fmt.Errorf("storepath: %w", e)
}

// NotInStoreError is returned by Resolve for a path that neither lies in
// the store nor leads there through symlinks. It is a type so that callers
// can re-wrap it under their own prefix without stacking prefixes, or say
// it in their own words.
type NotInStoreError struct {
	Path    string // as given
	Store   string // the logical store dir
	Missing string // the path that does not exist (Path itself, or where its links lead), if any
	LeadsTo string // where Path's links lead, if it is a link
	links   int    // how many links were followed
}

func (e *NotInStoreError) Error() string {
	switch {
	case e.Missing != "" && e.links > 0:
		// Only worth saying for a link target.
		return fmt.Sprintf("%s: not in the store %s (%s does not exist)", e.Path, e.Store, e.Missing)
	case e.LeadsTo != "":
		return fmt.Sprintf("%s: not in the store %s (it leads to %s)", e.Path, e.Store, e.LeadsTo)
	}
	return fmt.Sprintf("%s: not in the store %s", e.Path, e.Store)
}

// inDir reports whether p lies strictly below dir.
func inDir(p, dir string) bool {
	return strings.HasPrefix(p, dir+"/") && len(p) > len(dir)+1
}
