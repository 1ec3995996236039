package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/nixlive/nixlive/imagegen"
	"github.com/nixlive/nixlive/internal/nix/storepath"
	"github.com/nixlive/nixlive/live"
)

// buildCmd runs "imagegen build": a live ISO from a spec.
func buildCmd(ctx context.Context, args []string, stdout, stderr *os.File) error {
	fs := flag.NewFlagSet("imagegen build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output ISO `file`, or a directory to hold the spec's isoName (required, but for --nix-output)")
	storeRoot := fs.String("store-root", "", "`dir` standing for / when reading store paths, as Nix's --store DIR")
	storeDir := fs.String("store-dir", storepath.DefaultStoreDir, "logical store `dir`ectory")
	sqfs := fs.String("squashfs", "", "use this prebuilt "+live.StoreImage+" `file` instead of building one from storeContents")
	closureInfo := fs.String("closure-info", "", "closureInfo `dir` (store-paths + registration) of storeContents and system, instead of scanning the store")
	noVerify := fs.Bool("no-verify", false, "with -o a block device: do not read back what was written")
	specFile := fs.String("spec", "", "the spec `file` (JSON), instead of the SPEC argument")
	nixOutput := fs.Bool("nix-output", false, "-o is a Nix output directory (default $out), laid out as make-iso9660-image.nix's: iso/<isoName>, nix-support/system, nix-support/hydra-build-products")
	system := fs.String("system", "x86_64-linux", "with --nix-output: the `system` written to nix-support/system")
	persistence := fs.String("persistence", "", "then add a nixlive-rw partition of this `size` (512M, 1G) after the ISO, as imagegen persist: -o FILE becomes a disk image, -o DEVICE gets it on the stick")
	strictSB := fs.Bool("strict-secure-boot", false, "refuse to build an ISO that firmware with Secure Boot on would refuse (an unsigned loader, or a kernel shim does not trust)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: imagegen build SPEC.json|--spec SPEC.json -o OUT.iso|DIR|/dev/sdX [flags]\n"+
			"       imagegen build --spec SPEC.json --nix-output [-o DIR] [--system SYSTEM] [flags]\n\n"+
			"Writes a live ISO that boots on BIOS and UEFI, from a CD or a USB stick;\n"+
			"-o a block device writes it onto the stick, checked (see imagegen write).\n\nflags:\n")
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if *specFile != "" {
		pos = append(pos, *specFile)
	}
	if *nixOutput && *out == "" {
		*out = os.Getenv("out")
	}
	if len(pos) != 1 || *out == "" {
		fmt.Fprintln(stderr, "imagegen build: want one spec (SPEC or --spec) and -o")
		fs.Usage()
		return errUsage
	}
	spec, err := imagegen.ReadSpec(pos[0])
	if err != nil {
		return err
	}
	persistSize, err := checkPersistence(*persistence, spec, *out, *nixOutput)
	if err != nil {
		return err
	}
	output := *out
	if *nixOutput {
		if output, err = nixOutputISODir(*out); err != nil {
			return err
		}
	}
	b := &imagegen.ISO{Spec: spec, Store: storepath.Root{Dir: *storeRoot, StoreDir: *storeDir}, Output: output, Progress: stderr, Squashfs: *sqfs, ClosureInfo: *closureInfo, NoVerify: *noVerify, StrictSecureBoot: *strictSB}
	res, err := b.Build(ctx)
	if err != nil {
		return err
	}
	if *nixOutput {
		if err := writeNixSupport(*out, *system, res.Path); err != nil {
			return err
		}
	}
	if res.SecureBootWarning != "" {
		fmt.Fprintf(stderr, "imagegen build: warning: Secure Boot: %s\n", res.SecureBootWarning)
	}
	fmt.Fprintf(stdout, "%s: %d store paths, %s %d bytes\n", res.Path, res.StorePaths, live.StoreImage, res.Squashfs)
	if res.Content.Content > 0 {
		fmt.Fprintf(stdout, "%s: %s\n", live.StoreImage, describeContent(res.Content))
	}
	if res.Written != nil {
		fmt.Fprintln(stdout, describeWrite(res.Written, res.Path))
	}
	if persistSize != 0 {
		return buildPersist(ctx, res, persistSize, stdout)
	}
	return nil
}
