package nix_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/imagegen"
	"github.com/nixlive/nixlive/internal/boottest/nixtest"
)

// moduleExpr calls nix/modules/iso.nix as the NixOS module system would,
// with a stub lib (the few functions it uses, mkForce/mkIf kept visible),
// stub packages and the config values of a NixOS live system, all fake
// store paths: Nix 2.8 cannot evaluate current nixpkgs, but it can check
// the module's wiring from options to lib.nix's derivations.
const moduleExpr = `
let
  root = %[1]q;
  lib = {
    mkOption = o: o;
    mkEnableOption = d: { default = false; description = d; };
    types = { package = "package"; attrs = "attrs"; nullOr = t: "null or " + t; };
    literalExpression = e: e;
    mkForce = v: { _force = v; };
    mkIf = c: v: { _if = c; _then = v; };
    optionalAttrs = c: a: if c then a else { };
  };
  # A fake store path: nix32 has no e, o, t or u.
  store = n: "/nix/store/" + builtins.replaceStrings [ "e" ] [ "x" ]
    (builtins.substring 0 32 (builtins.hashString "sha256" n)) + "-" + n;
  pkgs = { syslinux = store "syslinux-6.04"; systemd = store "systemd-257"; };
  config = {
    nixlive = {
      package = store "nixlive-static-0.1.0";
      bootFiles = import (root + "/nix/bootfiles.nix") pkgs;
      initrd.enable = true;
      postboot.enable = true;
    };
    isoImage = {
      isoName = "nixos-25.05-x86_64-linux.iso"; volumeID = "nixos-25.05-x86_64";
      contents = [ ]; storeContents = [ (store "nixos-system-nixos-25.05") ];
      squashfsCompression = "zstd -Xcompression-level 19"; compressImage = false;
      makeEfiBootable = true; makeUsbBootable = true; makeBiosBootable = true;
      appendToMenuLabel = " Installer"; prependToMenuLabel = "";
    };
    image.baseName = "nixos-25.05-x86_64-linux";
    boot = {
      kernelPackages.kernel = { outPath = store "linux-6.12.30"; modDirVersion = "6.12.30"; };
      kernelParams = [ "root=fstab" "loglevel=4" ];
      loader.timeout = 10;
    };
    system = {
      build = { toplevel = store "nixos-system-nixos-25.05"; initialRamdisk = store "initrd-linux-6.12.30"; };
      boot.loader = { kernelFile = "bzImage"; initrdFile = "initrd"; };
      modulesTree = store "linux-6.12.30-modules-shrunk";
      nixos = { distroName = "NixOS"; label = "25.05"; };
    };
  };
  m = import (root + "/nix/modules/iso.nix") { inherit config lib pkgs; modulesPath = "/modules"; };
  iso = m.config.system.build.isoImage._force;
in {
  inherit (m) imports;
  spec = builtins.fromJSON (builtins.unsafeDiscardStringContext iso.spec);
  isoArgs = iso.args;
  isoBuilder = iso.builder;
  postboot = m.config.boot.postBootCommands;
  initrd = let i = m.config.system.build.initialRamdisk; in { _if = i._if; inherit (i._then._force) name args builder; };
  options = builtins.attrNames m.options.nixlive;
}
`

// TestModule evaluates the NixOS module against stub config values and
// compares the spec it hands imagegen with testdata/module-spec.json,
// which imagegen's parser must accept.
func TestModule(t *testing.T) {
	nixtest.HaveNix(t)
	store := nixtest.NewStore(t)
	out, err := nixtest.EvalJSON(t, store, fmt.Sprintf(moduleExpr, repoRoot(t)))
	require.NoError(t, err)
	var got struct {
		Imports    []string
		Spec       json.RawMessage
		IsoArgs    []string
		IsoBuilder string
		Postboot   struct {
			If   bool `json:"_if"`
			Then struct {
				Force string `json:"_force"`
			} `json:"_then"`
		}
		Initrd struct {
			If      bool `json:"_if"`
			Name    string
			Args    []string
			Builder string
		}
		Options []string
	}
	require.NoError(t, json.Unmarshal(out, &got), "%s", out)
	assert.Equal(t, []string{"/modules/installer/cd-dvd/iso-image.nix"}, got.Imports)
	assert.Equal(t, []string{"bootFiles", "initrd", "package", "postboot"}, got.Options)
	assert.True(t, strings.HasSuffix(got.IsoBuilder, "-nixlive-static-0.1.0/bin/imagegen"), got.IsoBuilder)
	assert.Contains(t, got.IsoArgs, "--nix-output")
	assert.True(t, got.Postboot.If)
	assert.True(t, strings.HasSuffix(strings.TrimSpace(got.Postboot.Then.Force), "-nixlive-static-0.1.0/bin/postboot"), got.Postboot.Then.Force)

	var pretty bytes.Buffer
	require.NoError(t, json.Indent(&pretty, got.Spec, "", "  "))
	pretty.WriteByte('\n')
	golden := filepath.Join("testdata", "module-spec.json")
	if *update {
		require.NoError(t, os.WriteFile(golden, pretty.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "go test -run TestModule -update writes it")
	require.Equal(t, string(want), pretty.String(), "the module's spec (go test -update rewrites %s)", golden)
	spec, err := imagegen.ParseSpec(bytes.NewReader(got.Spec), golden)
	require.NoError(t, err)
	// nixlive.initrd.enable: the system's initialRamdisk is makeInitrd's
	// ($out/initrd), built from the system's kernel modules, and the ISO
	// boots the system's initialRamdisk.
	assert.True(t, got.Initrd.If)
	assert.Equal(t, "nixlive-initrd", got.Initrd.Name)
	assert.True(t, strings.HasSuffix(got.Initrd.Builder, "-nixlive-static-0.1.0/bin/imagegen"), got.Initrd.Builder)
	assert.Subset(t, got.Initrd.Args, []string{"initrd", "--nix-output", "--kernel-modules"})
	assert.True(t, strings.HasSuffix(spec.Initrd, "-initrd-linux-6.12.30/initrd"), "the ISO boots the system's initialRamdisk, not %s", spec.Initrd)
	assert.True(t, strings.HasSuffix(spec.Kernel, "-linux-6.12.30/bzImage"), spec.Kernel)
	assert.Equal(t, "NixOS 25.05 Installer", spec.Boot.Label)
}
