// Command imagegen builds NixOS live media: the store image, the live ISO,
// the initrd and the demo system. Each subcommand parses its own flags in
// the file named after it; the work is done by the imagegen, imagegen/initrd
// and demo packages. See "imagegen help".
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

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
