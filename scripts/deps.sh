#!/usr/bin/env bash
# Installs the Debian packages that nixlive's tests, benchmarks and demo use,
# only those missing, so a second run does nothing and needs no network.
set -euo pipefail

packages=(
  squashfs-tools   # mksquashfs/unsquashfs: the reference writer and an independent reader
  nix-bin          # real Nix (always run with --store DIR)
  xorriso          # independent ISO 9660 reader
  genisoimage      # isoinfo
  isolinux syslinux-common
  grub-efi-amd64-bin grub-common
  shim-signed grub-efi-amd64-signed  # the Secure Boot chain: Microsoft-signed shim, Debian-signed GRUB
  systemd-boot-efi                   # systemd-boot, signed with the user's own key
  sbsigntool                         # sbverify: an independent reader of our Authenticode signatures
  openssl                            # decrypts Debian's snakeoil test key
  ovmf
  mtools dosfstools
  qemu-system-x86 seabios ipxe-qemu
  zstd xz-utils lz4 bzip2 cpio file
  e2fsprogs
  fdisk gdisk      # sfdisk (util-linux) and gdisk: independent readers of the MBR and GPT imagegen persist writes
  sqlite3          # the C SQLite shell: an independent reader of the Nix databases we write
  kmod
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  bash "$(dirname "$0")/kernel.sh" >/dev/null
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing Debian packages: ${missing[*]}; run as root or install them" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# Debian's cloud kernel for the QEMU boot tests, unpacked, not installed.
bash "$(dirname "$0")/kernel.sh" >/dev/null
