# A NixOS module: NixOS's live ISO (installer/cd-dvd/iso-image.nix, its
# isoImage.* options and live layout) with system.build.isoImage built by
# nixlive (lib.nix's makeIsoImage: imagegen, no xorriso or mksquashfs).
# Thin on purpose: the mapping from option values to the build is
# nix/spec.nix's fromConfig, which the tests check without NixOS.
#
#   imports = [ nixlive.nixosModules.iso ];   # flake.nix sets nixlive.package
#   nixlive.initrd.enable = true;             # nixlive's stage 1 initrd
#   nixlive.postboot.enable = true;           # nixlive's postboot
{ config, lib, pkgs, modulesPath, ... }:
let
  cfg = config.nixlive;
  nixlive = import ../lib.nix { imagegen = cfg.package; inherit (cfg) bootFiles; };
  kernel = config.boot.kernelPackages.kernel;
  iso = config.isoImage;
  optional = name: lib.optionalAttrs (iso ? ${name}) { ${name} = iso.${name}; };
  # nixlive's initrd is the system's initialRamdisk ($out/initrd), so the
  # ISO and everything else that boots the system take it.
  initrd = "${config.system.build.initialRamdisk}/${config.system.boot.loader.initrdFile}";
in {
  imports = [ (modulesPath + "/installer/cd-dvd/iso-image.nix") ];

  options.nixlive = {
    package = lib.mkOption {
      type = lib.types.package;
      description = "nixlive, statically linked: bin/imagegen (the builder), bin/stage1, bin/postboot.";
    };
    bootFiles = lib.mkOption {
      type = lib.types.nullOr lib.types.attrs;
      default = import ../bootfiles.nix pkgs;
      defaultText = lib.literalExpression "import nixlive/nix/bootfiles.nix pkgs";
      description = "The boot loader files (lib.nix's bootFiles: the spec's boot.biosFiles, boot.efiFiles, boot.efiLoader).";
    };
    initrd.enable = lib.mkEnableOption "nixlive's initrd (imagegen initrd: stage 1 in Go) instead of NixOS's scripted one on the ISO";
    postboot.enable = lib.mkEnableOption "nixlive's postboot (load-db, /etc/NIXOS, the system profile, without Nix) instead of iso-image.nix's boot.postBootCommands";
  };

  config = {
    system.build.isoImage = lib.mkForce (nixlive.makeIsoImage (nixlive.fromConfig {
      isoImage = {
        inherit (iso) volumeID contents storeContents squashfsCompression compressImage
          makeEfiBootable makeUsbBootable appendToMenuLabel prependToMenuLabel;
      } // optional "isoName" // optional "makeBiosBootable";
      # NixOS 25.05: image.fileName (was isoImage.isoName), image.baseName.
      image = lib.optionalAttrs (config ? image)
        (builtins.intersectAttrs { fileName = null; baseName = null; } config.image);
      system = config.system.build.toplevel;
      kernel = "${kernel}/${config.system.boot.loader.kernelFile}";
      inherit initrd;
      kernelParams = config.boot.kernelParams;
      timeout = config.boot.loader.timeout;
      label = "${config.system.nixos.distroName or "NixOS"} ${config.system.nixos.label}";
    }));

    system.build.initialRamdisk = lib.mkIf cfg.initrd.enable (lib.mkForce (nixlive.makeInitrd {
      modulesDir = "${config.system.modulesTree}/lib/modules/${kernel.modDirVersion}";
    }));

    # Replaces every boot.postBootCommands (iso-image.nix's nix-store
    # --load-db, touch /etc/NIXOS, nix-env --set): other modules' commands
    # there are dropped too.
    boot.postBootCommands = lib.mkIf cfg.postboot.enable (lib.mkForce ''
      ${cfg.package}/bin/postboot
    '');
  };
}
