package live

import "golang.org/x/sys/unix"

// SpecialMount is a kernel file system a stage mounts before its work.
type SpecialMount struct {
	Source, Target, FSType, Data string
	Flags                        uintptr
}

// SpecialMounts are the file systems stage 1 mounts, and moves into the
// new root for stage 2 (which adds /dev/pts and /dev/shm), with the
// options of NixOS's boot.specialFileSystems (nixos/modules/tasks/
// filesystems.nix, in sync with systemd's mount-setup.c), the sizes its
// defaults boot.devSize and boot.runSize.
var SpecialMounts = []SpecialMount{
	{"proc", "/proc", "proc", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
	{"sysfs", "/sys", "sysfs", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
	{"devtmpfs", "/dev", "devtmpfs", "mode=0755,size=5%", unix.MS_NOSUID | unix.MS_STRICTATIME},
	{"tmpfs", "/run", "tmpfs", "mode=0755,size=25%", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_STRICTATIME},
}
