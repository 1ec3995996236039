package postboot

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
)

// ProfileResult says what SetProfile did.
type ProfileResult struct {
	StorePath     string // what the target resolved to
	Generation    int    // the generation the profile points to now
	Link          string // that generation's link, an in-root path
	NewGeneration bool   // the generation was created
	Switched      bool   // the profile link was changed
}

// SetProfile makes the profile (an in-root path such as
// /nix/var/nix/profiles/system) point at target, as
// `nix-env -p profile --set target` does (Nix 2.8's createGeneration and
// switchLink):
//
//   - target is resolved through symlinks, inside the root, to a store
//     path, which must be valid in the database;
//   - the generations are the links profile-<N>-link beside the profile;
//     if the newest one points at the store path already, it is reused,
//     otherwise profile-<N+1>-link -> /nix/store/... is made, with its GC
//     root /nix/var/nix/gcroots/auto/<nix32(sha1(link path))> -> link path;
//   - the profile becomes a link to that generation, relative
//     (profile -> profile-<N>-link).
//
// Every link is made under a temporary name and renamed over its final
// name, in the order GC root, generation, profile: killed at any point,
// the profile is either unchanged or switched, and a rerun finishes the
// job (a GC root whose generation was never made is a stale root that
// Nix's collector removes). Unlike nix-env, a profile link that is
// already right is left alone rather than made again.
//
// The profile's directory must exist, as for nix-env. The GC lock
// (/nix/var/nix/gc.lock) is held shared meanwhile, as Nix holds it when
// it adds a root, so that a garbage collection cannot run in between.
func (s *Store) SetProfile(profile, target string) (res ProfileResult, err error) {
	r := s.root()
	if !path.IsAbs(profile) {
		return res, fmt.Errorf("profile %s: not an absolute path", profile)
	}
	profile = path.Clean(profile)
	if res.StorePath, err = r.resolveStorePath(target); err != nil {
		return res, err
	}

	unlock, _, err := r.prepareState(false)
	if err != nil {
		return res, err
	}
	defer unlock()
	if err := s.checkValid(res.StorePath); err != nil {
		return res, err
	}
	stateHost, err := r.host(stateDir)
	if err != nil {
		return res, err
	}
	unlockGC, err := lockFile(path.Join(stateHost, "gc.lock"), unix.LOCK_SH)
	if err != nil {
		return res, err
	}
	defer unlockGC()

	profDir, name := path.Dir(profile), path.Base(profile)
	profDirHost, err := r.host(profDir)
	if err != nil {
		return res, err
	}
	gens, err := findGenerations(profDirHost, name)
	if err != nil {
		return res, err
	}
	removeStaleTemps(profDirHost, "."+name)

	var last generation
	if len(gens) > 0 {
		last = gens[len(gens)-1]
	}
	if len(gens) > 0 && last.target == res.StorePath {
		res.Generation = last.number
	} else {
		res.Generation = last.number + 1
		res.NewGeneration = true
		genName := fmt.Sprintf("%s-%d-link", name, res.Generation)
		genHost := filepath.Join(profDirHost, genName)
		if fi, err := os.Lstat(genHost); err == nil {
			t, _ := os.Readlink(genHost)
			if _, in := inStore(path.Clean(t)); fi.Mode()&fs.ModeSymlink == 0 || !in {
				return res, fmt.Errorf("cannot create symlink '%s'; already exists", path.Join(profDir, genName))
			}
		}
		if err := s.addIndirectRoot(path.Join(profDir, genName)); err != nil {
			return res, err
		}
		if err := replaceLink(res.StorePath, genHost); err != nil {
			return res, err
		}
	}
	res.Link = path.Join(profDir, fmt.Sprintf("%s-%d-link", name, res.Generation))

	// switchLink: relative, as the generation is in the profile's
	// directory.
	want := path.Base(res.Link)
	profHost := filepath.Join(profDirHost, name)
	if cur, err := os.Readlink(profHost); err == nil && cur == want {
		return res, nil
	}
	if err := replaceLink(want, profHost); err != nil {
		return res, err
	}
	res.Switched = true
	return res, nil
}

// checkValid fails unless p is a valid path in the database; nix-env
// builds (or substitutes) the path it is given, which for a path that is
// not valid in a store without substituters fails.
func (s *Store) checkValid(p string) error {
	r := s.root()
	dbHost, err := r.host(dbDir)
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

// addIndirectRoot registers link (an in-root path) as a GC root the way
// Nix's addIndirectRoot does: /nix/var/nix/gcroots/auto/<h> -> link, where
// h is the nix32 SHA-1 of the link's path as the store's users see it.
func (s *Store) addIndirectRoot(link string) error {
	r := s.root()
	autoHost, err := r.host(gcRootsDir + "/auto")
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
