// Package imagegen builds the two images a NixOS live CD is made of, the way
// NixOS's make-squashfs.nix, iso-image.nix and make-iso9660-image.sh do:
//
//   - StoreImage: nix-store.squashfs, the squashfs of a store closure with
//     its nix-path-registration at the root (store.go);
//   - ISO: the bootable live ISO described by a Spec, which uses the names
//     of NixOS's isoImage.* options (spec.go): the isolinux and GRUB menus
//     (boot.go), the EFI boot image, the store image streamed straight into
//     the ISO and, if asked, the compressed ISO (build.go, compress.go);
//   - Inspect: what an ISO holds (inspect.go).
//
// Both builders take a config struct and Build(ctx). Same inputs, same
// bytes: every date comes from SOURCE_DATE_EPOCH or the spec.
//
// Supported: BIOS (isolinux) and UEFI (GRUB) boot from a CD and, with
// isohybrid's MBR and a GPT, from a USB stick; x86_64 only; closures read
// from a store root (Nix's --store DIR) or Nix's closureInfo. Not supported:
// other architectures, Secure Boot, memtest or extra menu entries. A
// persistence partition after the ISO is imagegen/persist's (imagegen
// build --persistence, imagegen write keeps it). The bootloaders come from Debian's isolinux,
// syslinux-common and grub-efi-amd64-bin packages (IsolinuxDir,
// SyslinuxBIOS, GrubEFIModDir). The initrd is imagegen/initrd's, the
// formats are written by imagegen/squashfs, imagegen/iso9660 and
// imagegen/fat.
package imagegen
