package imagegen

// The write pass checks that the image holds what its registration says.
//
// Each store path is serialised as a NAR from the very bytes the squashfs
// writer takes in, and that NAR's hash and size must be the registration's.
// This is exact, it covers closures from a closureInfo (whose hashes are
// Nix's, not ours) as well as our own hash pass, and it is cheap: the
// framing is a few bytes per entry, the walk is the one the writer needs
// anyway (NAR order is name order, as in AddPath), and the SHA-256 runs on
// a goroutine of its own (nar.AsyncSum), beside the adding goroutine, at
// about 1 GB/s, far from the compressor's pace at NixOS's level 19. Per-file
// stamps from the hash pass (size, mtime, ctime, inode, device, taken by
// fstat on the open file) only name the file when the NAR differs: a touch
// or a hard link (nix-store --optimise) changes them but not the bytes. A
// file that changes while the writer reads it is caught by the NAR walk's
// fstat after the read, and one that changes after it does not matter: the
// image holds the bytes that were hashed.

import (
	"fmt"
	"io/fs"
	"path"
	"path/filepath"

	"github.com/nixlive/nixlive/imagegen/squashfs"
	"github.com/nixlive/nixlive/internal/nix/closure"
	"github.com/nixlive/nixlive/internal/nix/nar"
	"github.com/nixlive/nixlive/internal/nix/registration"
)

// addStorePath adds store path p to w under its base name, everything
// owned by root, and checks it against c's registration of p.
func (s *StoreImage) addStorePath(w *squashfs.Writer, sum *nar.AsyncSum, c *closure.Closure, p string) error {
	rec, ok := c.Record(p)
	if !ok {
		return fmt.Errorf("imagegen: store path %s has no registration", p)
	}
	name := path.Base(p)
	var changed error // the first file whose stamp differs, named if the NAR does
	walkErr := nar.Walk(sum, s.Store.HostPath(p), func(e *nar.Entry) error {
		file := path.Join(p, e.Path)
		if e.Content != nil && s.hashed != nil && changed == nil {
			if was, ok := s.hashed[file]; !ok {
				changed = fmt.Errorf("imagegen: %s appeared while the image was built", file)
			} else if was != e.Stamp {
				changed = fmt.Errorf("imagegen: %s changed while the image was built (%s)", file, was.Diff(e.Stamp, "when hashed", "when written"))
			}
		}
		h := &squashfs.Header{Name: path.Join(name, e.Path), Mode: e.Info.Mode(), ModTime: e.Info.ModTime(), Linkname: e.Target}
		if e.Info.Mode().Type() == 0 {
			h.Size = e.Info.Size()
		} else if !e.Info.Mode().IsDir() && e.Info.Mode().Type() != fs.ModeSymlink {
			return fmt.Errorf("squashfs: %s: special files are not supported", file)
		}
		if err := w.WriteHeader(h); err != nil {
			return err
		}
		if h.Size > 0 {
			if _, err := w.ReadFrom(e.Content); err != nil {
				return fmt.Errorf("squashfs: %s: %w", file, err)
			}
		}
		return nil
	})
	// Always take the sum: it ends this path's stream.
	narHash, narSize := sum.Sum()
	if walkErr != nil {
		return fmt.Errorf("imagegen: store path %s: %w", p, walkErr)
	}
	if narHash == rec.NarHash && narSize == rec.NarSize {
		return nil
	}
	if changed != nil {
		return changed
	}
	got := registration.Record{NarHash: narHash}
	if s.hashed != nil {
		return fmt.Errorf("imagegen: %s changed while the image was built (NAR hash %s, NAR size %d when hashed; %s, %d when written)",
			p, rec.HashString(), rec.NarSize, got.HashString(), narSize)
	}
	where := "the registration"
	if s.ClosureInfo != "" {
		where = filepath.Join(s.ClosureInfo, "registration")
	}
	return fmt.Errorf("imagegen: store path %s does not match its registration in %s (NAR hash %s, NAR size %d there; %s, %d in the store)",
		p, where, rec.HashString(), rec.NarSize, got.HashString(), narSize)
}
