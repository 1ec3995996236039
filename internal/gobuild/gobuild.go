// Package gobuild runs "go build" for the programs nixlive builds from its
// own source tree: the boot-time binaries that go into an initrd or a
// store (static, reproducible) and the host tools the tests and scripts
// drive. One place holds the flags, so every caller builds the same bytes
// and shares Go's build cache (the Makefile uses the same flags).
package gobuild

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// StaticFlags make a binary whose bytes depend on the source and the Go
// toolchain only: no file paths, no VCS stamp, no build ID, no symbols.
var StaticFlags = []string{"-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid="}

// StaticEnv builds for the machines nixlive boots, without cgo, so the
// binary needs no libc in the initrd or the store.
var StaticEnv = []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64"}

// Static builds pkgs (import paths or ./relative package paths) as static
// binaries into out: a file for one package, a directory (ending in "/",
// created) for several.
func Static(ctx context.Context, out string, pkgs ...string) error {
	if strings.HasSuffix(out, "/") {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
	}
	return run(ctx, StaticEnv, append(append(append([]string{"build"}, StaticFlags...), "-o", out), pkgs...))
}

// StaticCgoFlags make a static binary of a program that needs cgo
// (imagegen, for zstd), linked by the C linker with libc inside, as
// reproducible as StaticFlags. The osusergo and netgo tags keep os/user
// and net off glibc's NSS, which a static binary cannot load (and a Nix
// build sandbox does not have).
var StaticCgoFlags = []string{"-tags=osusergo,netgo", "-trimpath", "-buildvcs=false",
	"-ldflags=-linkmode external -extldflags -static -s -w -buildid="}

// StaticCgoEnv turns cgo on for StaticCgo.
var StaticCgoEnv = []string{"CGO_ENABLED=1", "GOOS=linux", "GOARCH=amd64"}

// StaticCgo builds pkg, a program that needs cgo, as a static binary into
// the file out: one with no interpreter and no shared library, such as a
// Nix builder in a sandbox with nothing but its store paths needs. The
// Makefile's imagegen-static target uses the same flags.
func StaticCgo(ctx context.Context, out, pkg string) error {
	return run(ctx, StaticCgoEnv, append(append(append([]string{"build"}, StaticCgoFlags...), "-o", out), pkg))
}

// Host builds pkg for this machine into the file out, with the
// environment's settings (cgo as CGO_ENABLED says), as "make build" does.
func Host(ctx context.Context, out, pkg string) error {
	return run(ctx, nil, []string{"build", "-o", out, pkg})
}

func run(ctx context.Context, env, args []string) error {
	cmd := exec.CommandContext(ctx, goCommand(), args...)
	cmd.Env = append(os.Environ(), env...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		pkgs := args[len(args)-1]
		for i, a := range args {
			if a == "-o" {
				pkgs = strings.Join(args[i+2:], " ")
			}
		}
		return fmt.Errorf("go build %s: %v\n%s", pkgs, err, msg)
	}
	return nil
}

// goCommand is the go command of PATH, else the one of GOROOT (as under
// "go test", which sets GOROOT but may run with a PATH without go).
func goCommand() string {
	if _, err := exec.LookPath("go"); err != nil && os.Getenv("GOROOT") != "" {
		return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	return "go"
}
