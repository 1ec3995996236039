package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nixlive/nixlive/demo"
	"github.com/nixlive/nixlive/imagegen/squashfs"
)

// demoCmd runs "imagegen demo": the demo live system from this source tree.
func demoCmd(ctx context.Context, args []string, stdout, stderr *os.File) error {
	fs := flag.NewFlagSet("imagegen demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kdir := os.Getenv("NIXLIVE_KERNEL_DIR")
	if kdir == "" {
		kdir = "/var/cache/nixlive/kernel" // where scripts/kernel.sh puts Debian's cloud kernel
	}
	out := fs.String("o", "", "output `dir`ectory (required)")
	kernel := fs.String("kernel", filepath.Join(kdir, "vmlinuz"), "the kernel `image`")
	modDir := fs.String("kernel-modules", filepath.Join(kdir, "modules"), "the kernel's module `dir`ectory, DIR/lib/modules/VER")
	comp := fs.String("squashfs-compression", "zstd -Xcompression-level 19", "store image compression, as NixOS's isoImage.squashfsCompression")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: imagegen demo -o DIR [flags]\n\n"+
			"Builds the demo live system with this source tree's stage 2 and demo-init, u-root's\n"+
			"shell and commands, the kernel and its modules: DIR/store, DIR/initrd,\n"+
			"DIR/nixlive-demo.iso and DIR/demo.json (what was built, for make demo).\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlagsOnly(fs, args, out); err != nil {
		return err
	}
	c, err := squashfs.ParseCompression(*comp)
	if err != nil {
		return fmt.Errorf("--squashfs-compression: %w", err)
	}
	// A modules link (scripts/kernel.sh) names the version directory.
	mods, err := filepath.EvalSymlinks(*modDir)
	if err != nil {
		return fmt.Errorf("--kernel-modules: %w (scripts/kernel.sh fetches Debian's cloud kernel)", err)
	}
	d := &demo.System{Dir: *out, Kernel: *kernel, ModulesDir: mods, Compression: c, Progress: stderr, Log: stderr}
	m, err := d.Build(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d store paths, system %s\n", m.ISO, len(m.StorePaths), m.System)
	return nil
}
