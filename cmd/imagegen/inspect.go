package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/nixlive/nixlive/imagegen"
)

// inspectCmd runs "imagegen inspect": what an ISO holds.
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
