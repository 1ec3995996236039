package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/nixlive/nixlive/imagegen/squashfs"
)

// checkStoreFlags says what is wrong with imagegen store's command line
// ("" if nothing): a block size squashfs cannot use, no store paths, or
// the registration written over the image.
func checkStoreFlags(out, regOut string, blockSize int, roots []string) string {
	if bs := blockSize; bs < 4096 || bs > squashfs.DefaultBlockSize || bs&(bs-1) != 0 {
		return fmt.Sprintf("--block-size %d: want a power of two from 4096 to 1048576", bs)
	}
	if len(roots) == 0 {
		return "no store paths given"
	}
	if regOut != "" && sameFile(out, regOut) {
		return fmt.Sprintf("--registration-out %s and -o %s are the same file", regOut, out)
	}
	return ""
}

// sameFile tells whether two output paths name the same file, existing
// or not: the same inode when both exist (hard links too), else the same
// path once symbolic links (dangling ones included) and . and .. are
// resolved.
func sameFile(a, b string) bool {
	if fa, err := os.Stat(a); err == nil {
		if fb, err := os.Stat(b); err == nil {
			return os.SameFile(fa, fb)
		}
	}
	return resolvePath(a) == resolvePath(b)
}

// resolvePath follows p's symbolic links, even one whose target does not
// exist yet, and returns the absolute path it leads to.
func resolvePath(p string) string {
	for range 40 {
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			break
		}
		t, err := os.Readlink(p)
		if err != nil {
			break
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(p), t)
		}
		p = t
	}
	dir, base := filepath.Split(p)
	if dir == "" {
		dir = "."
	}
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	abs, err := filepath.Abs(filepath.Join(dir, base))
	if err != nil {
		return filepath.Clean(p)
	}
	return abs
}
