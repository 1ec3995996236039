package imagegen

import (
	"fmt"
	"os"

	"github.com/nixlive/nixlive/imagegen/squashfs"
	"github.com/nixlive/nixlive/live"
)

// prebuilt is what checkPrebuilt learns of a --squashfs file.
type prebuilt struct {
	size       int64 // bytes
	storePaths int   // entries of the root directory but the registration
}

// checkPrebuilt checks that p is a squashfs 4.0 image with a sane
// superblock, and reads its root directory: one entry per store path, and
// the registration (NixOS's nix-store.squashfs layout).
func checkPrebuilt(p string) (*prebuilt, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("--squashfs: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("--squashfs: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("--squashfs %s: not a regular file", p)
	}
	names, err := squashfs.RootNames(f, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("--squashfs %s: %w", p, err)
	}
	n := 0
	for _, name := range names {
		if name != live.RegistrationName {
			n++
		}
	}
	return &prebuilt{size: fi.Size(), storePaths: n}, nil
}
