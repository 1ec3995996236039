package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBuildBadSpec runs the imagegen binary on specs that are wrong in
// one way each (the JSON, a field's value, a file it names, the layout
// it asks for): the exit code is 1, stderr names the field (or the line,
// or the path), and nothing is written: the output directory, given as
// -o DIR or as -o DIR/FILE, stays empty and so does TMPDIR. The unchanged
// spec builds, so each failure is about its one change.
func TestBuildBadSpec(t *testing.T) {
	t.Parallel()
	haveISOTools(t)
	in := newISOInputs(t, "", "")
	missing := filepath.Join(in.dir, "no-such-file")
	outside := filepath.Join(in.dir, "outside-the-store")
	mustWrite(t, outside, []byte("not a store path\n"), 0o644)
	set := func(key string, v any) func(map[string]any) {
		return func(s map[string]any) { s[key] = v }
	}
	target := func(targets ...string) func(map[string]any) {
		return func(s map[string]any) {
			c := s["contents"].([]map[string]any)
			for i, tg := range targets {
				c[i]["target"] = tg
			}
		}
	}
	for _, tc := range []struct {
		name string
		raw  string // the spec's text, if not in.spec() changed by mod
		mod  func(map[string]any)
		want []string
	}{
		{name: "MalformedJSON", raw: "{\n  \"volumeID\": \"x\",\n  \"kernel\": \"/k\"\n  \"initrd\": \"/i\"\n}", want: []string{"line 4"}},
		{name: "UnknownField", mod: set("volumeId", "x"), want: []string{`unknown field "volumeId"`}},
		{name: "WrongType", mod: set("kernelParams", "quiet"), want: []string{": kernelParams: want []string, not JSON string (line "}},
		{name: "WrongTypeNested", mod: set("boot", map[string]any{"timeout": "1"}), want: []string{"boot.timeout"}},
		{name: "MissingKernel", mod: set("kernel", missing), want: []string{"kernel", missing, "no such file"}},
		{name: "KernelIsDirectory", mod: set("kernel", in.dir), want: []string{"kernel", in.dir, "not a regular file"}},
		{name: "MissingInitrd", mod: set("initrd", missing), want: []string{"initrd", missing}},
		{name: "MissingKernelInStore", mod: set("kernel", in.extra+"/bzImage"), want: []string{"kernel", "bzImage"}},
		{name: "MissingSource", mod: func(s map[string]any) { s["contents"].([]map[string]any)[2]["source"] = missing }, want: []string{"contents[2].source", missing}},
		{name: "VolumeIDTooLong", mod: set("volumeID", testVolumeID+"-abcdef"), want: []string{"volumeID", "33"}},
		{name: "DuplicateTarget", mod: target("docs/same", "/docs/same"), want: []string{"contents[1].target", "contents[0]"}},
		{name: "TargetEscapes", mod: target("../x"), want: []string{"contents[0].target", "../x"}},
		{name: "TargetSquashfs", mod: target("nix-store.squashfs"), want: []string{"contents[0].target", "nix-store.squashfs"}},
		{name: "TargetIsolinuxCfg", mod: target("isolinux/isolinux.cfg"), want: []string{"contents[0].target", "isolinux/isolinux.cfg"}},
		{name: "TargetGrubCfg", mod: target("docs/a", "EFI/BOOT/grub.cfg"), want: []string{"contents[1].target", "EFI/BOOT/grub.cfg"}},
		{name: "TargetKernel", mod: target("boot/bzImage"), want: []string{"contents[0].target", "boot/bzImage"}},
		{name: "TargetEFIImage", mod: target("boot/efi.img"), want: []string{"contents[0].target", "boot/efi.img"}},
		{name: "TargetCatalog", mod: target(".boot.cat"), want: []string{"contents[0].target", ".boot.cat"}},
		{name: "TargetSystemLink", mod: target("system"), want: []string{"contents[0].target", "system"}},
		// A file where the layout needs a directory, or the other way.
		{name: "TargetIsLayoutDir", mod: target("isolinux"), want: []string{"contents[0].target", "isolinux"}},
		{name: "TargetIsBootDir", mod: target("boot"), want: []string{"contents[0].target", "boot"}},
		{name: "TargetUnderSymlink", mod: target("system/extra"), want: []string{"contents[0].target", "system/extra"}},
		{name: "TargetUnderLoader", mod: target("EFI/BOOT/BOOTX64.EFI/x"), want: []string{"contents[0].target", "EFI/BOOT/BOOTX64.EFI"}},
		{name: "TargetInNixStore", mod: target("nix/store/file"), want: []string{"contents[0].target", "nix/store/file"}},
		{name: "TargetUnderOwnFile", mod: target("docs/x", "docs/x/y"), want: []string{"contents[1].target", "docs/x"}},
		{name: "TargetOverOwnDir", mod: target("docs/x/y", "docs/x"), want: []string{"contents[1].target", "docs/x"}},
		{name: "StoreContentsNotInStore", mod: set("storeContents", []string{outside}), want: []string{"storeContents[0]", outside, "not in the store"}},
		{name: "StoreContentsMissing", mod: set("storeContents", []string{fakePath('2', "missing")}), want: []string{fakePath('2', "missing")}},
		{name: "SystemNotInStore", mod: set("system", outside), want: []string{"system", outside}},
		{name: "TargetShimMenu", mod: target("boot/grub/grub.cfg"), want: []string{"contents[0].target", "boot/grub/grub.cfg"}},
		{name: "EFILoaderUnknown", mod: set("boot", map[string]any{"efiLoader": "refind"}), want: []string{"boot.efiLoader", "refind"}},
		{name: "EFIFilesMissingShim", mod: set("boot", map[string]any{"efiFiles": map[string]any{"shim": missing}}), want: []string{"boot.efiFiles.shim", missing, "shim-signed"}},
		{name: "BIOSFilesMissingIsolinux", mod: set("boot", map[string]any{"biosFiles": map[string]any{"isolinux": missing}}), want: []string{"boot.biosFiles.isolinux", missing, "isolinux.bin"}},
		{name: "BIOSFilesMissingModules", mod: set("boot", map[string]any{"biosFiles": map[string]any{"syslinuxModules": in.dir}}), want: []string{"boot.biosFiles.syslinuxModules", "ldlinux.c32", "syslinux-common"}},
		{name: "BIOSFilesInStore", mod: set("boot", map[string]any{"biosFiles": map[string]any{"isolinux": in.extra + "/share"}}), want: []string{"boot.biosFiles.isolinux", in.extra + "/share/isolinux.bin"}},
		{name: "BIOSFilesUnknown", mod: set("boot", map[string]any{"biosFiles": map[string]any{"isoLinux": missing}}), want: []string{"boot.biosFiles.isoLinux", `"isolinux"`}},
		{name: "GrubModulesMissing", mod: set("boot", map[string]any{"efiLoader": "grub-mkimage", "efiFiles": map[string]any{"grubModules": missing}}), want: []string{"boot.efiFiles.grubModules", missing, "grub-efi-amd64-bin"}},
		{name: "GrubModulesRelative", mod: set("boot", map[string]any{"efiFiles": map[string]any{"grubModules": "lib/grub"}}), want: []string{"boot.efiFiles.grubModules", "absolute"}},
		{name: "EFIFilesUnknown", mod: set("boot", map[string]any{"efiFiles": map[string]any{"Shim": missing}}), want: []string{"boot.efiFiles.Shim", `"shim"`}},
		{name: "SecureBootWithShim", mod: set("boot", map[string]any{"efiLoader": "shim", "secureBoot": map[string]any{"key": missing, "certificate": missing}}), want: []string{"boot.secureBoot", "systemd-boot"}},
		{name: "SecureBootNoCertificate", mod: set("boot", map[string]any{"secureBoot": map[string]any{"key": missing}}), want: []string{"boot.secureBoot.certificate", "required"}},
		{name: "SecureBootMissingKey", mod: set("boot", map[string]any{"secureBoot": map[string]any{"key": missing, "certificate": missing}}), want: []string{"boot.secureBoot.key", missing}},
		{name: "SecureBootEncryptedKey", mod: set("boot", map[string]any{"secureBoot": map[string]any{"key": snakeoilKey, "certificate": snakeoilCert}}), want: []string{snakeoilKey, "encrypted"}},
		{name: "CompressLzma", mod: set("compressImage", "lzma"), want: []string{"compressImage", "lzma"}},
		{name: "SquashfsCompression", mod: set("squashfsCompression", "brotli"), want: []string{"squashfsCompression", "brotli"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var specFile string
			if tc.raw != "" {
				specFile = filepath.Join(t.TempDir(), "spec.json")
				mustWrite(t, specFile, []byte(tc.raw), 0o644)
			} else {
				spec := in.spec()
				tc.mod(spec)
				specFile = writeISOSpec(t, spec)
			}
			for _, asDir := range []bool{true, false} {
				out := t.TempDir()
				o := out
				if !asDir {
					o = filepath.Join(out, "nixos.iso")
				}
				tmp := t.TempDir()
				res := runCLI(t, cliOpts{env: []string{"TMPDIR=" + tmp}}, "build", specFile, "-o", o, "--store-root", in.storeRoot)
				if res.code != 1 {
					t.Errorf("-o %s: exit code %d, want 1\nstdout: %s\nstderr: %s", o, res.code, res.stdout, res.stderr)
				}
				for _, w := range tc.want {
					assert.Contains(t, res.stderr, w, "stderr names %q", w)
				}
				assert.NotContains(t, res.stdout, "store paths", "stdout reports success")
				assert.Equal(t, 1, strings.Count(strings.TrimSpace(res.stderr), "\n")+1, "one line of error:\n%s", res.stderr)
				assertEmptyDir(t, out)
				assertEmptyDir(t, tmp)
				if asDir {
					t.Logf("stderr: %s", res.stderr)
				}
			}
		})
	}

	t.Run("Control", func(t *testing.T) {
		out := t.TempDir()
		in.buildISO(t, in.spec(), out, isoBuildOpts{})
		entries, err := os.ReadDir(out)
		require.NoError(t, err)
		if assert.Len(t, entries, 1) {
			assert.Equal(t, "nixos-test.iso", entries[0].Name())
		}
	})
}
