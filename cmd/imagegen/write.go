package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/nixlive/nixlive/imagegen"
	"github.com/nixlive/nixlive/imagegen/persist"
)

// writeCmd runs "imagegen write": an ISO onto a USB stick, or into a file.
func writeCmd(ctx context.Context, args []string, stdout, stderr *os.File) error {
	fs := flag.NewFlagSet("imagegen write", flag.ContinueOnError)
	fs.SetOutput(stderr)
	noVerify := fs.Bool("no-verify", false, "do not read back what was written")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: imagegen write ISO DEVICE|FILE [flags]\n\n"+
			"Copies ISO onto a block device (a USB stick: refused when mounted or too\n"+
			"small, synced, its partition table re-read) or into a file (atomically),\n"+
			"then reads it back and compares. A symlink is written through.\n\n"+
			"A stick or disk image file with a %s partition after its ISO\n"+
			"(imagegen persist) keeps it: the new ISO is written in place before it\n"+
			"(refused if it would not fit) and the partition entered again in its\n"+
			"tables, its file system untouched.\n\nflags:\n", persist.Label)
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		fmt.Fprintln(stderr, "imagegen write: want an ISO and a device or file")
		fs.Usage()
		return errUsage
	}
	iw := &imagegen.ImageWrite{Source: pos[0], Dest: pos[1], NoVerify: *noVerify, Progress: stderr}
	res, err := iw.Write(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, describeWrite(res, pos[0]))
	return nil
}

// describeWrite says what was written where and how it was checked.
func describeWrite(r *imagegen.WriteResult, src string) string {
	s := fmt.Sprintf("%s: %d bytes written to %s", src, r.Bytes, r.Target)
	if r.Verified {
		s += ", read back and verified"
	} else {
		s += ", not verified (" + r.Unchecked + ")"
	}
	if k := r.Kept; k != nil {
		s += fmt.Sprintf("; %s partition %d kept (%d bytes at byte %d, not formatted)", persist.Label, k.Number, k.Bytes(), k.Offset())
	}
	if r.Partitions != "" {
		s += "; " + r.Partitions
	}
	return s
}
