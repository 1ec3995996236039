// Package stage1 is PID 1 of the live CD's initrd: it finds the medium by
// its volume label, mounts it, loop-mounts the squashfs store under a tmpfs
// overlay so the store is writable, and switch_roots into stage 2 — the
// layout of REFERENCE.md §1, the one NixOS's own stage 1 builds:
//
//	/               tmpfs      mode=0755
//	/iso            the medium (iso9660, read-only)
//	/nix/.ro-store  squashfs   loop, from /iso/nix-store.squashfs
//	/nix/.rw-store  tmpfs      mode=0755
//	/nix/store      overlay    lower /nix/.ro-store, upper and work in /nix/.rw-store
//
// The logic that needs no root — the kernel command line, file system
// probing, the mount plan, the timeline — is portable and unit-tested; the
// Linux side (mounts, loop devices, module loading, switch_root) lives in
// _linux.go files. Every step is timed, logged on the console and written
// as JSON to /run/nixlive/stage1.json, which stage 2 finds after the switch.
package stage1
