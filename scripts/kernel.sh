#!/usr/bin/env bash
# Fetches Debian's cloud kernel (linux-image-cloud-amd64's current
# linux-image-<ver>-cloud-amd64) for the QEMU boot tests, without installing
# it: the package is downloaded with apt-get download, unpacked with
# dpkg-deb -x and indexed with depmod -b.
#
# Usage: scripts/kernel.sh [DIR]     (default: $NIXLIVE_KERNEL_DIR, else
#                                     /var/cache/nixlive/kernel)
#
# Leaves:
#   DIR/vmlinuz  -> boot/vmlinuz-<ver>
#   DIR/modules  -> lib/modules/<ver>   (with modules.dep from depmod)
#   DIR/version     <ver>, one line
# and prints the paths of vmlinuz and modules. Idempotent: when DIR already
# holds a kernel, it only prints them (no network). The new kernel is
# unpacked next to DIR and renamed into place, so an interrupted run leaves
# nothing that looks complete.
set -euo pipefail

dir=$(realpath -m -- "${1:-${NIXLIVE_KERNEL_DIR:-/var/cache/nixlive/kernel}}")
meta=linux-image-cloud-amd64

report() {
  echo "vmlinuz: $dir/vmlinuz"
  echo "modules: $dir/modules"
  echo "version: $(cat "$dir/version")"
}

complete() {
  [ -f "$dir/vmlinuz" ] && [ -f "$dir/modules/modules.dep" ] && [ -s "$dir/version" ]
}

if complete; then
  report
  exit 0
fi

for tool in apt-cache apt-get dpkg-deb depmod; do
  if ! command -v "$tool" >/dev/null && ! [ -x "/usr/sbin/$tool" ] && ! [ -x "/sbin/$tool" ]; then
    echo "kernel.sh: $tool not found (Debian's apt, dpkg and kmod are needed)" >&2
    exit 1
  fi
done
PATH=$PATH:/usr/sbin:/sbin

# The image package the meta package currently depends on, e.g.
# linux-image-6.1.0-56-cloud-amd64.
image_package() {
  apt-cache depends "$meta" 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[^ ]*-cloud-amd64\)$/\1/p' | head -n1
}

updated=
apt_update() {
  if [ -n "$updated" ]; then
    return 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "kernel.sh: $1, and refreshing the package lists needs root: run 'apt-get update' as root" >&2
    exit 1
  fi
  echo "kernel.sh: $1: apt-get update" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  updated=1
}

pkg=$(image_package || true)
if [ -z "$pkg" ]; then
  # Empty package lists (fresh container): refresh them once.
  apt_update "apt-cache knows no $meta"
  pkg=$(image_package || true)
fi
if [ -z "$pkg" ]; then
  echo "kernel.sh: cannot resolve $meta to a linux-image-*-cloud-amd64 package with apt-cache" >&2
  exit 1
fi
ver=${pkg#linux-image-}

parent=$(dirname "$dir")
if ! mkdir -p "$parent" 2>/dev/null || ! [ -w "$parent" ]; then
  echo "kernel.sh: cannot write to $parent: run as root or pass another DIR (or set NIXLIVE_KERNEL_DIR)" >&2
  exit 1
fi
# One fetch at a time per DIR; a run that waited finds the kernel there.
if command -v flock >/dev/null; then
  exec 9>"$parent/.$(basename "$dir").lock"
  flock 9
  if complete; then
    report
    exit 0
  fi
fi
if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
  echo "kernel.sh: $dir exists but holds no complete kernel (vmlinuz, modules/modules.dep, version); remove it and run again" >&2
  exit 1
fi
work=$(mktemp -d "$parent/.kernel.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "kernel.sh: fetching $pkg into $dir" >&2
# apt-get download writes into the current directory; as root, apt drops
# privileges to _apt, which must be able to write there.
chmod 0755 "$work"
mkdir "$work/deb" "$work/root"
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
  chown _apt "$work/deb"
fi
if ! (cd "$work/deb" && apt-get download -qq "$pkg"); then
  # Stale package lists name a file the mirror no longer has.
  apt_update "apt-get download $pkg failed" || exit 1
  pkg=$(image_package || true)
  if [ -z "$pkg" ]; then
    echo "kernel.sh: cannot resolve $meta after apt-get update" >&2
    exit 1
  fi
  ver=${pkg#linux-image-}
  (cd "$work/deb" && apt-get download -qq "$pkg")
fi
deb=$(ls "$work/deb"/*.deb)
dpkg-deb -x "$deb" "$work/root"

kernel=$work/root/boot/vmlinuz-$ver
if ! [ -f "$kernel" ]; then
  echo "kernel.sh: $pkg has no boot/vmlinuz-$ver" >&2
  exit 1
fi
# Debian 12 puts modules under /lib/modules; later releases under
# /usr/lib/modules. depmod -b wants BASE/lib/modules/VER.
if ! [ -d "$work/root/lib/modules/$ver" ] && [ -d "$work/root/usr/lib/modules/$ver" ]; then
  mkdir -p "$work/root/lib"
  ln -s ../usr/lib/modules "$work/root/lib/modules"
fi
if ! [ -d "$work/root/lib/modules/$ver" ]; then
  echo "kernel.sh: $pkg has no lib/modules/$ver" >&2
  exit 1
fi
depmod -b "$work/root" "$ver"

ln -s "boot/vmlinuz-$ver" "$work/root/vmlinuz"
ln -s "lib/modules/$ver" "$work/root/modules"
echo "$ver" >"$work/root/version"
chmod 0755 "$work/root"

# DIR is absent or an empty directory here (checked above).
if [ -d "$dir" ]; then
  rmdir "$dir"
fi
mv "$work/root" "$dir"
report
