// Command postboot does the NixOS live CD's post-boot commands (load the
// store's registration into the Nix database, touch /etc/NIXOS, set the
// system profile) without Nix: see package postboot. Its flags are in cli.go.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }
