// Package kmodtest makes module trees of compressed modules from a
// kernel's plain ones, as a distribution's build does (NixOS: .ko.xz;
// Debian 13, Fedora: .ko.xz or .ko.zst), for tests: the modules are
// compressed with the xz or zstd command as the kernel's
// scripts/Makefile.modinst runs them and indexed by kmod's depmod. For
// tests only.
package kmodtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/nixlive/nixlive/internal/kmod"
)

// compressors are the commands of scripts/Makefile.modinst, by suffix.
var compressors = map[string][]string{
	".xz":  {"xz", "--check=crc32", "--lzma2=dict=1MiB", "-q", "-f"},
	".zst": {"zstd", "-q", "-f", "--rm", "-T1"},
	".gz":  {"gzip", "-n", "-f"},
}

// Depmod returns the path of kmod's depmod, or an error saying how to get
// it.
func Depmod() (string, error) {
	for _, p := range []string{"depmod", "/usr/sbin/depmod", "/sbin/depmod"} {
		if q, err := exec.LookPath(p); err == nil {
			return q, nil
		}
	}
	return "", fmt.Errorf("depmod not found (install kmod; scripts/deps.sh does)")
}

// Recompress writes under root (root/lib/modules/VER, VER being the base
// name of modDir with symlinks resolved) the modules of the module
// directory modDir that the patterns pick (kmod's Glob) with everything
// they need, each compressed with ext (".xz", ".zst" or ".gz"), and runs
// "depmod -b root VER" on them, which writes modules.dep, modules.alias and
// the rest with the suffixed names. It returns the new module directory.
func Recompress(ctx context.Context, modDir, root, ext string, patterns []string) (string, error) {
	argv, ok := compressors[ext]
	if !ok {
		return "", fmt.Errorf("kmodtest: no compressor for %q", ext)
	}
	if _, err := exec.LookPath(argv[0]); err != nil {
		return "", fmt.Errorf("kmodtest: %s not found: %w", argv[0], err)
	}
	depmod, err := Depmod()
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(modDir)
	if err != nil {
		return "", err
	}
	ver := filepath.Base(real)
	db, err := kmod.Load(real)
	if err != nil {
		return "", err
	}
	names, err := db.Glob(patterns)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(root, "lib", "modules", ver)
	if err := db.WriteSubset(dst, names); err != nil {
		return "", err
	}
	files, err := db.Resolve(names...)
	if err != nil {
		return "", err
	}
	if err := compressAll(ctx, argv, dst, files); err != nil {
		return "", err
	}
	// depmod indexes what is there; the subset's own index files go.
	for _, f := range []string{"modules.dep", "modules.alias", "modules.softdep"} {
		os.Remove(filepath.Join(dst, f))
	}
	cmd := exec.CommandContext(ctx, depmod, "-b", root, ver)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("kmodtest: depmod -b %s %s: %v\n%s", root, ver, err, out)
	}
	return dst, nil
}

// compressAll compresses the files (relative to dir) in place, a few at a
// time.
func compressAll(ctx context.Context, argv []string, dir string, files []string) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, 4)
	)
	for _, f := range files {
		if kmod.Compression(f) != kmod.None {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			p := filepath.Join(dir, f)
			out, err := exec.CommandContext(ctx, argv[0], append(argv[1:], p)...).CombinedOutput()
			if err == nil {
				_, err = os.Stat(p) // the plain file must be gone (xz, gzip and zstd --rm remove it)
				if err == nil {
					err = fmt.Errorf("%s left %s behind", argv[0], p)
				} else {
					err = nil
				}
			}
			if err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("kmodtest: %s %s: %v %s", argv[0], f, err, strings.TrimSpace(string(out)))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}
