package stage1

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/internal/kmod"
	"github.com/nixlive/nixlive/live"
)

func (b *Boot) moduleDir() string { return path.Join("/lib/modules", b.Release) }

// loadModules loads the initrd's module list with dependencies, then the
// modules that match the hardware present (coldplug).
func (b *Boot) loadModules() error {
	dir := b.moduleDir()
	db, err := kmod.Load(dir)
	if errors.Is(err, fs.ErrNotExist) {
		b.mark("modules", "none in this initrd")
		return nil
	}
	if err != nil {
		return fmt.Errorf("stage1: modules: %w", err)
	}
	b.kmod = db
	names, err := readLines(path.Join(dir, live.ModulesList))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stage1: modules: %w", err)
	}
	files, err := db.Resolve(names...)
	if err != nil {
		return fmt.Errorf("stage1: modules: %w", err)
	}
	n := b.insmod(files)
	b.mark("modules", fmt.Sprintf("%d loaded from %s", n, live.ModulesList))
	if c := b.coldplug(); c > 0 {
		b.mark("coldplug", fmt.Sprintf("%d loaded for the hardware present", c))
	}
	return nil
}

// insmod loads module files (relative to the module directory) in order;
// a module already loaded, or one whose hardware is absent, is not an
// error.
func (b *Boot) insmod(files []string) int {
	n := 0
	for _, f := range files {
		if b.loaded[f] {
			continue
		}
		b.loaded[f] = true
		p := path.Join(b.moduleDir(), f)
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			b.Log.Warn("module not loaded", "file", f, "err", err)
			continue
		}
		err = unix.FinitModule(fd, "", 0)
		unix.Close(fd)
		switch {
		case err == nil:
			n++
		case errors.Is(err, unix.EEXIST):
		case errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
			b.Log.Info("module found no hardware", "file", f)
		default:
			b.Log.Warn("module not loaded", "file", f, "err", err)
		}
	}
	return n
}

// coldplug loads the initrd's modules that match the modalias of a device
// in /sys, so real hardware (USB sticks, NVMe, SATA) works without a list.
func (b *Boot) coldplug() int {
	if b.kmod == nil {
		return 0
	}
	seen := map[string]bool{}
	var names []string
	filepath.WalkDir("/sys/devices", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && d.Type()&fs.ModeSymlink != 0 {
			return filepath.SkipDir
		}
		if d.Name() != "modalias" {
			return nil
		}
		alias, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		for _, m := range b.kmod.MatchAlias(strings.TrimSpace(string(alias))) {
			if !seen[m] {
				seen[m] = true
				names = append(names, m)
			}
		}
		return nil
	})
	var files []string
	for _, n := range names {
		if fs, err := b.kmod.Resolve(n); err == nil {
			files = append(files, fs...)
		}
	}
	return b.insmod(files)
}

func readLines(p string) ([]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}
