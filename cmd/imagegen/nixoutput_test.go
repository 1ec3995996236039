package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestBuildNixOutput: with --nix-output, -o (or $out) is laid out as
// make-iso9660-image.sh lays out $out: iso/<isoName> (with compressImage's
// suffix), nix-support/system and nix-support/hydra-build-products; the ISO
// is the one a plain build makes.
func TestBuildNixOutput(t *testing.T) {
	t.Parallel()
	in := newISOInputs(t, "", "")
	plain := filepath.Join(t.TempDir(), "plain.iso")
	in.buildISO(t, in.spec(), plain, isoBuildOpts{})
	specFile := writeISOSpec(t, in.spec())

	t.Run("-o and --spec", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "not", "yet")
		r := runCLI(t, cliOpts{env: []string{"TMPDIR=" + t.TempDir()}}, "build", "--spec", specFile, "--nix-output", "-o", out,
			"--system", "aarch64-linux", "--store-root", in.storeRoot)
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		iso := filepath.Join(out, "iso", "nixos-test.iso")
		if !bytes.Equal(readFile(t, iso), readFile(t, plain)) {
			t.Errorf("%s differs from the plain build", iso)
		}
		assertTree(t, out, []string{"iso", "iso/nixos-test.iso", "nix-support", "nix-support/hydra-build-products", "nix-support/system"})
		assertFile(t, filepath.Join(out, "nix-support", "system"), "aarch64-linux\n")
		assertFile(t, filepath.Join(out, "nix-support", "hydra-build-products"), "file iso "+iso+"\n")
	})
	t.Run("$out and compressImage", func(t *testing.T) {
		haveISOTools(t, "zstd")
		spec := in.spec()
		spec["compressImage"] = "zstd"
		out := filepath.Join(t.TempDir(), "out")
		r := runCLI(t, cliOpts{env: []string{"TMPDIR=" + t.TempDir(), "out=" + out}}, "build", writeISOSpec(t, spec), "--nix-output", "--store-root", in.storeRoot)
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		iso := filepath.Join(out, "iso", "nixos-test.iso.zst")
		assertTree(t, out, []string{"iso", "iso/nixos-test.iso.zst", "nix-support", "nix-support/hydra-build-products", "nix-support/system"})
		assertFile(t, filepath.Join(out, "nix-support", "system"), "x86_64-linux\n")
		assertFile(t, filepath.Join(out, "nix-support", "hydra-build-products"), "file iso "+iso+"\n")
	})
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"build", specFile, "--spec", specFile, "-o", t.TempDir()}, // two specs
			{"build", "--spec", specFile, "--nix-output"},              // no -o, no $out
			{"build", "--nix-output", "-o", t.TempDir()},               // no spec
		} {
			r := runCLI(t, cliOpts{}, args...)
			if r.code != 2 || !strings.Contains(r.stderr, "want one spec (SPEC or --spec) and -o") {
				t.Errorf("imagegen %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
			}
		}
	})
}

// assertTree checks the names under dir (relative, sorted).
func assertTree(t *testing.T, dir string, want []string) {
	t.Helper()
	var got []string
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			got = append(got, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("%s holds %q, want %q", dir, got, want)
	}
}

func assertFile(t *testing.T, name, want string) {
	t.Helper()
	if got := string(readFile(t, name)); got != want {
		t.Errorf("%s: %q, want %q", name, got, want)
	}
}
