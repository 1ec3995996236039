package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/nixlive/nixlive/imagegen"
	"github.com/nixlive/nixlive/imagegen/squashfs"
	"github.com/nixlive/nixlive/internal/nix/storepath"
	"github.com/nixlive/nixlive/live"
)

// storeCmd runs "imagegen store": the squashfs image of a store closure.
func storeCmd(ctx context.Context, args []string, stdout, stderr *os.File) error {
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
	if msg := checkStoreFlags(*out, *regOut, *blockSize, roots); msg != "" {
		fmt.Fprintln(stderr, "imagegen store: "+msg)
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
		Output:             *out,
		RegistrationOutput: *regOut,
		Roots:              roots,
		Store:              storepath.Root{Dir: *storeRoot, StoreDir: *storeDir},
		ClosureInfo:        *closureInfo,
		Compression:        c,
		BlockSize:          *blockSize,
		ExactLevel:         *exact,
		Epoch:              epoch,
		Progress:           stderr,
	}
	res, err := img.Build(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d store paths; %s\n", *out, len(res.Closure.Paths), describeContent(res.Content))
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
