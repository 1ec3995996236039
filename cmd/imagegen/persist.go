package main

import (
	"context"
	"flag"
	"fmt"
	"os"

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
