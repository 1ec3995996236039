package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/nixlive/nixlive/internal/atomicfile"
)

// nixOutputISODir makes DIR/iso, where "imagegen build --nix-output -o
// DIR" puts the ISO, as nixpkgs' make-iso9660-image.sh does ($out/iso).
func nixOutputISODir(dir string) (string, error) {
	iso := filepath.Join(dir, "iso")
	if err := os.MkdirAll(iso, 0o755); err != nil {
		return "", fmt.Errorf("--nix-output: %w", err)
	}
	return iso, nil
}

// writeNixSupport writes what make-iso9660-image.sh leaves beside the
// ISO: nix-support/system (the system the ISO is for) and
// nix-support/hydra-build-products ("file iso <path of the ISO>").
func writeNixSupport(dir, system, isoPath string) error {
	abs, err := filepath.Abs(isoPath)
	if err != nil {
		return fmt.Errorf("--nix-output: %w", err)
	}
	sup := filepath.Join(dir, "nix-support")
	if err := os.MkdirAll(sup, 0o755); err != nil {
		return fmt.Errorf("--nix-output: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(sup, "system"), []byte(system+"\n"), 0o644); err != nil {
		return fmt.Errorf("--nix-output: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(sup, "hydra-build-products"), []byte("file iso "+abs+"\n"), 0o644); err != nil {
		return fmt.Errorf("--nix-output: %w", err)
	}
	return nil
}
