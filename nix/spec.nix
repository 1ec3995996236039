# The pure part of nixlive's Nix interface: plain attribute sets in, plain
# attribute sets out, builtins only, no derivation and no store access, so
# that it evaluates under any Nix (Debian's 2.8 included) and can be tested
# with `nix-instantiate --eval --strict --json`.
#
#   fromConfig: the values of NixOS's isoImage.* options (and image.*,
#     boot.loader.timeout, the system's kernel and initrd) → the arguments
#     of lib.nix's makeIsoImage.
#   spec: makeIsoImage's arguments (and the boot loader files) → the spec
#     that `imagegen build` reads (README, "imagegen build").
rec {
  defaultCompression = "zstd -Xcompression-level 19";

  # A mksquashfs compression string as imagegen takes it: xz's branch
  # filter (-Xbcj x86, in NixOS's default before 24.05) is dropped, as
  # imagegen's xz has none; the rest is imagegen's to judge.
  squashfsCompressionSpec = c:
    let
      words = builtins.filter (w: builtins.isString w && w != "") (builtins.split "[ \t]+" c);
      drop = ws:
        if ws == [ ] then [ ]
        else if builtins.head ws == "-Xbcj" && builtins.length ws >= 2 then drop (builtins.tail (builtins.tail ws))
        else [ (builtins.head ws) ] ++ drop (builtins.tail ws);
    in builtins.concatStringsSep " " (drop words);

  # NixOS's isoImage.compressImage is a boolean (zstd when true); the spec
  # also takes "zstd" or "bzip2".
  compressImageSpec = c:
    if c == true then "zstd"
    else if c == false || c == null then false
    else c;

  # iso-image.nix puts its own boot loader in isoImage.contents (the kernel
  # and initrd in /boot, isolinux in /isolinux, GRUB's EFI tree in /EFI,
  # efi.img and grub/ in /boot, memtest, themes): imagegen lays out its own
  # there, so those targets are left out (their sources are never read,
  # nor built). The rest (version.txt, the user's files) goes on the ISO.
  bootTargetDirs = [ "boot" "isolinux" "EFI" ];
  isBootTarget = target:
    let
      t = builtins.replaceStrings [ "//" ] [ "/" ] ("/" + target);
      under = d: t == "/${d}" || builtins.substring 0 (builtins.stringLength d + 2) t == "/${d}/";
    in builtins.any under bootTargetDirs;

  # cfg: the config values, as plain attribute sets:
  #   isoImage: { isoName, volumeID, contents, storeContents,
  #     squashfsCompression, compressImage, makeEfiBootable,
  #     makeBiosBootable, makeUsbBootable, appendToMenuLabel,
  #     prependToMenuLabel } (any may be missing: the NixOS defaults apply)
  #   image: { fileName, baseName } (optional: NixOS 25.05 renamed
  #     isoImage.isoName to image.fileName, isoBaseName to image.baseName)
  #   system: the system's top level; kernel, initrd: the files to boot;
  #   kernelParams: the system's boot.kernelParams;
  #   timeout: boot.loader.timeout (null: wait for a choice);
  #   label: the menu label (distroName + release label).
  fromConfig = cfg:
    let
      iso = cfg.isoImage or { };
      image = cfg.image or { };
      timeout = cfg.timeout or 10;
    in {
      isoName = image.fileName or iso.isoName or ((image.baseName or "nixos") + ".iso");
      volumeID = iso.volumeID or "NIXOS_BOOT_CD";
      system = cfg.system;
      kernel = cfg.kernel;
      initrd = cfg.initrd;
      kernelParams = cfg.kernelParams or [ ];
      storeContents = iso.storeContents or [ ];
      contents = map (c: { inherit (c) source target; })
        (builtins.filter (c: !(isBootTarget c.target)) (iso.contents or [ ]));
      squashfsCompression = iso.squashfsCompression or defaultCompression;
      compressImage = iso.compressImage or false;
      boot = {
        bios = iso.makeBiosBootable or true;
        efi = iso.makeEfiBootable or true;
        usb = iso.makeUsbBootable or true;
        timeout = if timeout == null then -1 else timeout;
        label = (iso.prependToMenuLabel or "") + (cfg.label or "NixOS")
          + (iso.appendToMenuLabel or " Live");
      };
    };

  # A one-level merge: b's keys win, but attribute sets found on both sides
  # (efiFiles, biosFiles) are merged too.
  mergeBoot = a: b:
    a // builtins.mapAttrs (k: v:
      if builtins.isAttrs v && builtins.isAttrs (a.${k} or null) then a.${k} // v else v) b;

  # args: makeIsoImage's arguments; bootFiles: { biosFiles, efiFiles,
  # efiLoader? } or null (imagegen's defaults, Debian's /usr/lib paths).
  # Every path is turned into a string (a store path, with its context).
  spec = { bootFiles ? null, ... }@args:
    let
      str = p: "${p}";
      boot = mergeBoot (if bootFiles == null then { } else bootFiles) (args.boot or { });
      strings = v:
        if builtins.isAttrs v && !(v ? outPath) then builtins.mapAttrs (_: strings) v
        else if builtins.isList v then map strings v
        else if builtins.isPath v || builtins.isAttrs v then str v
        else v;
    in {
      isoName = args.isoName or "cd.iso";
      volumeID = args.volumeID or "NIXOS_BOOT_CD";
      system = str args.system;
      kernel = str args.kernel;
      initrd = str args.initrd;
      kernelParams = args.kernelParams or [ ];
      storeContents = map str (args.storeContents or [ ]);
      contents = map (c: { source = str c.source; target = c.target; }) (args.contents or [ ]);
      squashfsCompression = squashfsCompressionSpec (args.squashfsCompression or defaultCompression);
      compressImage = compressImageSpec (args.compressImage or false);
      boot = strings boot;
    } // (if args ? sourceDateEpoch then { inherit (args) sourceDateEpoch; } else { });
}
