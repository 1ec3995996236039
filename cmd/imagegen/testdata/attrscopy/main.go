// Command attrscopy is a Nix builder for tests: it copies the structured
// attributes Nix gave the build (./.attrs.json in the build directory) to
// $out, so that a test can read what a real Nix writes there. It is static
// and needs no shell, as a chroot store's sandbox has none.
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	data, err := os.ReadFile(".attrs.json")
	if err != nil {
		fmt.Fprintln(os.Stderr, "attrscopy:", err)
		os.Exit(1)
	}
	// With __structuredAttrs Nix sets no $out: the outputs are in the
	// attributes.
	var attrs struct {
		Outputs struct{ Out string } `json:"outputs"`
	}
	if err := json.Unmarshal(data, &attrs); err != nil {
		fmt.Fprintln(os.Stderr, "attrscopy:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(attrs.Outputs.Out, data, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "attrscopy:", err)
		os.Exit(1)
	}
}
