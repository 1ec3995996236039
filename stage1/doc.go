// Package stage1 is PID 1 of the live CD's initrd: it finds the medium by
// its volume label, mounts it, loop-mounts the squashfs store under a tmpfs
// overlay so the store is writable, and switch_roots into stage 2 — the
// layout NixOS's own stage 1 builds for a live CD (nixpkgs'
// nixos/modules/installer/cd-dvd/iso-image.nix declares it):
//
//	/               tmpfs      mode=0755
//	/iso            the medium (iso9660, read-only)
//	/nix/.ro-store  squashfs   loop, from /iso/nix-store.squashfs
//	/nix/.rw-store  tmpfs      mode=0755
//	/nix/store      overlay    lower /nix/.ro-store, upper and work in /nix/.rw-store
//
// The paths, the kernel command line and the timeline are package live's;
// file system probing is internal/blkid's. What needs no root, the mount
// plan (Plan), is portable and unit-tested; the Linux side (mounts, loop
// devices, module loading, switch_root) lives in _linux.go files. Every step
// is timed, logged on the console and left as JSON in /run for stage 2.
//
// Not supported: LUKS, LVM, ZFS, resume from hibernation, NixOS's
// postMountCommands and other stage-1 hooks.
package stage1
