package nix_test

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/nixtest"
	"github.com/nixlive/nixlive/internal/copyfile"
)

// flakeExpr calls flake.nix's outputs with a stub nixpkgs (buildGoModule
// returns its arguments): Nix 2.8 cannot evaluate nixpkgs, but the
// outputs' shape and the Go build's arguments can be checked.
const flakeExpr = `
let
  root = %[1]q;
  flake = import (root + "/flake.nix");
  pkgs = {
    buildGoModule = a: a // { type = "derivation"; outPath = "/nix/store/00000000000000000000000000000000-" + a.pname; };
    syslinux = "/nix/store/11111111111111111111111111111111-syslinux";
    systemd = "/nix/store/22222222222222222222222222222222-systemd";
  };
  nixpkgs = {
    lib = { cleanSource = s: s; };
    legacyPackages.x86_64-linux = pkgs // { pkgsStatic = pkgs; };
  };
  self = flake.outputs { inherit self nixpkgs; } // { outPath = root; };
  p = self.packages.x86_64-linux;
in {
  inputs = builtins.attrNames flake.inputs;
  packages = builtins.attrNames p;
  static = p.nixlive-static.subPackages;
  imagegen = p.imagegen.subPackages;
  vendorHash = p.imagegen.vendorHash;
  nixosModules = builtins.attrNames self.nixosModules;
  lib = builtins.attrNames self.lib;
}
`

// TestFlake evaluates flake.nix's outputs with a stub nixpkgs.
func TestFlake(t *testing.T) {
	nixtest.HaveNix(t)
	out, err := nixtest.EvalJSON(t, nixtest.NewStore(t), fmt.Sprintf(flakeExpr, repoRoot(t)))
	require.NoError(t, err)
	var got struct {
		Inputs, Packages, Static, Imagegen, NixosModules, Lib []string
		VendorHash                                            string
	}
	require.NoError(t, json.Unmarshal(out, &got), "%s", out)
	assert.Equal(t, []string{"nixpkgs"}, got.Inputs)
	assert.Equal(t, []string{"default", "imagegen", "nixlive-static"}, got.Packages)
	assert.Equal(t, []string{"cmd/imagegen"}, got.Imagegen)
	assert.Subset(t, got.Static, []string{"cmd/imagegen", "cmd/stage1", "cmd/stage2", "cmd/postboot"})
	assert.Equal(t, []string{"default", "iso"}, got.NixosModules)
	assert.Subset(t, got.Lib, []string{"closureInfo", "makeSquashfs", "makeIsoImage", "makeInitrd", "fromConfig", "withImagegen"})
	assert.Regexp(t, `^sha256-[A-Za-z0-9+/]{43}=$`, got.VendorHash)
}

// TestFlakeVendorHash recomputes the flake's vendorHash as buildGoModule
// does: the NAR SHA-256 of `go mod vendor`, here of a copy of the tracked
// files (nix-hash opens no store), offline from the module cache.
func TestFlakeVendorHash(t *testing.T) {
	nixtest.HaveNix(t)
	root := repoRoot(t)
	flake, err := os.ReadFile(filepath.Join(root, "flake.nix"))
	require.NoError(t, err)
	m := regexp.MustCompile(`vendorHash = "(sha256-[^"]+)"`).FindSubmatch(flake)
	require.NotNil(t, m, "flake.nix has no vendorHash")

	files, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Skipf("git ls-files: %v (not a git checkout?)", err)
	}
	src := t.TempDir()
	for _, f := range strings.Split(strings.TrimRight(string(files), "\x00"), "\x00") {
		if _, err := os.Lstat(filepath.Join(root, f)); err != nil {
			continue // deleted in the working tree
		}
		require.NoError(t, copyfile.Tree(filepath.Join(root, f), filepath.Join(src, f)))
	}
	cmd := exec.Command("go", "mod", "vendor")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("go mod vendor offline: %v\n%s", err, out)
	}
	sum, err := hex.DecodeString(nixtest.NarHashHex(t, filepath.Join(src, "vendor")))
	require.NoError(t, err)
	want := "sha256-" + base64.StdEncoding.EncodeToString(sum)
	assert.Equal(t, want, string(m[1]), "flake.nix's vendorHash (go.mod or go.sum changed: set it to this)")
}
