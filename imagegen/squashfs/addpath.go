package squashfs

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"syscall"
)

// AddPath adds the file, symlink or directory tree at hostPath under name,
// with the host's modes, owners and mtimes. edit, when not nil, may change each
// header before it is written (to set owners, say). Entries are added in name
// order, so the image does not depend on the host's directory order. Device
// nodes, fifos and sockets are an error that names the host path.
func (w *Writer) AddPath(name, hostPath string, edit func(hostPath string, h *Header)) error {
	fi, err := os.Lstat(hostPath)
	if err != nil {
		return fmt.Errorf("squashfs: %w", err)
	}
	h := &Header{Name: name, Mode: fi.Mode(), ModTime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		h.Uid, h.Gid = st.Uid, st.Gid
	}
	switch t := fi.Mode().Type(); t {
	case 0:
		h.Size = fi.Size()
	case fs.ModeDir:
	case fs.ModeSymlink:
		if h.Linkname, err = os.Readlink(hostPath); err != nil {
			return fmt.Errorf("squashfs: %w", err)
		}
	default:
		return fmt.Errorf("squashfs: %s: %s: special files are not supported", hostPath, typeName(t))
	}
	if edit != nil {
		edit(hostPath, h)
	}
	if err := w.WriteHeader(h); err != nil {
		return err
	}
	switch fi.Mode().Type() {
	case 0:
		if fi.Size() == 0 {
			return nil
		}
		f, err := os.Open(hostPath)
		if err != nil {
			return fmt.Errorf("squashfs: %w", err)
		}
		defer f.Close()
		if _, err := w.ReadFrom(f); err != nil {
			return fmt.Errorf("squashfs: %s: %w", hostPath, err)
		}
	case fs.ModeDir:
		d, err := os.Open(hostPath)
		if err != nil {
			return fmt.Errorf("squashfs: %w", err)
		}
		names, err := d.Readdirnames(-1)
		d.Close()
		if err != nil {
			return fmt.Errorf("squashfs: %s: %w", hostPath, err)
		}
		sort.Strings(names)
		for _, n := range names {
			if err := w.AddPath(path.Join(name, n), filepath.Join(hostPath, n), edit); err != nil {
				return err
			}
		}
	}
	return nil
}
