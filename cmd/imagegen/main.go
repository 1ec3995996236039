// Command imagegen builds NixOS live media: see "imagegen help".
package main

import (
	"os"

	"github.com/nixlive/nixlive/imagegen"
)

func main() { os.Exit(imagegen.Main(os.Args[1:], os.Stdout, os.Stderr)) }
