package nix_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/nixtest"
	"github.com/nixlive/nixlive/internal/boottest/testinit"
	"github.com/nixlive/nixlive/internal/boottest/vmtest"
	"github.com/nixlive/nixlive/live"
)

const (
	testISOName  = "nixlive-nix-test.iso"
	testVolumeID = "NIXLIVE_NIX_TEST"
)

// testExpr is the Nix file the build tests run nix-build on: lib.nix with
// the static imagegen and Debian's boot loader files, a small store (a
// "system" referring to a payload directory, and one more store path), the
// cloud kernel and the testinit initrd, all added with builtins.path.
const testExpr = `
let
  imagegen = builtins.path { path = %[1]q; name = "nixlive-imagegen"; };
  lib0 = import %[2]q { inherit imagegen; };
  nixlive = import %[2]q { inherit imagegen; bootFiles = lib0.debianBootFiles; };
  payload = builtins.path { path = %[3]q; name = "payload"; };
  extra = builtins.path { path = %[4]q; name = "extra"; };
  system = builtins.toFile "nixos-system-test" "a system that needs ${payload}\n";
  kernel = builtins.path { path = %[5]q; name = "vmlinuz"; };
  initrd = builtins.path { path = %[6]q; name = "initrd"; };
  motd = builtins.toFile "motd" "hello from the ISO\n";
  roots = [ extra system ];
in {
  inherit system;
  iso = nixlive.makeIsoImage {
    isoName = %[7]q;
    volumeID = %[8]q;
    inherit system kernel initrd;
    storeContents = [ extra ];
    kernelParams = [ "console=ttyS0,115200" ];
    contents = [ { source = motd; target = "/motd.txt"; } ];
    boot = { timeout = 1; serialConsole = true; };
  };
  # The same ISO without boot loader files: imagegen looks in /usr/lib,
  # which the sandbox does not show.
  isoWithoutBootFiles = lib0.makeIsoImage { inherit system kernel initrd; };
  closure = nixlive.closureInfo { rootPaths = roots; };
  squashfs = nixlive.makeSquashfs { storeContents = roots; };
  # nixlive.initrd.enable's initialRamdisk: stage 1 from the package, no
  # kernel modules (the cloud kernel's are not in this store).
  nixliveInitrd = nixlive.makeInitrd { };
}
`

// buildEnv is a store and the Nix file of testExpr.
type buildEnv struct {
	store, file string
}

// newBuildEnv builds the inputs (static imagegen, testinit initrd, the
// store's trees) and writes testExpr's file.
func newBuildEnv(t *testing.T) *buildEnv {
	t.Helper()
	nixtest.HaveNix(t)
	kernel, err := filepath.EvalSymlinks(vmtest.Kernel(t))
	require.NoError(t, err)
	ig := imagegenPackage(t)
	dir := t.TempDir()
	payload := filepath.Join(dir, "payload")
	require.NoError(t, os.MkdirAll(filepath.Join(payload, "bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(payload, "bin", "hello"), []byte("#!/bin/hello\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(payload, "data"), []byte(strings.Repeat("nixlive ", 5000)), 0o644))
	require.NoError(t, os.Symlink("bin/hello", filepath.Join(payload, "link")))
	extra := filepath.Join(dir, "extra.txt")
	require.NoError(t, os.WriteFile(extra, []byte("an extra store path\n"), 0o644))
	initrd := testinit.Initrd(t)

	file := filepath.Join(dir, "test.nix")
	expr := fmt.Sprintf(testExpr, ig, filepath.Join(repoRoot(t), "nix", "lib.nix"), payload, extra, kernel, initrd, testISOName, testVolumeID)
	require.NoError(t, os.WriteFile(file, []byte(expr), 0o644))
	return &buildEnv{store: nixtest.NewStore(t), file: file}
}

// build builds attribute attr, timing it, and checks that `nix-build
// --check` rebuilds it bit-identical.
func (e *buildEnv) build(t *testing.T, attr string) string {
	t.Helper()
	start := time.Now()
	out := nixtest.MustBuildPure(t, e.store, e.file, "-A", attr)
	require.Len(t, out, 1)
	t.Logf("nix-build -A %s: %s (%v)", attr, out[0], time.Since(start).Round(time.Millisecond))
	start = time.Now()
	_, err := nixtest.BuildPure(t, e.store, e.file, "-A", attr, "--check")
	require.NoError(t, err, "nix-build --check: the rebuild differs")
	t.Logf("nix-build --check -A %s: bit-identical (%v)", attr, time.Since(start).Round(time.Millisecond))
	return out[0]
}

// host is a store path's place on the host.
func (e *buildEnv) host(p string) string { return filepath.Join(e.store, p) }

// registration is closureInfo's registration and store paths for the
// roots of testExpr.
func (e *buildEnv) closure(t *testing.T) (reg string, paths []string) {
	t.Helper()
	ci := nixtest.MustBuildPure(t, e.store, e.file, "-A", "closure")[0]
	r, err := os.ReadFile(filepath.Join(e.host(ci), "registration"))
	require.NoError(t, err)
	sp, err := os.ReadFile(filepath.Join(e.host(ci), "store-paths"))
	require.NoError(t, err)
	return string(r), strings.Fields(string(sp))
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
	return string(out)
}

// checkSquashfs lists the image with unsquashfs: the registration and one
// entry per store path of the closure, nothing else; the registration is
// closureInfo's.
func checkSquashfs(t *testing.T, img, reg string, paths []string) {
	t.Helper()
	var want []string
	for _, p := range paths {
		want = append(want, filepath.Base(p))
	}
	want = append(want, live.RegistrationName)
	slices.Sort(want)
	var got []string
	for _, l := range strings.Split(run(t, "unsquashfs", "-d", "", "-l", "-max-depth", "1", img), "\n") {
		if name := strings.TrimPrefix(strings.TrimSpace(l), "/"); name != "" && !strings.Contains(name, "/") {
			got = append(got, name)
		}
	}
	slices.Sort(got)
	assert.Equal(t, want, got, "unsquashfs -l: the image's root")
	assert.Equal(t, reg, run(t, "unsquashfs", "-cat", img, live.RegistrationName), "the image's registration")
}

// TestMakeSquashfs builds makeSquashfs in Nix's sandbox, rebuilds it with
// --check and lists it with unsquashfs.
func TestMakeSquashfs(t *testing.T) {
	e := newBuildEnv(t)
	img := e.build(t, "squashfs")
	reg, paths := e.closure(t)
	require.Len(t, paths, 3, "extra, the system and its payload")
	checkSquashfs(t, e.host(img), reg, paths)
}

var markerRE = regexp.MustCompile(regexp.QuoteMeta(testinit.Marker) + ` cmdline=(.*)`)

// TestMakeIsoImage builds makeIsoImage in Nix's sandbox (no host path but
// its inputs), rebuilds it with --check, compares its store image's
// registration with closureInfo's, checks the El Torito entries with
// imagegen inspect and boots it from a CD under SeaBIOS to testinit.
func TestMakeIsoImage(t *testing.T) {
	e := newBuildEnv(t)
	out := e.build(t, "iso")
	iso := filepath.Join(e.host(out), "iso", testISOName)
	require.FileExists(t, iso)
	sys, err := os.ReadFile(filepath.Join(e.host(out), "nix-support", "system"))
	require.NoError(t, err)
	assert.Equal(t, "x86_64-linux", strings.TrimSpace(string(sys)))
	products, err := os.ReadFile(filepath.Join(e.host(out), "nix-support", "hydra-build-products"))
	require.NoError(t, err)
	assert.Contains(t, string(products), "file iso "+out+"/iso/"+testISOName)

	reg, paths := e.closure(t)
	sq := filepath.Join(t.TempDir(), live.StoreImage)
	run(t, "xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/"+live.StoreImage, sq)
	checkSquashfs(t, sq, reg, paths)

	inspect := run(t, filepath.Join(imagegenPackage(t), "bin", "imagegen"), "inspect", iso)
	assert.Regexp(t, `(?m)^\s+1 BIOS bootable`, inspect, "imagegen inspect: El Torito BIOS entry")
	assert.Regexp(t, `(?m)^\s+2 UEFI bootable`, inspect, "imagegen inspect: El Torito UEFI entry")
	assert.Contains(t, inspect, "motd.txt")

	system := strings.TrimSpace(nixtest.MustEvalString(t, e.store, e.file, "system"))
	vm := vmtest.Start(t, vmtest.Options{Name: "nix-iso", Firmware: vmtest.SeaBIOS, CDROM: iso})
	m := vm.MustExpect(markerRE, 3*time.Minute)
	params := strings.Fields(m[1])
	for _, p := range []string{"init=" + system + "/init", "systemConfig=" + system, "root=LABEL=" + testVolumeID, "console=ttyS0,115200"} {
		assert.Contains(t, params, p, "kernel command line")
	}
	vm.MustWait(time.Minute)
	t.Logf("booted to testinit in %v", vm.Elapsed().Round(100*time.Millisecond))

	// The build sees its inputs only: without bootFiles, imagegen's
	// defaults (Debian's /usr/lib paths, present on this host) are missing.
	_, err = nixtest.BuildPure(t, e.store, e.file, "-A", "isoWithoutBootFiles")
	require.Error(t, err, "a sandboxed build read the host's /usr/lib")
	assert.Contains(t, err.Error(), "/usr/lib/", "the error names the missing default")
	t.Logf("without bootFiles, as it should: %s", lastLine(err.Error()))
}

// TestMakeInitrd builds makeInitrd (the NixOS module's initialRamdisk
// with nixlive.initrd.enable) in the sandbox, rebuilds it bit-identical,
// and checks NixOS's layout: $out/initrd, a zstd cpio whose /init is the
// package's stage1.
func TestMakeInitrd(t *testing.T) {
	e := newBuildEnv(t)
	out := e.build(t, "nixliveInitrd")
	initrd := filepath.Join(e.host(out), "initrd")
	list := run(t, "sh", "-c", "zstd -dc < \"$1\" | cpio -it --quiet", "sh", initrd)
	assert.Contains(t, strings.Fields(list), "init", "cpio -t of $out/initrd")
	stage1, err := os.ReadFile(filepath.Join(imagegenPackage(t), "bin", "stage1"))
	require.NoError(t, err)
	init := run(t, "sh", "-c", "cd \"$(mktemp -d)\" && zstd -dc < \"$1\" | cpio -i --quiet init && cat init", "sh", initrd)
	assert.True(t, init == string(stage1), "/init in the initrd is the package's stage1")
}

// TestPseudoFiles: makeSquashfs refuses pseudoFiles by throwing, with a
// message that says so.
func TestPseudoFiles(t *testing.T) {
	nixtest.HaveNix(t)
	expr := fmt.Sprintf(`(import %q { imagegen = "/nix/store/00000000000000000000000000000000-imagegen"; }).makeSquashfs { storeContents = [ ]; pseudoFiles = [ "etc d 755 0 0" ]; }`,
		filepath.Join(repoRoot(t), "nix", "lib.nix"))
	_, err := nixtest.EvalJSON(t, nixtest.NewStore(t), expr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "pseudoFiles are not supported")
}

// lastLine is the last non-empty line of s (Nix's error after the log).
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" && !strings.HasPrefix(l, "error: builder for") {
			return l
		}
	}
	return s
}
