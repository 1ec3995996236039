package copyfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Tree copies the tree at src to dst (which must not exist; its parent is
// created), keeping file modes, symlink targets and modification times,
// symlinks' own included, as a store image holds them. Owners are not
// kept, and only regular files, directories and symlinks are copied.
func Tree(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return tree(src, dst)
}

func tree(src, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	case fi.IsDir():
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
		entries, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := tree(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				return err
			}
		}
		// The mode last, after the children were created in it.
		if err := os.Chmod(dst, fi.Mode().Perm()); err != nil {
			return err
		}
	case fi.Mode().IsRegular():
		if err := Copy(src, dst, 0o600); err != nil {
			return err
		}
		if err := os.Chmod(dst, fi.Mode().Perm()); err != nil {
			return err
		}
	default:
		return fmt.Errorf("copy %s: not a file, directory or symlink (%v)", src, fi.Mode().Type())
	}
	t := unix.NsecToTimespec(fi.ModTime().UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, []unix.Timespec{t, t}, unix.AT_SYMLINK_NOFOLLOW)
}
