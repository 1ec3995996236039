// Package nixroot resolves paths inside a host directory that stands for
// "/", the way Nix's `--store DIR` sees DIR (a chroot store): an in-root
// path such as /nix/var/nix/db names DIR/nix/var/nix/db, and symlinks met
// on the way are followed inside DIR too (an absolute target starts again
// at DIR, ".." stops at DIR), as if the caller ran chrooted there.
//
// It is path arithmetic over lstat and readlink, not a security boundary:
// it does not guard against the tree changing while it walks (no openat2
// RESOLVE_IN_ROOT), and it knows nothing of the store (see storepath).
package nixroot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// MaxLinks bounds the symlinks followed while resolving one path, as the
// kernel's ELOOP limit does, so that a loop is an error rather than a hang.
const MaxLinks = 40

// Root is a host directory seen as "/". The zero value and "/" are the
// real root.
type Root string

// New returns the root for the host directory dir ("" means "/"), made
// absolute so that later changes of the working directory do not move it.
func New(dir string) Root {
	if dir == "" {
		return "/"
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Root(filepath.Clean(dir))
	}
	return Root(abs)
}

// Host returns the host path of the in-root path p, with the symlinks in
// all its components resolved inside the root; components that do not
// exist are kept as they are.
func (r Root) Host(p string) (string, error) {
	q, err := r.Resolve(p, true)
	if err != nil {
		return "", err
	}
	return r.Join(q), nil
}

// Join maps a resolved in-root path onto the host without looking at it.
func (r Root) Join(p string) string {
	if r == "" || r == "/" {
		return p
	}
	return filepath.Join(string(r), p)
}

// Resolve returns the in-root path that p designates once the symlinks in
// its components are followed inside the root (the last component only if
// followLast). From the first component that does not exist on, the rest
// of p is taken as written.
func (r Root) Resolve(p string, followLast bool) (string, error) {
	w, err := r.Walk(p, followLast, nil)
	return w.Path, err
}

// Walked says where a Walk ended.
type Walked struct {
	// Path is the in-root path reached: where stop said to stop (what
	// was resolved so far, the rest as written), or from the first
	// missing component on as written, or the fully resolved path.
	Path    string
	Stopped bool // stop returned true for Path
	Missing bool // a component of Path does not exist
	Links   int  // symlinks followed on the way
}

// Walk follows p's components inside the root, symlinks included (the
// last component's only if followLast). Before each component, stop (if
// not nil) is asked about the path so far joined with the rest as
// written, and may end the walk there; a component that does not exist
// ends it too. A loop of links fails with syscall.ELOOP.
func (r Root) Walk(p string, followLast bool, stop func(p string) bool) (Walked, error) {
	pending := strings.Split(p, "/")
	cur := "/"
	links := 0
	for len(pending) > 0 {
		if stop != nil {
			if q := path.Join(append([]string{cur}, pending...)...); stop(q) {
				return Walked{Path: q, Stopped: true, Links: links}, nil
			}
		}
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		if !followLast && allEmpty(pending) {
			return Walked{Path: next, Links: links}, nil
		}
		fi, err := os.Lstat(r.Join(next))
		if errors.Is(err, fs.ErrNotExist) {
			return Walked{Path: path.Join(append([]string{next}, pending...)...), Missing: true, Links: links}, nil
		}
		if err != nil {
			return Walked{}, err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > MaxLinks {
			return Walked{}, fmt.Errorf("%s: %w", p, syscall.ELOOP)
		}
		target, err := os.Readlink(r.Join(next))
		if err != nil {
			return Walked{}, err
		}
		if path.IsAbs(target) {
			cur = "/"
		}
		pending = append(strings.Split(target, "/"), pending...)
	}
	if stop != nil && stop(cur) {
		return Walked{Path: cur, Stopped: true, Links: links}, nil
	}
	return Walked{Path: cur, Links: links}, nil
}

func allEmpty(cs []string) bool {
	for _, c := range cs {
		if c != "" && c != "." {
			return false
		}
	}
	return true
}
