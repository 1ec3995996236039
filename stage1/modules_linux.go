package stage1

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/internal/kmod"
	"github.com/nixlive/nixlive/live"
)

func (b *Boot) moduleDir() string { return path.Join("/lib/modules", b.Release) }

// loadModules loads the initrd's module list with dependencies (the file
// systems of the live layout; with findiso=, every file system the initrd
// has, for the disk that holds the ISO), then the modules that match the
// hardware present (coldplug) until no more do.
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
	from := live.ModulesList
	if b.Cmd.FindISO != "" {
		fsMods, _ := db.Glob([]string{"kernel/fs/*", "kernel/fs/*/*"})
		names = append(names, fsMods...)
		from += " and the file systems (findiso)"
	}
	files, err := db.Resolve(names...)
	if err != nil {
		return fmt.Errorf("stage1: modules: %w", err)
	}
	r := b.insmod(files)
	b.mark("modules", fmt.Sprintf("%d loaded from %s%s", r.n, from, r.note()))
	// A driver's devices (the disks behind a controller, the virtio
	// devices behind virtio_pci) are there when its module has loaded:
	// the kernel waits for the probes a module's init starts. USB ones
	// come later; findMedium coldplugs again while it waits.
	var all loadResult
	for round := 0; round < 8; round++ {
		r := b.coldplugOnce()
		all.add(r)
		if r.n == 0 {
			break
		}
	}
	if all.n > 0 {
		b.mark("coldplug", fmt.Sprintf("%d loaded for the hardware present%s", all.n, all.note()))
	}
	return nil
}

// loadResult counts the modules insmod loaded: n in all, compressed of
// them compressed, here of those decompressed by stage 1.
type loadResult struct{ n, compressed, here int }

func (r *loadResult) add(o loadResult) {
	r.n, r.compressed, r.here = r.n+o.n, r.compressed+o.compressed, r.here+o.here
}

func (r loadResult) note() string { return decompressedNote(r.compressed, r.here) }

// insmod loads module files (relative to the module directory) in order;
// a module already loaded, or one whose hardware is absent, is not an
// error.
func (b *Boot) insmod(files []string) loadResult {
	var r loadResult
	for _, f := range files {
		if b.loaded[f] {
			continue
		}
		b.loaded[f] = true
		here, err := loadModuleFile(path.Join(b.moduleDir(), f), f)
		switch {
		case err == nil:
			r.n++
			if kmod.Compression(f) != kmod.None {
				r.compressed++
			}
			if here {
				r.here++
			}
		case errors.Is(err, unix.EEXIST):
		case errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
			b.Log.Info("module found no hardware", "file", f)
		default:
			b.Log.Warn("module not loaded", "file", f, "err", err)
		}
	}
	return r
}

// coldplug loads the initrd's modules that match the modalias of a device
// in /sys, so real hardware (USB sticks, NVMe, SATA, keyboards) works
// without a list; it returns how many it loaded.
func (b *Boot) coldplug() int { return b.coldplugOnce().n }

func (b *Boot) coldplugOnce() loadResult {
	if b.kmod == nil {
		return loadResult{}
	}
	seen := map[string]bool{}
	var files []string
	for _, alias := range unboundModaliases() {
		for _, m := range b.kmod.MatchAlias(alias) {
			if seen[m] {
				continue
			}
			seen[m] = true
			if fs, err := b.kmod.Resolve(m); err == nil {
				files = append(files, fs...)
			}
		}
	}
	return b.insmod(files)
}

// unboundModaliases returns the modaliases of the devices on every bus
// (/sys/bus/*/devices/*/modalias) that no driver has taken yet: a flat
// look at a few hundred files, where a walk of /sys/devices reads
// thousands of directories (slow under emulation).
func unboundModaliases() []string {
	var out []string
	buses, _ := os.ReadDir("/sys/bus")
	for _, bus := range buses {
		dir := path.Join("/sys/bus", bus.Name(), "devices")
		devs, _ := os.ReadDir(dir)
		for _, d := range devs {
			p := path.Join(dir, d.Name())
			if _, err := os.Lstat(p + "/driver"); err == nil {
				continue
			}
			if a, err := os.ReadFile(p + "/modalias"); err == nil {
				if s := strings.TrimSpace(string(a)); s != "" {
					out = append(out, s)
				}
			}
		}
	}
	return out
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
