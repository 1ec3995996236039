package stage1

import (
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/live"
)

// What NixOS's scripted stage 1 (nixos/modules/system/boot/stage-1-init.sh)
// leaves for its stage 2, which stage 1 leaves too: NixOS systems boot
// through it unchanged.

// devLinks makes the links stage-1-init.sh makes in devtmpfs, which moves
// into stage 2 with /dev.
func devLinks() error {
	for _, l := range [][2]string{
		{"/proc/self/fd", "/dev/fd"},
		{"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"},
		{"/proc/self/fd/2", "/dev/stderr"},
	} {
		os.Remove(l[1]) // ln -sfn
		if err := os.Symlink(l[0], l[1]); err != nil {
			return fmt.Errorf("stage1: %w", err)
		}
	}
	return nil
}

// devRoot links /dev/root to the medium (NixOS links it from root=; the
// fstab of iso-image.nix mounts /dev/root on /iso): the device /iso is on
// (for findiso, the loop device over the ISO file), and writes the udev
// rule stage-1-init.sh writes for that device, so that udev in stage 2
// keeps the link. For copytoram /iso is a tmpfs (major 0): the link goes
// to medium and there is no rule, as in NixOS.
func devRoot(medium string) error {
	var st unix.Stat_t
	if err := unix.Stat(path.Join(live.NewRoot, live.ISODir), &st); err != nil {
		return fmt.Errorf("stage1: %w", err)
	}
	major, minor := unix.Major(st.Dev), unix.Minor(st.Dev)
	if major != 0 {
		sys, err := os.Readlink(fmt.Sprintf("/sys/dev/block/%d:%d", major, minor))
		if err != nil {
			return fmt.Errorf("stage1: the device of %s: %w", live.ISODir, err)
		}
		medium = "/dev/" + path.Base(sys)
	}
	os.Remove(live.DevRoot)
	if err := os.Symlink(medium, live.DevRoot); err != nil {
		return fmt.Errorf("stage1: %w", err)
	}
	if major == 0 {
		return nil
	}
	if err := os.MkdirAll(path.Dir(live.DevRootRule), 0o755); err != nil {
		return fmt.Errorf("stage1: %w", err)
	}
	rule := fmt.Sprintf(`ACTION=="add|change", SUBSYSTEM=="block", ENV{MAJOR}=="%d", ENV{MINOR}=="%d", SYMLINK+="root"`+"\n", major, minor)
	if err := os.WriteFile(live.DevRootRule, []byte(rule), 0o644); err != nil {
		return fmt.Errorf("stage1: %w", err)
	}
	return nil
}

// killStray kills every process but this one and the kernel's threads, as
// stage-1-init.sh does before switch_root (a rescue shell's leftovers, say),
// sparing storage daemons (a command line starting with "@", systemd's
// convention). It returns what it killed.
func killStray() []string {
	const pfKthread = 0x00200000
	entries, _ := os.ReadDir("/proc")
	var killed []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		// A kernel thread has no executable: one readlink tells most of
		// them apart, cheaper than reading every stat under emulation.
		if _, err := os.Readlink(path.Join("/proc", e.Name(), "exe")); err != nil && os.IsNotExist(err) {
			continue
		}
		stat, err := os.ReadFile(path.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if i < 0 || len(f) < 7 {
			continue
		}
		if flags, _ := strconv.ParseUint(f[6], 10, 64); flags&pfKthread != 0 {
			continue
		}
		if cmd, _ := os.ReadFile(path.Join("/proc", e.Name(), "cmdline")); strings.HasPrefix(string(cmd), "@") {
			continue
		}
		if unix.Kill(pid, unix.SIGKILL) == nil {
			killed = append(killed, e.Name())
		}
	}
	return killed
}

// restoreModprobe puts back the kernel's usermode helper path, as
// stage-1-init.sh does before switch_root.
func restoreModprobe() error {
	return os.WriteFile("/proc/sys/kernel/modprobe", []byte("/sbin/modprobe\n"), 0o644)
}

// nixosHandover leaves, just before switch_root, what stage-1-init.sh
// leaves: /dev/root and its udev rule, the modprobe helper path restored,
// no other process.
func (b *Boot) nixosHandover() error {
	if err := devRoot(b.device); err != nil {
		return err
	}
	if err := restoreModprobe(); err != nil {
		b.Log.Warn("/proc/sys/kernel/modprobe not restored", "err", err)
	}
	if killed := killStray(); len(killed) > 0 {
		b.Log.Info("killed processes left over", "pids", strings.Join(killed, " "))
	}
	return nil
}
