package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nixlive/nixlive/demo"
	"github.com/nixlive/nixlive/imagegen"
	"github.com/nixlive/nixlive/imagegen/initrd"
	"github.com/nixlive/nixlive/imagegen/squashfs"
	"github.com/nixlive/nixlive/internal/nix/storepath"
	"github.com/nixlive/nixlive/live"
)

const usage = `usage: imagegen COMMAND [flags] [args]

commands:
  store   write the squashfs image of a store closure (NixOS's nix-store.squashfs)
  build   write a bootable live ISO from a spec (JSON, NixOS isoImage.* names)
  inspect print an ISO's label, boot entries, partition tables and files
  initrd  write the live CD's initrd: stage1 as /init and the kernel modules it needs
  demo    build the demo live system (store, initrd, ISO) from this source tree

Run "imagegen COMMAND -h" for a command's flags.
`

// run runs the imagegen command line and returns the exit code.
func run(args []string, stdout, stderr *os.File) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "store":
		err = storeCmd(args[1:], stdout, stderr)
	case "build":
		err = buildCmd(args[1:], stdout, stderr)
	case "inspect":
		err = inspectCmd(args[1:], stdout, stderr)
	case "initrd":
		err = initrdCmd(args[1:], stdout, stderr)
	case "demo":
		err = demoCmd(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "imagegen: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if errors.Is(err, errUsage) {
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "imagegen: %s\n", strings.TrimPrefix(err.Error(), "imagegen: "))
		return 1
	}
	return 0
}

var errUsage = errors.New("usage")

// parseInterleaved parses flags that may stand before, between or after the
// positional arguments, which the flag package alone does not allow.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// parseFlagsOnly parses the flags of a command that takes no other
// arguments and needs -o.
func parseFlagsOnly(fs *flag.FlagSet, args []string, out *string) error {
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *out == "" {
		fs.Usage()
		return errUsage
	}
	return nil
}

func storeCmd(args []string, stdout, stderr *os.File) error {
	fs := flag.NewFlagSet("imagegen store", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output `file` (required)")
	storeRoot := fs.String("store-root", "", "`dir` standing for / when reading store paths, as Nix's --store DIR")
	storeDir := fs.String("store-dir", storepath.DefaultStoreDir, "logical store `dir`ectory")
	closureInfo := fs.String("closure-info", "", "closureInfo `dir` (store-paths + registration) giving the closure")
	comp := fs.String("comp", "zstd", "compressor: zstd, gzip, xz, lz4 or none")
	level := fs.Int("level", 0, "compression level (0: zstd 19, gzip 9, lz4 fast)")
	blockSize := fs.Int("block-size", squashfs.DefaultBlockSize, "data block size in `bytes`, a power of two from 4096 to 1048576")
	regOut := fs.String("registration-out", "", "also write the registration to `file`")
	exact := fs.Bool("exact-level", false, "compress every block at the given level, also those that level 1 cannot shrink (zstd 10 and up)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: imagegen store -o OUT.squashfs [flags] STOREPATH...\n\n"+
			"Writes the squashfs image of the closure of STOREPATHs, with %s\n"+
			"at its root and one entry per store path, as NixOS's %s.\n\nflags:\n", live.RegistrationName, live.StoreImage)
		fs.PrintDefaults()
	}
	roots, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if *out == "" {
		fmt.Fprintln(stderr, "imagegen store: -o is required")
		fs.Usage()
		return errUsage
	}
	c, err := squashfs.ParseCompression(*comp)
	if err != nil {
		return err
	}
	if *level != 0 {
		c.Level = *level
		if _, err := squashfs.ParseCompression(fmt.Sprintf("%s:%d", c.Algorithm, c.Level)); err != nil {
			return err
		}
	}
	epoch, err := imagegen.SourceDateEpoch()
	if err != nil {
		return err
	}
	img := &imagegen.StoreImage{
		Roots:       roots,
		Store:       storepath.Root{Dir: *storeRoot, StoreDir: *storeDir},
		ClosureInfo: *closureInfo,
		Compression: c,
		BlockSize:   *blockSize,
		ExactLevel:  *exact,
		Epoch:       epoch,
		Progress:    stderr,
	}
	res, err := img.Build(*out, *regOut)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d store paths; %s\n", *out, len(res.Closure.Paths), describeContent(res.Content))
	return nil
}

func buildCmd(args []string, stdout, stderr *os.File) error {
	fs := flag.NewFlagSet("imagegen build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output ISO `file`, or a directory to hold the spec's isoName (required)")
	storeRoot := fs.String("store-root", "", "`dir` standing for / when reading store paths, as Nix's --store DIR")
	storeDir := fs.String("store-dir", storepath.DefaultStoreDir, "logical store `dir`ectory")
	sqfs := fs.String("squashfs", "", "use this prebuilt "+live.StoreImage+" `file` instead of building one from storeContents")
	closureInfo := fs.String("closure-info", "", "closureInfo `dir` (store-paths + registration) of storeContents and system, instead of scanning the store")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: imagegen build SPEC.json -o OUT.iso [flags]\n\n"+
			"Writes a live ISO that boots on BIOS and UEFI, from a CD or a USB stick.\n\nflags:\n")
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *out == "" {
		fmt.Fprintln(stderr, "imagegen build: want one SPEC file and -o")
		fs.Usage()
		return errUsage
	}
	spec, err := imagegen.ReadSpec(pos[0])
	if err != nil {
		return err
	}
	b := &imagegen.ISOBuild{Spec: spec, Store: storepath.Root{Dir: *storeRoot, StoreDir: *storeDir}, Output: *out, Progress: stderr, Squashfs: *sqfs, ClosureInfo: *closureInfo}
	res, err := b.Build()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d store paths, %s %d bytes\n", res.Path, res.StorePaths, live.StoreImage, res.Squashfs)
	if res.Content.Content > 0 {
		fmt.Fprintf(stdout, "%s: %s\n", live.StoreImage, describeContent(res.Content))
	}
	return nil
}

func initrdCmd(args []string, stdout, stderr *os.File) error {
	fs := flag.NewFlagSet("imagegen initrd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output `file` (required)")
	modDir := fs.String("kernel-modules", "", "the kernel's module `dir`ectory, DIR/lib/modules/VER")
	mods := fs.String("modules", "", "comma-separated `list` of modules to load at boot (default: a set for CDs, USB sticks and virtio disks)")
	stage1Bin := fs.String("stage1", "", "prebuilt stage1 `binary` (default: go build it from this source tree)")
	rescue := fs.Bool("rescue-shell", false, "add a shell and core commands for boot.shell_on_fail")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: imagegen initrd -o OUT [flags]\n\nWrites a zstd-compressed cpio initrd whose /init is stage1.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlagsOnly(fs, args, out); err != nil {
		return err
	}
	in := &initrd.Initrd{Stage1: *stage1Bin, ModulesDir: *modDir, RescueShell: *rescue}
	if *mods != "" {
		in.Modules, in.Explicit = strings.Split(*mods, ","), true
	}
	n, err := in.Build(context.Background(), *out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d entries\n", *out, n)
	return nil
}

func demoCmd(args []string, stdout, stderr *os.File) error {
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
	m, err := d.Build(context.Background())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d store paths, system %s\n", m.ISO, len(m.StorePaths), m.System)
	return nil
}

// describeContent says where a squashfs's content went, so a user sees what
// duplicate detection and the level-1 trial saved.
func describeContent(st squashfs.Stats) string {
	mib := func(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
	s := fmt.Sprintf("%s of content: %s duplicate, %s sparse, %s compressed", mib(st.Content), mib(st.Duplicate), mib(st.Sparse), mib(st.Compressed))
	if st.TrialKept > 0 {
		s += fmt.Sprintf(" (%s of it kept level 1's result)", mib(st.TrialKept))
	}
	return s
}

func inspectCmd(args []string, stdout, stderr *os.File) error {
	fs := flag.NewFlagSet("imagegen inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	noFiles := fs.Bool("no-files", false, "leave out the file list")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: imagegen inspect [flags] IMAGE.iso\n\nPrints the volume ID, the El Torito entries, the partition tables and the files.\n\nflags:\n")
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errUsage
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return err
	}
	defer f.Close()
	if err := imagegen.Inspect(stdout, f, !*noFiles); err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	return nil
}
