// Package profile sets a Nix profile as `nix-env -p PROFILE --set PATH`
// does (Nix 2.8's src/libstore/profiles.cc, createGeneration and
// switchLink): numbered generation links beside the profile, each with its
// GC root in gcroots/auto, and the profile as a relative link to the
// newest. It works inside a root directory that stands for "/" (Nix's
// `--store DIR`, see nixroot).
//
// It does not install, remove or roll back, does not delete old
// generations, and does not build or substitute the target: a path that
// is not valid in the database is refused. Unlike nix-env, a profile link
// that is right already is left alone; temporary links are named
// .NAME.tmp-PID-RANDOM, so that one a kill leaves never looks like a
// generation; and adding a GC root waits for a running collection
// (gc.lock) instead of telling the collector through its socket.
package profile

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/nix-community/go-nix/pkg/nixbase32"
	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/internal/nix/nixdb"
	"github.com/nixlive/nixlive/internal/nix/nixroot"
	"github.com/nixlive/nixlive/internal/nix/storepath"
)

// Result says what Set did.
type Result struct {
	StorePath     string // what the target resolved to
	Generation    int    // the generation the profile points to now
	Link          string // that generation's link, an in-root path
	NewGeneration bool   // the generation was created
	Switched      bool   // the profile link was changed
}

// Set makes the profile (an in-root path such as
// /nix/var/nix/profiles/system) of the store s point at target, as
// `nix-env -p profile --set target` does. target is resolved through
// symlinks, inside the root, to a store path, which must be valid in the
// database. The newest generation is reused if it points there already,
// else profile-<N+1>-link is made with its GC root; the profile becomes a
// relative link to it. Every link is made under a temporary name and
// renamed into place, GC root first: killed at any point, the profile is
// unchanged or switched, and a rerun finishes the job.
func Set(s *nixdb.Store, profile, target string) (res Result, err error) {
	if !path.IsAbs(profile) {
		return res, fmt.Errorf("profile %s: not an absolute path", profile)
	}
	profile = path.Clean(profile)
	r := nixroot.New(s.Root)
	if res.StorePath, err = resolve(r, target); err != nil {
		return res, err
	}
	// The profile's directory must exist, as for nix-env. The GC lock is
	// held shared meanwhile, as Nix holds it when it adds a root.
	unlock, err := s.Open()
	if err != nil {
		return res, err
	}
	defer unlock()
	if err := s.CheckValid(res.StorePath); err != nil {
		// nix-env builds (or substitutes) the path it is given, which for
		// a path that is not valid in a store without substituters fails.
		return res, err
	}
	unlockGC, err := s.LockGC()
	if err != nil {
		return res, err
	}
	defer unlockGC()

	profDir, name := path.Dir(profile), path.Base(profile)
	profDirHost, err := r.Host(profDir)
	if err != nil {
		return res, err
	}
	if err := useGeneration(r, profDir, profDirHost, name, &res); err != nil {
		return res, err
	}
	res.Link = path.Join(profDir, fmt.Sprintf("%s-%d-link", name, res.Generation))
	res.Switched, err = switchLink(filepath.Join(profDirHost, name), path.Base(res.Link))
	return res, err
}

// resolve maps target to the store path it leads to inside the root,
// refused in nix-env's words (Nix's Store::followLinksToStore).
func resolve(r nixroot.Root, target string) (string, error) {
	sp, err := storepath.Root{Dir: string(r)}.ResolveInRoot(target)
	var nis *storepath.NotInStoreError
	switch {
	case errors.As(err, &nis) && nis.Missing != "":
		return "", fmt.Errorf("path '%s' is not in the Nix store: %s does not exist (inside the root %s)", target, nis.Missing, r)
	case errors.As(err, &nis) && nis.LeadsTo != "":
		return "", fmt.Errorf("path '%s' is not in the Nix store (it leads to %s)", target, nis.LeadsTo)
	case errors.As(err, &nis):
		return "", fmt.Errorf("path '%s' is not in the Nix store", target)
	case err != nil:
		return "", err
	}
	return sp.Abs(nixdb.StoreDir), nil
}

// useGeneration sets res.Generation to the newest generation of profile
// name in profDir if it points at res.StorePath already, else makes the
// next one (createGeneration), GC root first.
func useGeneration(r nixroot.Root, profDir, profDirHost, name string, res *Result) error {
	gens, err := findGenerations(profDirHost, name)
	if err != nil {
		return err
	}
	removeStaleTemps(profDirHost, "."+name)
	var last generation
	if len(gens) > 0 {
		last = gens[len(gens)-1]
	}
	if len(gens) > 0 && last.target == res.StorePath {
		res.Generation = last.number
		return nil
	}
	res.Generation = last.number + 1
	res.NewGeneration = true
	genName := fmt.Sprintf("%s-%d-link", name, res.Generation)
	genHost := filepath.Join(profDirHost, genName)
	if fi, err := os.Lstat(genHost); err == nil {
		t, _ := os.Readlink(genHost)
		if fi.Mode()&fs.ModeSymlink == 0 || !inStore(path.Clean(t)) {
			return fmt.Errorf("cannot create symlink '%s'; already exists", path.Join(profDir, genName))
		}
	}
	if err := addIndirectRoot(r, path.Join(profDir, genName)); err != nil {
		return err
	}
	return replaceLink(res.StorePath, genHost)
}

// switchLink points the profile link at its generation, relative as the
// generation is in the profile's directory (Nix's switchLink); a link
// that is already right is left alone, where nix-env makes it again.
func switchLink(profHost, want string) (switched bool, err error) {
	if cur, err := os.Readlink(profHost); err == nil && cur == want {
		return false, nil
	}
	if err := replaceLink(want, profHost); err != nil {
		return false, err
	}
	return true, nil
}

// inStore reports whether the in-root path p lies below the store
// directory.
func inStore(p string) bool {
	rest, ok := strings.CutPrefix(p, nixdb.StoreDir+"/")
	return ok && rest != ""
}

// addIndirectRoot registers link (an in-root path) as a GC root the way
// Nix's addIndirectRoot does: /nix/var/nix/gcroots/auto/<h> -> link, where
// h is the nix32 SHA-1 of the link's path as the store's users see it.
func addIndirectRoot(r nixroot.Root, link string) error {
	autoHost, err := r.Host(nixdb.GCRootsDir + "/auto")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(autoHost, 0o777); err != nil {
		return err
	}
	name := GCRootName(link)
	removeStaleTemps(autoHost, "."+name)
	return replaceLink(link, filepath.Join(autoHost, name))
}

// GCRootName is the name of the GC root Nix makes in gcroots/auto for a
// link at path p.
func GCRootName(p string) string {
	h := sha1.Sum([]byte(p))
	return nixbase32.EncodeToString(h[:])
}

// replaceLink makes link point at target atomically: a link under a
// temporary name beside it, renamed over it. The temporary name starts
// with a dot, so that a leftover (killed before the rename) never looks
// like a generation.
func replaceLink(target, link string) error {
	dir, base := filepath.Split(link)
	for {
		tmp := filepath.Join(dir, fmt.Sprintf(".%s.tmp-%d-%d", base, os.Getpid(), rand.Uint32()))
		err := os.Symlink(target, tmp)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := os.Rename(tmp, link); err != nil {
			os.Remove(tmp)
			return err
		}
		return nil
	}
}

// removeStaleTemps removes the temporary links replaceLink leaves behind
// when killed, for names starting with prefix (which starts with a dot),
// unless the process that made them is still running.
func removeStaleTemps(dir, prefix string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, prefix) || e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		i := strings.LastIndex(n, ".tmp-")
		if i < 0 {
			continue
		}
		pidStr, _, _ := strings.Cut(n[i+len(".tmp-"):], "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 {
			continue
		}
		if err := unix.Kill(pid, 0); err == nil || err == unix.EPERM {
			continue // its maker is alive (or the pid was reused: then it is removed next time)
		}
		os.Remove(filepath.Join(dir, n))
	}
}

// generation is a profile generation link.
type generation struct {
	number int
	name   string
	target string
}

// findGenerations lists the generations of profile name in dir, oldest
// first. A name is a generation as Nix's parseName decides: name, "-",
// a number, then "-link" (Nix only looks for the first "-link", so
// "system-3-link.tmp-1-2", a leftover of Nix's own temporary links,
// counts as generation 3 too; the proper name wins a tie).
func findGenerations(dir, name string) ([]generation, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("opening directory '%s': %w", dir, err)
	}
	var gens []generation
	for _, e := range entries {
		n, ok := parseGeneration(name, e.Name())
		if !ok {
			continue
		}
		t, _ := os.Readlink(filepath.Join(dir, e.Name()))
		gens = append(gens, generation{number: n, name: e.Name(), target: t})
	}
	slices.SortFunc(gens, func(a, b generation) int {
		if a.number != b.number {
			return a.number - b.number
		}
		// The canonical name last: it is the one taken as the newest.
		ac := a.name == fmt.Sprintf("%s-%d-link", name, a.number)
		bc := b.name == fmt.Sprintf("%s-%d-link", name, b.number)
		switch {
		case ac == bc:
			return strings.Compare(a.name, b.name)
		case ac:
			return 1
		default:
			return -1
		}
	})
	return gens, nil
}

func parseGeneration(profile, entry string) (int, bool) {
	s, ok := strings.CutPrefix(entry, profile+"-")
	if !ok {
		return 0, false
	}
	i := strings.Index(s, "-link")
	if i <= 0 {
		return 0, false
	}
	for _, c := range s[:i] {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s[:i], 10, 32)
	if err != nil {
		return 0, false
	}
	return int(n), true
}
