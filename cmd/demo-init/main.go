// Command demo-init is the demo live system's init: it reports what the
// booted live CD looks like from inside, then powers off or opens a shell.
// See internal/demoinit.
package main

import "github.com/nixlive/nixlive/demo/demoinit"

func main() { demoinit.Main() }
