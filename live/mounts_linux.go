package live

import "golang.org/x/sys/unix"

// SpecialMount is a kernel file system a stage mounts before its work.
type SpecialMount struct {
	Source, Target, FSType, Data string
	Flags                        uintptr
}

// SpecialMounts are the file systems stage 1 mounts, and moves into the
// new root for stage 2 (which adds /dev/pts and /dev/shm).
var SpecialMounts = []SpecialMount{
	{"proc", "/proc", "proc", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
	{"sysfs", "/sys", "sysfs", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
	{"devtmpfs", "/dev", "devtmpfs", "mode=0755", unix.MS_NOSUID},
	{"tmpfs", "/run", "tmpfs", "mode=0755", unix.MS_NOSUID | unix.MS_NODEV},
}
