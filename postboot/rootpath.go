package postboot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/nixlive/nixlive/internal/nix/storepath"
)

// maxLinks bounds the symlinks followed while resolving one path, as the
// kernel's ELOOP limit does.
const maxLinks = 40

// root is a host directory seen as "/" by everything postboot does, the
// way Nix's `--store DIR` sees DIR: every path postboot is given or
// writes (the database, profiles, GC roots, /etc/NIXOS) is a path inside
// it, and symlinks met on the way are resolved inside it too (an absolute
// link target starts again at the root, ".." stops at the root), as if
// postboot ran chrooted there.
type root string

// host returns the host path of the in-root path p, with the symlinks in
// all its components resolved inside the root; components that do not
// exist are kept as they are.
func (r root) host(p string) (string, error) {
	q, err := r.resolve(p, true)
	if err != nil {
		return "", err
	}
	return r.join(q), nil
}

// join maps a resolved in-root path onto the host without looking at it.
func (r root) join(p string) string {
	if string(r) == "/" {
		return p
	}
	return filepath.Join(string(r), p)
}

func splitPath(p string) []string {
	return strings.Split(p, "/")
}

// walk follows p's components inside the root, symlinks included (the
// last component's only if followLast). Before each component, stop may
// end the walk with a result; a component that does not exist ends it
// through missing. Otherwise walk returns the path it reached, stopped
// false.
func (r root) walk(p string, followLast bool,
	stop func(cur string, pending []string) (string, bool, error),
	missing func(next string, pending []string) (string, error),
) (result string, stopped bool, err error) {
	pending := splitPath(p)
	cur := "/"
	links := 0
	for len(pending) > 0 {
		if stop != nil {
			if res, ok, err := stop(cur, pending); ok || err != nil {
				return res, true, err
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
			return next, true, nil
		}
		fi, err := os.Lstat(r.join(next))
		if errors.Is(err, fs.ErrNotExist) {
			res, err := missing(next, pending)
			return res, true, err
		}
		if err != nil {
			return "", true, err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > maxLinks {
			return "", true, fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(r.join(next))
		if err != nil {
			return "", true, err
		}
		if path.IsAbs(target) {
			cur = "/"
		}
		pending = append(splitPath(target), pending...)
	}
	return cur, false, nil
}

// resolve returns the in-root path that p designates once the symlinks in
// its components are followed inside the root (the last component only if
// followLast). From the first component that does not exist on, the rest
// of p is taken as written.
func (r root) resolve(p string, followLast bool) (string, error) {
	res, _, err := r.walk(p, followLast, nil, func(next string, pending []string) (string, error) {
		return path.Join(append([]string{next}, pending...)...), nil
	})
	return res, err
}

func allEmpty(cs []string) bool {
	for _, c := range cs {
		if c != "" && c != "." {
			return false
		}
	}
	return true
}

// resolveStorePath maps p, an in-root path, to the store path it leads to,
// as Nix's followLinksToStorePath does but inside the root: p may be a
// store path, a path below one (mapped to that store path), or a chain of
// links that ends there. Following stops as soon as the path is in the
// store, without looking at the store path itself (Nix does not either:
// whether it is valid is the database's business).
func (r root) resolveStorePath(p string) (string, error) {
	if !path.IsAbs(p) {
		return "", fmt.Errorf("%s: not an absolute path", p)
	}
	res, stopped, err := r.walk(p, true,
		func(cur string, pending []string) (string, bool, error) {
			// As Nix: once the path (what is resolved so far and the rest
			// as written) is in the store, stop.
			if sp, ok := inStore(path.Join(append([]string{cur}, pending...)...)); ok {
				res, err := checkStorePath(p, sp)
				return res, true, err
			}
			return "", false, nil
		},
		func(next string, _ []string) (string, error) {
			return "", fmt.Errorf("%s: %s does not exist (inside the root %s)", p, next, string(r))
		})
	if stopped || err != nil {
		return res, err
	}
	return "", fmt.Errorf("path '%s' is not in the Nix store (it leads to %s)", p, res)
}

// inStore reports whether the canonical in-root path p lies below the
// store directory, and returns the top-level store entry it is in.
func inStore(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, storeDir+"/")
	if !ok || rest == "" {
		return "", false
	}
	base, _, _ := strings.Cut(rest, "/")
	return storeDir + "/" + base, true
}

func checkStorePath(p, sp string) (string, error) {
	if _, err := storepath.Parse(storeDir, sp); err != nil {
		return "", fmt.Errorf("%s leads to %s, which is not a valid store path: %v", p, sp, err)
	}
	return sp, nil
}
