package nix_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/imagegen"
	"github.com/nixlive/nixlive/internal/boottest/nixtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// Fake store paths: the spec is evaluated, not built.
const (
	fakeSystem = "/nix/store/00000000000000000000000000000000-nixos-system-nixos-25.05"
	fakeKernel = "/nix/store/11111111111111111111111111111111-linux-6.12/bzImage"
	fakeInitrd = "/nix/store/22222222222222222222222222222222-initrd-linux-6.12/initrd"
	fakeMotd   = "/nix/store/33333333333333333333333333333333-motd"
	fakeSyslx  = "/nix/store/44444444444444444444444444444444-syslinux/share/syslinux"
	fakeSdBoot = "/nix/store/55555555555555555555555555555555-systemd/lib/systemd/boot/efi/systemd-bootx64.efi"
)

// specCases are the config values of a NixOS module (as plain attribute
// sets) and the boot loader files, and the golden spec file they give.
var specCases = []struct{ name, config, bootFiles string }{
	{"defaults", fmt.Sprintf(`{ system = %q; kernel = %q; initrd = %q; }`, fakeSystem, fakeKernel, fakeInitrd), "null"},
	// NixOS 25.05 names the ISO image.fileName (isoImage.isoName is gone).
	{"image-filename", fmt.Sprintf(`{ image = { fileName = "nixos-25.05-x86_64-linux.iso"; baseName = "nixos-25.05-x86_64-linux"; };
  system = %q; kernel = %q; initrd = %q; }`, fakeSystem, fakeKernel, fakeInitrd), "null"},
	{"nixos", fmt.Sprintf(`{
  isoImage = {
    isoName = "nixos-minimal-25.05-x86_64-linux.iso";
    volumeID = "nixos-minimal-25.05-x86_64";
    # iso-image.nix's own boot loader files, left out, then the rest.
    contents = [
      { source = "${%[2]q}/bzImage"; target = "/boot/bzImage"; }
      { source = throw "never read"; target = "/isolinux"; }
      { source = throw "never read"; target = "/isolinux/isolinux.cfg"; }
      { source = throw "never read"; target = "/EFI"; }
      { source = throw "never read"; target = "boot/efi.img"; }
      { source = throw "never read"; target = "/boot/grub"; }
      { source = %[1]q; target = "/version.txt"; }
      { source = %[1]q; target = "/bootstrap/motd.txt"; }
      { source = %[1]q; target = "/motd.txt"; }
    ];
    storeContents = [ %[3]q ];
    squashfsCompression = "xz -Xdict-size 100%% -Xbcj x86";
    compressImage = true;
    makeEfiBootable = true;
    makeUsbBootable = false;
    prependToMenuLabel = "";
    appendToMenuLabel = " Installer";
  };
  image.baseName = "ignored-when-isoName-is-set";
  system = %[3]q; kernel = %[4]q; initrd = %[5]q;
  kernelParams = [ "console=ttyS0,115200" "loglevel=4" ];
  timeout = null;
  label = "NixOS 25.05";
}`, fakeMotd, path.Dir(fakeKernel), fakeSystem, fakeKernel, fakeInitrd),
		fmt.Sprintf(`{
  biosFiles = { isolinux = %q; syslinuxModules = %q; };
  efiFiles = { systemdBoot = %q; };
  efiLoader = "systemd-boot";
}`, fakeSyslx, fakeSyslx, fakeSdBoot)},
}

// TestSpecGolden evaluates nix/spec.nix (fromConfig, then spec: what the
// NixOS module hands makeIsoImage and makeIsoImage hands imagegen) with
// nix-instantiate --eval --strict --json, compares the JSON with
// testdata/spec-<case>.json and parses it with imagegen's own spec parser.
func TestSpecGolden(t *testing.T) {
	nixtest.HaveNix(t)
	store := nixtest.NewStore(t)
	specNix := filepath.Join(repoRoot(t), "nix", "spec.nix")
	for _, tc := range specCases {
		t.Run(tc.name, func(t *testing.T) {
			expr := fmt.Sprintf("let s = import %s; in s.spec (s.fromConfig %s // { bootFiles = %s; })", specNix, tc.config, tc.bootFiles)
			out, err := nixtest.EvalJSON(t, store, expr)
			require.NoError(t, err)
			var pretty bytes.Buffer
			require.NoError(t, json.Indent(&pretty, bytes.TrimSpace(out), "", "  "))
			pretty.WriteByte('\n')
			golden := filepath.Join("testdata", "spec-"+tc.name+".json")
			if *update {
				require.NoError(t, os.WriteFile(golden, pretty.Bytes(), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "go test -run TestSpecGolden -update writes it")
			require.Equal(t, string(want), pretty.String(), "spec of %s (go test -update rewrites %s)", tc.name, golden)

			spec, err := imagegen.ParseSpec(bytes.NewReader(out), golden)
			require.NoError(t, err, "imagegen's spec parser refuses what spec.nix gives")
			require.Equal(t, fakeSystem, spec.System)
			require.Equal(t, fakeKernel, spec.Kernel)
			require.Equal(t, fakeInitrd, spec.Initrd)
		})
	}
}
