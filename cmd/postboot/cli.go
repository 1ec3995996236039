package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/nixlive/nixlive/postboot"
)

const usage = `usage: postboot [flags] [load-db | set-profile]

Does the NixOS live CD's post-boot commands without Nix:
  load-db      nix-store --load-db < REGISTRATION
  set-profile  nix-env -p PROFILE --set SYSTEM
Without a step, runs load-db, touch /etc/NIXOS and set-profile.

flags:
`

// run is the postboot command: args are the arguments after the program
// name; it returns the exit status (0 done, 1 a step failed, 2 bad usage).
func run(args []string, stderr io.Writer) int {
	var c postboot.Config
	var verbose bool
	fs := flag.NewFlagSet("postboot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Root, "root", "/", "the host `DIR` that stands for / (as Nix's --store DIR)")
	fs.StringVar(&c.Registration, "registration", "", "the registration `FILE`, a host path (default <root>"+postboot.DefaultRegistration+")")
	fs.StringVar(&c.Profile, "profile", postboot.DefaultProfile, "the profile, a `PATH` inside the root")
	fs.StringVar(&c.System, "system", postboot.DefaultSystem, "the system: a store `PATH`, or a link inside the root that leads to one")
	fs.BoolVar(&verbose, "v", false, "say what each step did")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	// Flags may come before or after the step.
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(rest) > 1 {
		fmt.Fprintf(stderr, "postboot: one step at most, got %q\n", rest)
		return 2
	}
	var log *slog.Logger
	if verbose {
		log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			},
		}))
	}
	var err error
	switch {
	case len(rest) == 0:
		err = c.Run(log)
	case rest[0] == "load-db":
		err = c.LoadDB(log)
	case rest[0] == "set-profile":
		err = c.SetProfile(log)
	default:
		fmt.Fprintf(stderr, "postboot: unknown step %q (want load-db or set-profile)\n", rest[0])
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "postboot: %v\n", err)
		return 1
	}
	return 0
}
