package main

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/nixlive/nixlive/imagegen"
	"github.com/nixlive/nixlive/internal/copyfile"
)

// TestBuildBootFilesFromStore: boot.biosFiles and boot.efiFiles.grubModules
// may name store paths, as a Nix build hands them in, and are read from
// there (under --store-root), not from the host's /usr: the ISO is the
// one Debian's default directories give, byte for byte.
func TestBuildBootFilesFromStore(t *testing.T) {
	t.Parallel()
	haveISOTools(t)
	in := newISOInputs(t, "", "")
	isolinux := fakePath('4', "isolinux") + "/share/isolinux"
	syslinux := fakePath('6', "syslinux") + "/share/syslinux"
	grub := fakePath('8', "grub") + "/lib/grub/x86_64-efi"
	for _, c := range []struct{ from, to string }{
		{imagegen.IsolinuxDir, isolinux},
		{imagegen.SyslinuxBIOS, syslinux},
		{imagegen.GrubEFIModDir, grub},
	} {
		if err := copyfile.Tree(c.from, filepath.Join(in.storeRoot, c.to)); err != nil {
			t.Fatal(err)
		}
	}
	spec := in.spec()
	spec["boot"] = map[string]any{"timeout": 1, "efiLoader": "grub-mkimage"}
	def := filepath.Join(t.TempDir(), "default.iso")
	in.buildISO(t, spec, def, isoBuildOpts{})

	spec["boot"] = map[string]any{"timeout": 1, "efiLoader": "grub-mkimage",
		"biosFiles": map[string]any{"isolinux": isolinux, "syslinuxModules": syslinux},
		"efiFiles":  map[string]any{"grubModules": grub}}
	fromStore := filepath.Join(t.TempDir(), "store.iso")
	in.buildISO(t, spec, fromStore, isoBuildOpts{})
	if !bytes.Equal(readFile(t, def), readFile(t, fromStore)) {
		t.Errorf("the ISO built from the store's boot files differs from the one built from %s, %s and %s",
			imagegen.IsolinuxDir, imagegen.SyslinuxBIOS, imagegen.GrubEFIModDir)
	}
}
