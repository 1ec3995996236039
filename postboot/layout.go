package postboot

import (
	"errors"
	"io/fs"
	"os"
	"os/user"
	"path"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/live"
)

// The store's directories inside the root, as a default Nix build (and
// NixOS) has them.
const (
	storeDir    = live.Store
	stateDir    = "/nix/var/nix"
	dbDir       = stateDir + "/db"
	profilesDir = stateDir + "/profiles"
	gcRootsDir  = stateDir + "/gcroots"
)

// reservedSize is the size of db/reserved, Nix's default `reserved-size`:
// space Nix sets aside so that the garbage collector can still open the
// database on a full disk.
const reservedSize = 8 << 20

// prepareState creates what Nix's local store creates whenever it is
// opened (Nix 2.8's LocalStore constructor), so that our run leaves the
// same tree behind as `nix-store --load-db` or `nix-env --set` would:
//
//	/nix/store  /nix/store/.links
//	/nix/var/nix/{profiles,temproots,db}
//	/nix/var/nix/gcroots, and gcroots/profiles -> /nix/var/nix/profiles when gcroots is new
//	/nix/var/nix/{profiles,gcroots}/per-user (mode 0755)
//	/nix/var/nix/{profiles,gcroots}/per-user/<user> (mode 0755, owned by the user)
//	/nix/var/nix/db/reserved (8 MiB, mode 0600)
//	/nix/var/nix/db/big-lock (mode 0600), held in shared mode until unlock
//
// With tryExclusive, the big lock is taken in exclusive mode if no one
// holds it (exclusive reports whether it was), which Nix does only to
// upgrade the schema: no Nix process has the store open meanwhile.
//
// Directories are made with mode 0777 less the umask, as Nix makes them.
// What Nix additionally does as root when build-users-group is set
// (/nix/store owned by root:nixbld, mode 1775) is stage 2's job.
func (r root) prepareState(tryExclusive bool) (unlock func(), exclusive bool, err error) {
	for _, d := range []string{storeDir, storeDir + "/.links", profilesDir, stateDir + "/temproots", dbDir} {
		if err := r.mkdirAll(d); err != nil {
			return nil, false, err
		}
	}
	gcHost, err := r.host(gcRootsDir)
	if err != nil {
		return nil, false, err
	}
	if _, err := os.Lstat(gcHost); errors.Is(err, fs.ErrNotExist) {
		if err := r.mkdirAll(gcRootsDir); err != nil {
			return nil, false, err
		}
		// The link's target is the in-root path: the root is "/" for
		// whoever reads it (the booted system, or Nix with --store).
		if err := os.Symlink(profilesDir, path.Join(gcHost, "profiles")); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, false, err
		}
	}
	perUser := []string{profilesDir + "/per-user", gcRootsDir + "/per-user"}
	for _, d := range perUser {
		if err := r.mkdirChmod(d, 0o755, -1, -1); err != nil {
			return nil, false, err
		}
	}
	if name := userName(); name != "" {
		for _, d := range perUser {
			if err := r.mkdirChmod(d+"/"+name, 0o755, os.Getuid(), os.Getgid()); err != nil {
				return nil, false, err
			}
		}
	}
	dbHost, err := r.host(dbDir)
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

func (r root) mkdirAll(p string) error {
	h, err := r.host(p)
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
func (r root) mkdirChmod(p string, mode fs.FileMode, uid, gid int) error {
	h, err := r.host(p)
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
