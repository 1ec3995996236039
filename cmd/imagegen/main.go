// Command imagegen builds NixOS live media: see "imagegen help".
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
