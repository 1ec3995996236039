// Command stage2 is PID 1 after stage 1's switch_root: see package stage2.
package main

import "github.com/nixlive/nixlive/stage2"

func main() { stage2.Main() }
