# nixlive as Nix derivations: drop-ins for nixpkgs' closure-info.nix
# (closureInfo), nixos/lib/make-squashfs.nix (makeSquashfs) and
# nixos/lib/make-iso9660-image.nix (makeIsoImage), built by imagegen alone.
#
# Builtins only (no nixpkgs), so that it evaluates under Debian's Nix 2.8
# as well as current Nix. Every derivation is a builtins.derivation whose
# builder is imagegen itself: there is no shell in the build sandbox.
#
#   imagegen: anything whose "${imagegen}/bin/imagegen" is a statically
#     linked imagegen — the flake's packages.x86_64-linux.nixlive-static
#     (or .imagegen), a store path, or a path to a directory holding
#     bin/imagegen (copied into the store). A path to the binary itself is
#     not accepted: the builder must be a store path inside a package.
#   bootFiles: the boot loader files the ISO is made of, as the spec's
#     boot fields: { biosFiles = { isolinux; syslinuxModules; };
#     efiFiles = { shim; mokManager; grub; systemdBoot; grubModules; };
#     efiLoader = "shim" | "systemd-boot" | "grub-mkimage"; } (each part
#     optional), store paths all. null keeps imagegen's defaults, Debian's
#     /usr/lib paths, which a sandboxed build cannot see: pass
#     debianBootFiles (below) on Debian, or files from nixpkgs (flake.nix).
{ imagegen, bootFiles ? null }:
let
  specLib = import ./spec.nix;
  bin = "${imagegen}/bin/imagegen";
  buildSystem = "x86_64-linux";
  out = builtins.placeholder "out";

  # passAsFile puts attribute A in the build directory (the builder's
  # working directory) as ".attr-" + the nix32 SHA-256 of A's name; with
  # no shell to expand $specPath, the builder is given that name. This is
  # nix32(sha256("spec")) (nix-hash --type sha256 --to-base32 of
  # `printf spec | sha256sum`), the same in Nix 2.3 to 2.2x.
  specFile = ".attr-06ag7v5q69n797ic3jf34mc9hyps8y7clwh9s7krv7hsznm2xw6l";

  # Boot loader files from this machine's Debian packages (isolinux,
  # syslinux-common, grub-efi-amd64-bin, shim-signed, grub-efi-amd64-signed,
  # systemd-boot-efi), copied into the store: impure, for builds on Debian
  # (a flake's pure evaluation refuses them).
  debianBootFiles = let
    p = path: name: builtins.path { inherit path name; };
  in {
    biosFiles = {
      isolinux = p /usr/lib/ISOLINUX "isolinux";
      syslinuxModules = p /usr/lib/syslinux/modules/bios "syslinux-modules-bios";
    };
    efiFiles = {
      shim = p /usr/lib/shim/shimx64.efi.signed "shimx64.efi.signed";
      mokManager = p /usr/lib/shim/mmx64.efi.signed "mmx64.efi.signed";
      grub = p /usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed "gcdx64.efi.signed";
      systemdBoot = p /usr/lib/systemd/boot/efi/systemd-bootx64.efi "systemd-bootx64.efi";
      grubModules = p /usr/lib/grub/x86_64-efi "grub-x86_64-efi";
    };
  };

  # nixpkgs' closureInfo: $out/{registration,store-paths,total-nar-size}
  # for the closure of rootPaths, from Nix's exportReferencesGraph.
  closureInfo = { rootPaths }: derivation {
    name = "closure-info";
    system = buildSystem;
    builder = bin;
    args = [ "closure-info" "-o" out ];
    __structuredAttrs = true;
    exportReferencesGraph.closure = rootPaths;
  };

  # nixos/lib/make-squashfs.nix: $out is the squashfs image of the closure
  # of storeContents, with nix-path-registration at its root.
  makeSquashfs = { storeContents, comp ? specLib.defaultCompression, fileName ? "squashfs", pseudoFiles ? [ ] }:
    if pseudoFiles != [ ] then
      throw "nixlive makeSquashfs: pseudoFiles are not supported (imagegen store writes the closure's files as they are; put such files in a store path instead)"
    else derivation {
      name = "${fileName}.img";
      system = buildSystem;
      builder = bin;
      args = [ "store" "-o" out "--comp" (specLib.squashfsCompressionSpec comp)
        "--closure-info" "${closureInfo { rootPaths = storeContents; }}" ]
        ++ map (p: "${p}") storeContents;
    };

  # nixos/lib/make-iso9660-image.nix, as NixOS's iso-image.nix calls it:
  # $out/iso/<isoName> (.zst or .bz2 with compressImage), and
  # nix-support/{system,hydra-build-products}. The spec (README, "imagegen
  # build") is built with builtins.toJSON and handed over with passAsFile.
  makeIsoImage = { isoName ? "cd.iso", system, kernel, initrd, storeContents ? [ ], ... }@args:
    let
      spec = specLib.spec (args // { inherit bootFiles; });
      ci = closureInfo { rootPaths = storeContents ++ [ system ]; };
    in derivation {
      name = isoName;
      system = buildSystem;
      builder = bin;
      args = [ "build" "--spec" specFile "-o" out "--nix-output" "--system" buildSystem
        "--closure-info" "${ci}" ];
      spec = builtins.toJSON spec;
      passAsFile = [ "spec" ];
    };

  # `imagegen initrd`: $out is the initrd (zstd cpio) whose /init is
  # nixlive's stage 1. stage1 must be a static binary in the store (the
  # flake's nixlive-static has bin/stage1): the sandbox has no Go to build
  # it; modulesDir is a kernel's lib/modules/<version> directory.
  makeInitrd = { stage1 ? "${imagegen}/bin/stage1", modulesDir ? null, modules ? null, name ? "nixlive-initrd" }:
    derivation {
      inherit name;
      system = buildSystem;
      builder = bin;
      # $out/initrd, as NixOS's system.build.initialRamdisk.
      args = [ "initrd" "--nix-output" "-o" out "--stage1" "${stage1}" ]
        ++ (if modulesDir == null then [ ] else [ "--kernel-modules" "${modulesDir}" ])
        ++ (if modules == null then [ ] else [ "--modules" (builtins.concatStringsSep "," modules) ]);
    };
in {
  inherit closureInfo makeSquashfs makeIsoImage makeInitrd debianBootFiles;
  inherit (specLib) fromConfig;
  # The spec makeIsoImage would hand imagegen, for inspection.
  isoSpec = args: specLib.spec (args // { inherit bootFiles; });
}
