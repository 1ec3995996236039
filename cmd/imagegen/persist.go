package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/nixlive/nixlive/imagegen"
	"github.com/nixlive/nixlive/imagegen/persist"
	"github.com/nixlive/nixlive/internal/bytesize"
)

// persistCmd runs "imagegen persist": the nixlive-rw partition after the
// ISO on a USB stick or in a disk image file.
func persistCmd(ctx context.Context, args []string, stdout, stderr *os.File) error {
	fs := flag.NewFlagSet("imagegen persist", flag.ContinueOnError)
	fs.SetOutput(stderr)
	size := fs.String("size", "", "the partition's size (512M, 1G; default: 256M for a file, all the free space on a device)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: imagegen persist DEVICE|FILE [--size N]\n\n"+
			"Adds a partition labelled %s (ext4) after the live ISO on a USB stick\n"+
			"or in a disk image file (which grows) that holds it, and enters it in the\n"+
			"ISO's MBR and GPT: the stick still boots on BIOS and UEFI. A mounted\n"+
			"device, one too small, and a medium without our ISO are refused.\n\nflags:\n", persist.Label)
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "imagegen persist: want one device or file")
		fs.Usage()
		return errUsage
	}
	o := persist.Options{Target: pos[0]}
	if *size != "" {
		if o.Size, err = persist.ParseSize(*size); err != nil {
			return fmt.Errorf("--size: %w", err)
		}
	}
	res, err := persist.Add(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, describePersist(res, pos[0]))
	return nil
}

// describePersist says what partition was added where.
func describePersist(r *persist.Result, name string) string {
	p := r.Partition
	s := fmt.Sprintf("%s: partition %d %q (ext4, %s) at byte %d, GUID %s", name, p.Number, persist.Label,
		bytesize.Format(p.Bytes()), p.Offset(), p.GUID)
	if r.NewSize != r.OldSize {
		s += fmt.Sprintf("; grown from %d to %d bytes", r.OldSize, r.NewSize)
	}
	if r.Partitions != "" {
		s += "; " + r.Partitions
	}
	return s
}

// checkPersistence checks "imagegen build --persistence SIZE" before the
// build: the partition goes after a plain ISO in a file or on a device.
func checkPersistence(size string, spec *imagegen.Spec, out string, nixOutput bool) (int64, error) {
	if size == "" {
		return 0, nil
	}
	n, err := persist.ParseSize(size)
	if err != nil {
		return 0, fmt.Errorf("--persistence: %w", err)
	}
	if n < persist.MinSize {
		return 0, fmt.Errorf("--persistence %s is too small: a %s partition needs at least %d bytes (16 MiB)", size, persist.Label, persist.MinSize)
	}
	if spec.CompressImage != "" {
		return 0, fmt.Errorf("--persistence with compressImage %q: the partition goes after a plain ISO, not a compressed one", spec.CompressImage)
	}
	if fi, err := os.Stat(out); nixOutput || (err == nil && fi.IsDir()) {
		return 0, fmt.Errorf("--persistence with -o %s, a directory: give a disk image file or a device", out)
	}
	return n, nil
}

// buildPersist adds the nixlive-rw partition after the ISO just built
// into a file or written onto a device; a device that kept its partition
// (see imagegen write) keeps it as it is.
func buildPersist(ctx context.Context, res *imagegen.ISOResult, size int64, stdout *os.File) error {
	target := res.Path
	if w := res.Written; w != nil {
		target = w.Target
		if k := w.Kept; k != nil {
			fmt.Fprintf(stdout, "%s: its %s partition %d (%s) is kept as it was: --persistence %s not applied\n",
				target, persist.Label, k.Number, bytesize.Format(k.Bytes()), bytesize.Format(size))
			return nil
		}
	}
	r, err := persist.Add(ctx, persist.Options{Target: target, Size: size})
	if err != nil {
		return fmt.Errorf("--persistence: %w (the ISO is on %s, without the partition)", err, target)
	}
	fmt.Fprintln(stdout, describePersist(r, target))
	return nil
}
