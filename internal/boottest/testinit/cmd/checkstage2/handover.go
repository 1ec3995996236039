package main

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// start is what stage 1 handed over, taken before checkstage2 does
// anything.
type start struct {
	args, env []string
	pid       int
}

// handover checks the state NixOS's scripted stage 1 (stage-1-init.sh)
// leaves for stage-2-init.sh: "exec env -i switch_root /mnt-root
// $stage2Init" gives stage 2 an empty environment and only its path in
// argv; the special file systems of boot.specialFileSystems moved in with
// their options; /dev/fd and the std links made in devtmpfs; stdio on the
// console; every process of stage 1 killed; /proc/sys/kernel/modprobe
// restored to /sbin/modprobe.
func (c *checker) handover(s start, init string) {
	c.check("handover-argv", len(s.args) == 1 && s.args[0] == init,
		fmt.Sprintf("argv=%q want=[%q]", s.args, init))
	c.check("handover-env", len(s.env) == 0, fmt.Sprintf("env=%q", s.env))
	_, err := os.Stat("/proc/1")
	self, _ := os.Readlink("/proc/self")
	c.check("pid1", s.pid == 1 && err == nil && self == "1", fmt.Sprintf("pid=%d /proc/self=%s err=%v", s.pid, self, err))
	c.specialMounts()
	var links []string
	okLinks := true
	for _, l := range [][2]string{{"/dev/fd", "/proc/self/fd"}, {"/dev/stdin", "/proc/self/fd/0"}, {"/dev/stdout", "/proc/self/fd/1"}, {"/dev/stderr", "/proc/self/fd/2"}} {
		got, err := os.Readlink(l[0])
		okLinks = okLinks && err == nil && got == l[1]
		links = append(links, fmt.Sprintf("%s->%s", l[0], got))
	}
	c.check("dev-fd-links", okLinks, strings.Join(links, " "))
	kmsg, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err == nil {
		_, err = kmsg.WriteString("checkstage2: /dev/kmsg is writable\n")
		kmsg.Close()
	}
	c.check("dev-kmsg-writable", err == nil, fmt.Sprint(err))
	c.consoleFDs()
	c.noProcesses()
	mp, err := os.ReadFile("/proc/sys/kernel/modprobe")
	c.check("modprobe-path", err == nil && string(mp) == "/sbin/modprobe\n", fmt.Sprintf("%q err=%v", mp, err))
}

// specialMount is one of boot.specialFileSystems as NixOS's stage 1 mounts
// it (nixos/modules/tasks/filesystems.nix, in sync with systemd's
// mount-setup.c): the per-mount options mountinfo shows, and for tmpfs
// and devtmpfs the mode of the root and the size as a share of memory.
type specialMount struct {
	target, fstype, opts string
	mode                 uint32
	sizePercent          int64
}

var nixosSpecial = []specialMount{
	{"/proc", "proc", "rw,nosuid,nodev,noexec,relatime", 0o555, 0},
	{"/sys", "sysfs", "rw,nosuid,nodev,noexec,relatime", 0o555, 0},
	{"/dev", "devtmpfs", "rw,nosuid", 0o755, 5},     // strictatime,mode=755,size=5% (boot.devSize)
	{"/run", "tmpfs", "rw,nosuid,nodev", 0o755, 25}, // strictatime,mode=755,size=25% (boot.runSize)
}

func (c *checker) specialMounts() {
	ms := mounts()
	memKB := memTotalKB()
	for _, want := range nixosSpecial {
		m, ok := ms[want.target]
		var st unix.Stat_t
		unix.Stat(want.target, &st)
		pass := ok && m.fstype == want.fstype && sameOpts(m.opts, want.opts) && st.Mode&0o7777 == want.mode
		detail := fmt.Sprintf("%s %s %s mode=%o", want.target, m.fstype, m.opts, st.Mode&0o7777)
		if want.sizePercent > 0 {
			var sf unix.Statfs_t
			unix.Statfs(want.target, &sf)
			gotKB := int64(sf.Blocks) * sf.Bsize >> 10
			wantKB := memKB * want.sizePercent / 100
			pass = pass && gotKB > wantKB*98/100 && gotKB < wantKB*102/100
			detail += fmt.Sprintf(" size=%dk want~%dk", gotKB, wantKB)
		}
		c.check("special-mount"+strings.ReplaceAll(want.target, "/", "-"), pass, detail)
	}
}

// sameOpts compares comma-separated option lists as sets.
func sameOpts(a, b string) bool {
	x, y := strings.Split(a, ","), strings.Split(b, ",")
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

func memTotalKB() int64 {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// consoleFDs checks that fds 0 to 2 are open on the console (5:1), as the
// kernel opened them for stage 1.
func (c *checker) consoleFDs() {
	pass := true
	var ds []string
	for fd := 0; fd <= 2; fd++ {
		var st unix.Stat_t
		err := unix.Fstat(fd, &st)
		name, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
		isConsole := err == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && unix.Major(st.Rdev) == 5 && unix.Minor(st.Rdev) == 1
		pass = pass && isConsole
		ds = append(ds, fmt.Sprintf("%d=%s(%d:%d)", fd, name, unix.Major(st.Rdev), unix.Minor(st.Rdev)))
	}
	c.check("console-fds", pass, strings.Join(ds, " "))
}

// noProcesses checks that no user process but this one runs: stage 1's
// helpers must not survive into stage 2 (NixOS's stage 1 kills every
// process but storage daemons before switch_root). Kernel threads are told
// by PF_KTHREAD in /proc/PID/stat.
func (c *checker) noProcesses() {
	const pfKthread = 0x00200000
	entries, err := os.ReadDir("/proc")
	var stray []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == 1 {
			continue
		}
		stat, err := os.ReadFile(path.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp session tty_nr tpgid flags ...
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) < 7 {
			continue
		}
		flags, _ := strconv.ParseUint(f[6], 10, 64)
		if flags&pfKthread == 0 {
			stray = append(stray, fmt.Sprintf("%d%s", pid, s[strings.IndexByte(s, '('):i+1]))
		}
	}
	c.check("no-stage1-processes", err == nil && len(stray) == 0, fmt.Sprintf("user processes besides 1: %v err=%v", stray, err))
}

// specialTargets are the mount points of the special file systems, below
// which the kernel may mount more (/sys/kernel/..., /proc/sys/fs/...).
func specialTarget(p string) bool {
	for _, m := range nixosSpecial {
		if p == m.target || (m.target != "/run" && strings.HasPrefix(p, m.target+"/")) {
			return true
		}
	}
	return false
}
