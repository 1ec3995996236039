// Command imagegen builds NixOS live media: the store image, the live ISO,
// the initrd and the demo system. Each subcommand parses its own flags in
// the file named after it; the work is done by the imagegen, imagegen/initrd
// and demo packages. See "imagegen help".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nixlive/nixlive/internal/atomicfile"
)

func main() {
	atomicfile.OnStale = func(p string, age time.Duration) {
		fmt.Fprintf(os.Stderr, "imagegen: removed %s, left by an interrupted run %s ago\n", p, age.Round(time.Second))
	}
	os.Exit(runInterruptible(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: imagegen COMMAND [flags] [args]

commands:
  store   write the squashfs image of a store closure (NixOS's nix-store.squashfs)
  build   write a bootable live ISO from a spec (JSON, NixOS isoImage.* names)
  write   copy an ISO onto a USB stick (a block device) or into a file, and check it
  persist add the nixlive-rw partition after the ISO on a USB stick or disk image file
  inspect print an ISO's label, boot entries, partition tables and files
  initrd  write the live CD's initrd: stage1 as /init and the kernel modules it needs
  demo    build the demo live system (store, initrd, ISO) from this source tree
  closure-info  write nixpkgs' closureInfo from a Nix build's .attrs.json (a Nix builder)

Run "imagegen COMMAND -h" for a command's flags.
`

// run runs the imagegen command line and returns the exit code.
func run(args []string, stdout, stderr *os.File) int {
	return exitCode(command(context.Background(), args, stdout, stderr), stderr)
}

// graceTime is how long an interrupted command has to stop and remove its
// temporary files before they are removed from under it.
const graceTime = 5 * time.Second

// runInterruptible is run with SIGINT and SIGTERM stopping the command: its
// context is cancelled, its temporary files are removed, and the exit code
// is 128 + the signal's number (130, 143), with a message that says so. A
// second signal, or a command still running after graceTime, removes the
// temporary files at once.
func runInterruptible(args []string, stdout, stderr *os.File) int {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- command(ctx, args, stdout, stderr) }()
	var sig os.Signal
	select {
	case err := <-done:
		return exitCode(err, stderr)
	case sig = <-sigs:
	}
	cancel()
	name := "imagegen"
	if len(args) > 0 {
		name += " " + args[0]
	}
	code := 128 + int(sig.(syscall.Signal))
	signame := map[os.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM"}[sig]
	var err error
	select {
	case err = <-done:
	case <-sigs:
		err = errors.New("interrupted again: stopped at once")
	case <-time.After(graceTime):
		err = fmt.Errorf("still running %s after the signal: stopped at once", graceTime)
	}
	atomicfile.RemoveTemps()
	switch {
	case err == nil: // it finished before it saw the signal
		return 0
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(stderr, "%s: interrupted by %s: the build was stopped and its temporary files removed\n", name, signame)
	default:
		fmt.Fprintf(stderr, "%s: interrupted by %s: %s; temporary files removed\n", name, signame, strings.TrimPrefix(err.Error(), "imagegen: "))
	}
	return code
}

// command runs one imagegen command line; ctx stops it.
func command(ctx context.Context, args []string, stdout, stderr *os.File) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "store":
		return storeCmd(ctx, args[1:], stdout, stderr)
	case "build":
		return buildCmd(ctx, args[1:], stdout, stderr)
	case "write":
		return writeCmd(ctx, args[1:], stdout, stderr)
	case "inspect":
		return inspectCmd(args[1:], stdout, stderr)
	case "persist":
		return persistCmd(ctx, args[1:], stdout, stderr)
	case "initrd":
		return initrdCmd(ctx, args[1:], stdout, stderr)
	case "demo":
		return demoCmd(ctx, args[1:], stdout, stderr)
	case "closure-info":
		return closureInfoCmd(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "imagegen: unknown command %q\n%s", args[0], usage)
	return errUsage
}

// exitCode prints a command's error and turns it into the exit code.
func exitCode(err error, stderr *os.File) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(stderr, "imagegen: %s\n", strings.TrimPrefix(err.Error(), "imagegen: "))
	return 1
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
