package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nixlive/nixlive/imagegen/initrd"
)

// initrdCmd runs "imagegen initrd": stage 1 and the kernel modules it needs.
func initrdCmd(ctx context.Context, args []string, stdout, stderr *os.File) error {
	fs := flag.NewFlagSet("imagegen initrd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output `file` (required)")
	modDir := fs.String("kernel-modules", "", "the kernel's module `dir`ectory, DIR/lib/modules/VER")
	mods := fs.String("modules", "", "comma-separated `list` of modules to load at boot (default: a set for CDs, USB sticks and virtio disks)")
	stage1Bin := fs.String("stage1", "", "prebuilt stage1 `binary` (default: go build it from this source tree)")
	rescue := fs.Bool("rescue-shell", false, "add a shell and core commands for boot.shell_on_fail")
	nixOutput := fs.Bool("nix-output", false, "-o is a Nix output `dir`ectory (default $out) that gets DIR/initrd, as NixOS's system.build.initialRamdisk")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: imagegen initrd -o OUT [flags]\n       imagegen initrd --nix-output [-o DIR] [flags]\n\nWrites a zstd-compressed cpio initrd whose /init is stage1.\n\nflags:\n")
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if *nixOutput && *out == "" {
		*out = os.Getenv("out")
	}
	if len(pos) != 0 || *out == "" {
		fs.Usage()
		return errUsage
	}
	if *nixOutput {
		// NixOS boots ${initialRamdisk}/initrd (system.boot.loader.initrdFile).
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return err
		}
		*out = filepath.Join(*out, "initrd")
	}
	in := &initrd.Initrd{Output: *out, Stage1: *stage1Bin, ModulesDir: *modDir, RescueShell: *rescue}
	if *mods != "" {
		in.Modules, in.Explicit = strings.Split(*mods, ","), true
	}
	res, err := in.Build(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d entries\n", *out, res.Entries)
	return nil
}
