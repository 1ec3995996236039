// Command stage1 is part of the nixlive live CD; it is built in issue [3/4].
// Until then it only says so, so that the module's layout and build are in
// place from the start.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "stage1: not implemented yet (issue [3/4])")
	os.Exit(1)
}
