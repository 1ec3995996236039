// Command stage1 is PID 1 of the nixlive initrd: see package stage1.
package main

import "github.com/nixlive/nixlive/stage1"

func main() { stage1.Main() }
