# The boot loader files of an ISO from nixpkgs (lib.nix's bootFiles):
# isolinux and its modules from syslinux; for UEFI, systemd-boot, unsigned
# (nixpkgs has no Microsoft-signed shim, so the ISO boots with Secure Boot
# off, as NixOS's own ISO does).
pkgs: {
  biosFiles = {
    isolinux = "${pkgs.syslinux}/share/syslinux";
    syslinuxModules = "${pkgs.syslinux}/share/syslinux";
  };
  efiFiles.systemdBoot = "${pkgs.systemd}/lib/systemd/boot/efi/systemd-bootx64.efi";
  efiLoader = "systemd-boot";
}
