// Package demo builds the demo live system ("imagegen demo", "make demo")
// from this source tree alone, with Debian's kernel and boot loaders: a
// small store whose paths carry the names "nix-store --add" gives them
// (stage 2, u-root's shell and core commands, demo-init, the kernel, the
// initrd, /etc and the system top-level with its activate script), its
// registration, the initrd and the live ISO, built with imagegen and
// imagegen/initrd.
//
// It is a demonstration and a test fixture, not a NixOS system: there is no
// Nix evaluation, no systemd and no real activation beyond /etc.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/imagegen"
	"github.com/nixlive/nixlive/imagegen/initrd"
	"github.com/nixlive/nixlive/imagegen/squashfs"
	"github.com/nixlive/nixlive/internal/atomicfile"
	"github.com/nixlive/nixlive/internal/copyfile"
	"github.com/nixlive/nixlive/internal/kmod"
	"github.com/nixlive/nixlive/internal/nix/nar"
	"github.com/nixlive/nixlive/internal/nix/storepath"
	"github.com/nixlive/nixlive/live"
)

// VolumeID labels the demo ISO, NixOS style.
const VolumeID = "nixlive-demo-25.05-x86_64"

// Manifest names what "imagegen demo" wrote; it is DIR/demo.json, read
// by "make demo" and the end-to-end test.
type Manifest struct {
	ISO          string   `json:"iso"`
	VolumeID     string   `json:"volumeID"`
	System       string   `json:"system"`       // the system's store path
	StoreRoot    string   `json:"storeRoot"`    // DIR/store, standing for /
	Registration string   `json:"registration"` // the registration on the ISO, on the host
	StorePaths   []string `json:"storePaths"`   // the closure of System, sorted
	KernelParams []string `json:"kernelParams"`
}

// System builds the demo live system: a small store whose paths carry the
// names "nix-store --add" gives them (stage 2, u-root's shell and core
// commands, demo-init, the kernel, the initrd, /etc and the system
// top-level), the initrd, and the live ISO, all with this module's tools.
type System struct {
	Dir        string // output directory
	Kernel     string // the kernel image (vmlinuz)
	ModulesDir string // the kernel's DIR/lib/modules/VER
	// Compression of the store image (NixOS's zstd 19 by default).
	Compression squashfs.Compression
	Progress    *os.File
	Log         io.Writer // one line per step; nil for none
}

// SystemModules are the kernel modules in the system's kernel-modules
// (with what they need).
var SystemModules = []string{"efivarfs"}

// Commands are u-root's commands in the demo system's sw/bin.
var Commands = initrd.RescueCommands

// storeMTime is the mtime Nix gives everything in a valid store path;
// demoEpoch dates the ISO (NixOS's default SOURCE_DATE_EPOCH).
const (
	storeMTime = 1
	demoEpoch  = 315532800
)

// Build writes DIR/store (the store), DIR/initrd, DIR/nixlive-demo.iso and
// DIR/demo.json.
func (d *System) Build(ctx context.Context) (*Manifest, error) {
	if d.Kernel == "" || d.ModulesDir == "" {
		return nil, fmt.Errorf("demo: need the kernel and its modules (scripts/kernel.sh fetches Debian's)")
	}
	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		return nil, err
	}
	storeRoot := filepath.Join(d.Dir, "store")
	if err := removeStore(storeRoot); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(d.Dir, ".build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	st := &demoStore{root: storepath.Root{Dir: storeRoot}, tmp: tmp}
	if err := os.MkdirAll(st.root.HostStoreDir(), 0o755); err != nil {
		return nil, err
	}
	in, err := d.buildInputs(ctx, tmp)
	if err != nil {
		return nil, err
	}
	d.logf("laying out the store in %s", storeRoot)
	paths := map[string]string{}
	for _, s := range d.storeSteps(in, paths) {
		p, err := st.add(s.name, s.fill)
		paths[s.key] = p
		if err != nil {
			return nil, err
		}
	}
	iso := filepath.Join(d.Dir, "nixlive-demo.iso")
	d.logf("writing %s", iso)
	res, err := d.writeISO(ctx, st.root, paths, iso)
	if err != nil {
		return nil, err
	}
	m, err := d.writeManifest(st.root, paths["system"], iso)
	if err != nil {
		return nil, err
	}
	d.logf("%s: %d store paths, system %s", res.Path, res.StorePaths, m.System)
	return m, nil
}

// inputs are what the store paths are made of, built from this source
// tree: stage 2, demo-init, u-root's commands (a directory) and the initrd.
type inputs struct {
	stage2, demoInit, uroot, initrd string
}

func (d *System) buildInputs(ctx context.Context, tmp string) (*inputs, error) {
	d.logf("building stage 2, demo-init and u-root's commands (go build, static)")
	bins := filepath.Join(tmp, "bin")
	if err := os.Mkdir(bins, 0o755); err != nil {
		return nil, err
	}
	in := &inputs{uroot: filepath.Join(tmp, "uroot"), initrd: filepath.Join(d.Dir, "initrd")}
	var err error
	if in.stage2, err = initrd.BuildCommand(ctx, "github.com/nixlive/nixlive/cmd/stage2", bins); err != nil {
		return nil, err
	}
	if in.demoInit, err = initrd.BuildCommand(ctx, "github.com/nixlive/nixlive/cmd/demo-init", bins); err != nil {
		return nil, err
	}
	if err := initrd.BuildURoot(ctx, in.uroot, Commands); err != nil {
		return nil, err
	}
	d.logf("building the initrd for %s", d.version())
	if _, err := (&initrd.Initrd{Output: in.initrd, ModulesDir: d.ModulesDir}).Build(ctx); err != nil {
		return nil, err
	}
	return in, nil
}

// version is the kernel's, from its module directory's name.
func (d *System) version() string { return filepath.Base(d.ModulesDir) }

// storeStep makes one store path: key names it in paths, name is its name
// after the hash, fill writes its contents into dir.
type storeStep struct {
	key, name string
	fill      func(dir string) error
}

// storeSteps are the demo's store paths, each after those it refers to:
// a step's fill reads the store paths of the earlier ones from paths.
func (d *System) storeSteps(in *inputs, paths map[string]string) []storeStep {
	version := d.version()
	return []storeStep{
		{"stage2", "nixlive-stage2", func(dir string) error {
			return copyInto(in.stage2, filepath.Join(dir, "bin/stage2"), 0o555)
		}},
		{"demo-init", "nixlive-demo-init", func(dir string) error {
			return copyInto(in.demoInit, filepath.Join(dir, "bin/demo-init"), 0o555)
		}},
		{"u-root", "u-root-core-0.16.0", func(dir string) error { return fillURoot(dir, in.uroot) }},
		{"kernel", "linux-" + version, func(dir string) error {
			return copyInto(d.Kernel, filepath.Join(dir, "bzImage"), 0o444)
		}},
		// The kernel's modules the booted system loads itself, as NixOS's
		// kernel-modules: efivarfs, a module in Debian's kernels, which
		// demo-init mounts to read the Secure Boot state.
		{"kernel-modules", "kernel-modules", func(dir string) error {
			db, err := kmod.Load(d.ModulesDir)
			if err != nil {
				return err
			}
			return db.WriteSubset(filepath.Join(dir, "lib/modules", version), SystemModules)
		}},
		{"initrd", "initrd-linux-" + version, func(dir string) error {
			return copyInto(in.initrd, filepath.Join(dir, "initrd"), 0o444)
		}},
		{"etc", "etc", fillEtc},
		{"system-path", "system-path", func(dir string) error { return fillSystemPath(dir, paths) }},
		{"system", "nixos-system-nixlive-demo-25.05", func(dir string) error { return fillSystem(dir, paths, version) }},
	}
}

// fillURoot holds u-root's commands, with gosh as sh.
func fillURoot(dir, uroot string) error {
	for _, c := range Commands {
		if err := copyInto(filepath.Join(uroot, c), filepath.Join(dir, "bin", c), 0o555); err != nil {
			return err
		}
	}
	return os.Symlink("gosh", filepath.Join(dir, "bin/sh"))
}

// fillEtc holds the files the activation script links into /etc.
func fillEtc(dir string) error {
	for name, text := range map[string]string{
		"hostname":   "nixlive-demo\n",
		"os-release": "NAME=NixOS\nID=nixos\nVERSION_ID=\"25.05\"\nPRETTY_NAME=\"NixOS 25.05 (nixlive demo)\"\nVARIANT=\"nixlive live CD demo\"\n",
		"motd":       "This is the nixlive demo live system. The store is a squashfs on the ISO under a tmpfs overlay.\n",
	} {
		if err := writeInto(filepath.Join(dir, "etc", name), text, 0o444); err != nil {
			return err
		}
	}
	return nil
}

// fillSystemPath is the system's sw: links to u-root's commands and to
// demo-init, also as init.
func fillSystemPath(dir string, paths map[string]string) error {
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		return err
	}
	for _, c := range append([]string{"sh"}, Commands...) {
		if err := os.Symlink(paths["u-root"]+"/bin/"+c, filepath.Join(dir, "bin", c)); err != nil {
			return err
		}
	}
	for _, l := range []string{"demo-init", "init"} {
		if err := os.Symlink(paths["demo-init"]+"/bin/demo-init", filepath.Join(dir, "bin", l)); err != nil {
			return err
		}
	}
	return nil
}

// fillSystem is the system's top-level, as NixOS lays it out: init (stage
// 2), kernel, initrd, sw, etc, activate and the small files that describe
// the system.
func fillSystem(dir string, paths map[string]string, version string) error {
	for link, target := range map[string]string{
		"init":           paths["stage2"] + "/bin/stage2",
		"kernel":         paths["kernel"] + "/bzImage",
		"initrd":         paths["initrd"] + "/initrd",
		"kernel-modules": paths["kernel-modules"],
		"sw":             paths["system-path"],
		"etc":            paths["etc"] + "/etc",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			return err
		}
	}
	files := map[string]string{
		"activate":       activateScript(paths),
		"kernel-params":  strings.Join(demoKernelParams, " "),
		"nixos-version":  "25.05-nixlive-demo",
		"system":         "x86_64-linux",
		"kernel-version": version,
	}
	for name, text := range files {
		mode := fs.FileMode(0o444)
		if name == "activate" {
			mode = 0o555
		}
		if err := writeInto(filepath.Join(dir, name), text, mode); err != nil {
			return err
		}
	}
	return nil
}

// writeISO writes the demo's live ISO with imagegen's ISO builder.
func (d *System) writeISO(ctx context.Context, store storepath.Root, paths map[string]string, iso string) (*imagegen.ISOResult, error) {
	system := paths["system"]
	epoch := int64(demoEpoch)
	spec := &imagegen.Spec{
		IsoName:             "nixlive-demo.iso",
		VolumeID:            VolumeID,
		System:              system,
		Kernel:              paths["kernel"] + "/bzImage",
		Initrd:              paths["initrd"] + "/initrd",
		KernelParams:        demoKernelParams,
		StoreContents:       []string{system},
		SquashfsCompression: d.Compression,
		Boot:                imagegen.BootSpec{BIOS: true, EFI: true, USB: true, Timeout: 1, Label: "nixlive demo", SerialConsole: true},
		SourceDateEpoch:     &epoch,
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	return (&imagegen.ISO{Spec: spec, Store: store, Output: iso, Progress: d.Progress}).Build(ctx)
}

// writeManifest writes the registration on the ISO to DIR (for the tests
// to compare with) and DIR/demo.json.
func (d *System) writeManifest(store storepath.Root, system, iso string) (*Manifest, error) {
	reg := filepath.Join(d.Dir, live.RegistrationName)
	img := &imagegen.StoreImage{Roots: []string{system}, Store: store}
	clo, regData, err := img.Closure()
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(reg, regData, 0o644); err != nil {
		return nil, err
	}
	m := &Manifest{
		ISO: iso, VolumeID: VolumeID, System: system, StoreRoot: store.Dir, Registration: reg,
		StorePaths: clo.Paths, KernelParams: demoKernelParams,
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(filepath.Join(d.Dir, "demo.json"), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	return m, nil
}

// demoKernelParams are the demo's kernel parameters beyond NixOS's own:
// quiet, because the serial console is slow under TCG and stage 1 and 2
// write their own lines anyway.
var demoKernelParams = []string{"quiet"}

func (d *System) logf(format string, args ...any) {
	if d.Log != nil {
		fmt.Fprintf(d.Log, "imagegen demo: "+format+"\n", args...)
	}
}

// activateScript is the demo's activation script (NixOS's activate, cut
// down to /etc): run by stage 2 with u-root's shell.
func activateScript(paths map[string]string) string {
	return fmt.Sprintf(`#!%s/bin/gosh
# Activation script of the nixlive demo system, NixOS's activate reduced to
# /etc: /etc/static is the system's etc, the files link through it.
PATH=%s/bin
echo "activate: /etc/static -> %s/etc"
mkdir -p /etc /root /var/log
ln -s -f -T %s/etc /etc/static
for f in hostname os-release motd; do
  ln -s -f -T /etc/static/$f /etc/$f
done
`, paths["u-root"], paths["system-path"], paths["etc"], paths["etc"])
}

// demoStore adds paths to a store under construction.
type demoStore struct {
	root storepath.Root
	tmp  string
}

// add fills a fresh directory, makes it canonical as Nix does (read-only
// modes, mtime 1), hashes its NAR and renames it to the path "nix-store
// --add" gives it.
func (s *demoStore) add(name string, fill func(dir string) error) (string, error) {
	dir := filepath.Join(s.tmp, "path-"+name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	if err := fill(dir); err != nil {
		return "", fmt.Errorf("demo: store path %s: %w", name, err)
	}
	if err := canonicalize(dir); err != nil {
		return "", err
	}
	h, _, err := nar.Hash(dir)
	if err != nil {
		return "", err
	}
	p, err := storepath.SourcePath(name, h, s.root.Store())
	if err != nil {
		return "", err
	}
	if err := os.Rename(dir, s.root.HostPath(p)); err != nil {
		return "", err
	}
	return p, nil
}

// canonicalize gives a tree Nix's modes and mtimes: files 0444 or 0555,
// directories 0555, every mtime 1.
func canonicalize(root string) error {
	var dirs []string
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		t := time.Unix(storeMTime, 0)
		switch {
		case e.Type()&fs.ModeSymlink != 0:
			ts := []unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
			return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
		case e.IsDir():
			dirs = append(dirs, p)
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o444)
		if fi.Mode()&0o100 != 0 {
			mode = 0o555
		}
		if err := os.Chmod(p, mode); err != nil {
			return err
		}
		return os.Chtimes(p, t, t)
	})
	if err != nil {
		return err
	}
	// Deepest first, so that a parent's mtime is set after its children.
	for i := len(dirs) - 1; i >= 0; i-- {
		t := time.Unix(storeMTime, 0)
		if err := os.Chmod(dirs[i], 0o555); err != nil {
			return err
		}
		if err := os.Chtimes(dirs[i], t, t); err != nil {
			return err
		}
	}
	return nil
}

// removeStore deletes a store left by an earlier run, whose directories
// are read-only.
func removeStore(root string) error {
	if _, err := os.Lstat(root); os.IsNotExist(err) {
		return nil
	}
	filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
	return os.RemoveAll(root)
}

func copyInto(src, dst string, mode fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return copyfile.Copy(src, dst, mode)
}

func writeInto(dst, data string, mode fs.FileMode) error {
	if err := os.MkdirAll(path.Dir(filepath.ToSlash(dst)), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, []byte(data), mode)
}
