package stage2

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/live"
	"github.com/nixlive/nixlive/postboot"
)

// NixbldGID is the group that owns the store in NixOS (nixbld).
const NixbldGID = 30000

type run struct {
	log    *slog.Logger
	tl     *live.Timeline
	stage1 *live.Timeline
}

// Main is stage 2's main; it execs the system's init or the rescue shell.
func Main() {
	r := &run{tl: live.NewTimeline("stage2", live.Uptime)}
	r.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.String("uptime", fmt.Sprintf("%.6f", live.Uptime().Seconds()))
		}
		return a
	}})).With("stage", "stage2")
	r.mark("start", "")
	if err := r.early(); err != nil {
		r.log.Error("early mounts", "err", err)
	}
	cmdline, err := live.ReadCmdline()
	if err != nil {
		r.log.Warn("kernel command line", "err", err)
	}
	self, _ := os.Executable()
	if len(os.Args) > 0 && path.IsAbs(os.Args[0]) {
		self = os.Args[0]
	}
	sys := SystemConfig(os.Getenv("systemConfig"), cmdline, self)
	r.mark("system", sys)
	if f, err := os.Open(live.Stage1TimelinePath); err == nil {
		r.stage1, _ = live.ReadTimeline(f)
		f.Close()
	}
	for _, step := range []struct {
		name string
		fn   func() error
	}{
		{"etc and tmp", r.dirs},
		{"activate", func() error { return r.activate(sys) }},
		{"system links", func() error { return r.links(sys) }},
		// postboot writes to the store dir (Nix's .links) and the database
		// before the store turns read-only; Nix itself would remount it in
		// a private mount namespace, which PID 1 cannot do for itself
		// without handing the namespace on to the system's init.
		{"postboot", r.runPostboot},
		{"store", r.store},
		{"post-boot commands", func() error { return r.postBootCommands(sys) }},
	} {
		if err := step.fn(); err != nil {
			r.log.Error(step.name, "err", err)
			r.mark(step.name+" failed", err.Error())
			continue
		}
		r.mark(step.name, "")
	}
	choice := ChooseInit(sys, cmdline, isExecutable)
	r.mark("exec init", choice.Path)
	r.writeTimeline()
	if choice.Path == "" {
		r.log.Error("no init to hand over to", "why", choice.Reason)
		r.rescue()
	}
	r.log.Info("handing over", "init", choice.Path, "why", choice.Reason)
	env := append(os.Environ(), "systemConfig="+sys)
	err = unix.Exec(choice.Path, []string{choice.Path}, env)
	r.log.Error("exec init", "init", choice.Path, "err", err)
	r.rescue()
}

func (r *run) mark(name, detail string) {
	s := r.tl.Mark(name, detail)
	r.log.Info(name, "detail", detail, "at", time.Duration(s.At).Round(time.Microsecond))
}

// early mounts what is missing; stage 1 moved /proc, /sys, /dev and /run
// in, a boot without stage 1 (a container, a test) may have none.
func (r *run) early() error {
	var errs []error
	for _, m := range append(slices.Clone(live.SpecialMounts),
		live.SpecialMount{Source: "devpts", Target: "/dev/pts", FSType: "devpts", Data: "mode=0620,gid=3,ptmxmode=0666", Flags: unix.MS_NOSUID | unix.MS_NOEXEC},
		live.SpecialMount{Source: "tmpfs", Target: "/dev/shm", FSType: "tmpfs", Data: "mode=1777", Flags: unix.MS_NOSUID | unix.MS_NODEV},
	) {
		if mounted(m.Target) {
			continue
		}
		os.MkdirAll(m.Target, 0o755)
		if err := unix.Mount(m.Source, m.Target, m.FSType, m.Flags, m.Data); err != nil {
			errs = append(errs, fmt.Errorf("mount %s on %s: %w", m.FSType, m.Target, err))
		}
	}
	return errors.Join(errs...)
}

// mounted reports whether p is a mount point (its device differs from its
// parent's).
func mounted(p string) bool {
	var a, b unix.Stat_t
	if unix.Stat(p, &a) != nil || unix.Stat(path.Dir(p), &b) != nil {
		return false
	}
	return a.Dev != b.Dev || p == "/"
}

// store gives the store to root:nixbld with the sticky bit and makes it
// read-only, nosuid, nodev through a bind mount, as NixOS does; writes go
// through the Nix daemon (or postboot) with the mount's lower layers.
func (r *run) store() error {
	const s = live.Store
	if err := os.Chown(s, 0, NixbldGID); err != nil {
		return fmt.Errorf("chown %s: %w", s, err)
	}
	if err := os.Chmod(s, 0o1775|os.ModeSticky); err != nil {
		return fmt.Errorf("chmod %s: %w", s, err)
	}
	if err := unix.Mount(s, s, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mount %s: %w", s, err)
	}
	if err := unix.Mount(s, s, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", s, err)
	}
	return nil
}

func (r *run) dirs() error {
	for _, d := range []struct {
		p    string
		mode os.FileMode
	}{{"/etc", 0o755}, {"/etc/nixos", 0o755}, {"/tmp", 0o1777 | os.ModeSticky}} {
		if err := os.MkdirAll(d.p, d.mode.Perm()); err != nil {
			return err
		}
		if err := os.Chmod(d.p, d.mode); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) activate(sys string) error {
	p := path.Join(sys, "activate")
	if !isExecutable(p) {
		r.log.Info("no activation script", "path", p)
		return nil
	}
	cmd := exec.Command(p)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "systemConfig="+sys)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// links points /run/booted-system and /run/current-system at the system,
// each made as a temporary link renamed into place.
func (r *run) links(sys string) error {
	if sys == "" {
		return errors.New("no systemConfig: not on the kernel command line, not in the environment")
	}
	for _, l := range []string{"/run/booted-system", "/run/current-system"} {
		tmp := l + ".tmp"
		os.Remove(tmp)
		if err := os.Symlink(sys, tmp); err != nil {
			return err
		}
		if err := os.Rename(tmp, l); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) runPostboot() error { return postboot.Default(r.log) }

func (r *run) postBootCommands(sys string) error {
	p := path.Join(sys, "post-boot")
	if !isExecutable(p) {
		return nil
	}
	cmd := exec.Command(p)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

func (r *run) writeTimeline() {
	all := live.NewTimeline("boot", live.Uptime)
	if r.stage1 != nil {
		all.Kernel = r.stage1.Kernel
		for _, s := range r.stage1.Steps {
			s.Name = "stage1: " + s.Name
			all.Steps = append(all.Steps, s)
		}
	}
	for _, s := range r.tl.Steps {
		s.Name = "stage2: " + s.Name
		all.Steps = append(all.Steps, s)
	}
	var buf bytes.Buffer
	if err := all.WriteJSON(&buf); err != nil {
		return
	}
	os.MkdirAll(path.Dir(live.TimelinePath), 0o755)
	tmp := live.TimelinePath + ".tmp"
	if os.WriteFile(tmp, buf.Bytes(), 0o644) == nil {
		os.Rename(tmp, live.TimelinePath)
	}
}

// rescue starts a shell when there is nothing to hand over to; PID 1 must
// not exit.
func (r *run) rescue() {
	for _, sh := range []string{"/run/current-system/sw/bin/sh", "/bin/sh"} {
		if isExecutable(sh) {
			r.log.Info("starting the rescue shell", "shell", sh)
			cmd := exec.Command(sh)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			cmd.Run()
		}
	}
	r.log.Error("no shell to start; halting")
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_HALT)
	select {}
}
