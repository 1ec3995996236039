// Command postboot does the NixOS live CD's post-boot commands (load the
// store's registration into the Nix database, touch /etc/NIXOS, set the
// system profile) without Nix: see package postboot.
package main

import (
	"os"

	"github.com/nixlive/nixlive/postboot"
)

func main() { os.Exit(postboot.Main(os.Args[1:], os.Stderr)) }
