package nixdb

import (
	"errors"
	"io/fs"
	"os"
	"os/user"
	"path"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/internal/nix/nixroot"
	"github.com/nixlive/nixlive/internal/nix/storepath"
)

// The store's directories inside the root, as a default Nix build (and
// NixOS) has them.
const (
	StoreDir    = storepath.DefaultStoreDir
	StateDir    = "/nix/var/nix"
	DBDir       = StateDir + "/db"
	ProfilesDir = StateDir + "/profiles"
	GCRootsDir  = StateDir + "/gcroots"
)

// reservedSize is the size of db/reserved, Nix's default `reserved-size`:
// space Nix sets aside so that the garbage collector can still open the
// database on a full disk.
const reservedSize = 8 << 20

// prepareState creates what Nix's local store creates whenever it is
// opened (the LocalStore constructor in src/libstore/local-store.cc), so
// that our run leaves the tree `nix-store --load-db` or `nix-env --set`
// would (see makeStateDirs), and holds the big lock (db/big-lock) shared
// until unlock. With tryExclusive, the lock is taken exclusively if no one
// holds it (exclusive says so), as Nix does only to upgrade the schema.
func prepareState(r nixroot.Root, tryExclusive bool) (unlock func(), exclusive bool, err error) {
	if err := makeStateDirs(r); err != nil {
		return nil, false, err
	}
	dbHost, err := r.Host(DBDir)
	if err != nil {
		return nil, false, err
	}
	// Filling 8 MiB takes a while on tmpfs: meanwhile, get on with the
	// work; unlock waits for it.
	reserved := make(chan struct{})
	go func() {
		reserve(path.Join(dbHost, "reserved"))
		close(reserved)
	}()
	lock := path.Join(dbHost, "big-lock")
	if tryExclusive {
		release, err := lockFile(lock, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { release(); <-reserved }, true, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			<-reserved
			return nil, false, err
		}
	}
	release, err := lockFile(lock, unix.LOCK_SH)
	if err != nil {
		<-reserved
		return nil, false, err
	}
	return func() { release(); <-reserved }, false, nil
}

// makeStateDirs makes the store's directories as Nix does, mode 0777 less
// the umask (/nix/store owned by root:nixbld, mode 1775, is stage 2's job):
//
//	/nix/store  /nix/store/.links  /nix/var/nix/{profiles,temproots,db}
//	/nix/var/nix/gcroots, with gcroots/profiles -> /nix/var/nix/profiles if new
//	/nix/var/nix/{profiles,gcroots}/per-user[/<user>] (0755, the user's)
func makeStateDirs(r nixroot.Root) error {
	for _, d := range []string{StoreDir, StoreDir + "/.links", ProfilesDir, StateDir + "/temproots", DBDir} {
		if err := mkdirAll(r, d); err != nil {
			return err
		}
	}
	gcHost, err := r.Host(GCRootsDir)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(gcHost); errors.Is(err, fs.ErrNotExist) {
		if err := mkdirAll(r, GCRootsDir); err != nil {
			return err
		}
		// The link's target is the in-root path: the root is "/" for
		// whoever reads it (the booted system, or Nix with --store).
		if err := os.Symlink(ProfilesDir, path.Join(gcHost, "profiles")); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	perUser := []string{ProfilesDir + "/per-user", GCRootsDir + "/per-user"}
	for _, d := range perUser {
		if err := mkdirChmod(r, d, 0o755, -1, -1); err != nil {
			return err
		}
	}
	if name := userName(); name != "" {
		for _, d := range perUser {
			if err := mkdirChmod(r, d+"/"+name, 0o755, os.Getuid(), os.Getgid()); err != nil {
				return err
			}
		}
	}
	return nil
}

// userName is the name of the effective user, found as Nix finds it
// (the password database, then $USER). Nix gives up without one; we
// skip the per-user directories instead, which Nix makes again whenever
// it opens the store.
func userName() string {
	uid := os.Geteuid()
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if uid == 0 {
		return "root"
	}
	return ""
}

func mkdirAll(r nixroot.Root, p string) error {
	h, err := r.Host(p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(h, 0o777); err != nil {
		return err
	}
	return nil
}

// mkdirChmod makes directory p and gives it mode (and owner uid:gid
// unless uid < 0).
func mkdirChmod(r nixroot.Root, p string, mode fs.FileMode, uid, gid int) error {
	h, err := r.Host(p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(h, 0o777); err != nil {
		return err
	}
	if err := os.Chmod(h, mode); err != nil {
		return err
	}
	if uid >= 0 {
		if err := os.Lchown(h, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// reserve makes the reserved-space file as Nix does; like Nix, it ignores
// failures (the file only matters on a full disk).
func reserve(p string) {
	if fi, err := os.Stat(p); err == nil && fi.Size() == reservedSize {
		return
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	if unix.Fallocate(int(f.Fd()), 0, 0, reservedSize) != nil {
		_ = f.Truncate(reservedSize)
	}
}

// lockFile opens (creating, mode 0600) and flocks p, as Nix's lock files
// are taken; the lock lasts until unlock is called or the process dies.
func lockFile(p string, how int) (unlock func(), err error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "flock", Path: p, Err: err}
	}
	return func() { f.Close() }, nil
}

// Open opens the store as Nix's local store does (see prepareState): its
// state directories are made and the big lock is held shared until
// unlock is called.
func (s *Store) Open() (unlock func(), err error) {
	unlock, _, err = prepareState(s.root(), false)
	return unlock, err
}

// LockGC holds /nix/var/nix/gc.lock shared until unlock is called, as Nix
// holds it while it adds a GC root, so that a garbage collection cannot
// run in between.
func (s *Store) LockGC() (unlock func(), err error) {
	stateHost, err := s.root().Host(StateDir)
	if err != nil {
		return nil, err
	}
	return lockFile(path.Join(stateHost, "gc.lock"), unix.LOCK_SH)
}
