package stage1

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/internal/copyfile"
	"github.com/nixlive/nixlive/internal/kmod"
	"github.com/nixlive/nixlive/internal/nix/nixroot"
	"github.com/nixlive/nixlive/live"
)

// Boot is one run of stage 1.
type Boot struct {
	Cmd      *live.Cmdline
	Timeline *live.Timeline
	Log      *slog.Logger
	Console  io.Writer
	Release  string // kernel release (uname -r)

	device string          // the medium, once found
	seen   []Device        // every block device seen while looking
	kmod   *kmod.DB        // the initrd's modules, if any
	flush  func()          // waits until the console has everything
	loaded map[string]bool // module files already tried
	keep   []func()        // what holds devices open until stage 2 (persistence's loop)
}

// Main is stage 1's main: it never returns.
func Main() {
	console := newAsyncWriter(os.Stderr)
	tl := live.NewTimeline("stage1", live.Uptime)
	log := slog.New(newConsoleHandler(console, live.Uptime))
	b := &Boot{Timeline: tl, Log: log, Console: console, flush: console.Flush, loaded: map[string]bool{}}
	b.mark("start", "")
	err := b.run()
	b.fail(err)
}

func (b *Boot) mark(name, detail string) {
	s := b.Timeline.Mark(name, detail)
	if detail != "" {
		b.Log.Info(name, "detail", detail, "at", time.Duration(s.At).Round(time.Microsecond))
	} else {
		b.Log.Info(name, "at", time.Duration(s.At).Round(time.Microsecond))
	}
}

func (b *Boot) run() error {
	if err := mountEarly(); err != nil {
		return err
	}
	b.mark("early mounts", "/proc /sys /dev /run")
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		b.Release = unix.ByteSliceToString(uts.Release[:])
		b.Timeline.Kernel = b.Release
	}
	var err error
	if b.Cmd, err = live.ReadCmdline(); err != nil {
		return fmt.Errorf("stage1: kernel command line: %w", err)
	}
	b.noteCmdline()
	if b.Cmd.Debug1 && b.Cmd.Debug1Where == "" {
		b.shell("boot.debug1: shell before anything is mounted")
	}
	if err := b.loadModules(); err != nil {
		return err
	}
	dev, err := b.findMedium()
	if err != nil {
		return err
	}
	b.device = dev
	if b.Cmd.Debug1 && b.Cmd.Debug1Where == "devices" {
		b.shell("boot.debug1devices: shell after finding the medium")
	}
	if err := b.mountAll(); err != nil {
		return err
	}
	if b.Cmd.Debug1 && b.Cmd.Debug1Where == "mounts" {
		b.shell("boot.debug1mounts: shell after mounting")
	}
	if err := b.checkSystem(); err != nil {
		return err
	}
	return b.switchRoot()
}

// mountEarly mounts the special file systems stage 1 needs; the kernel
// mounts none of them for an initramfs (not even devtmpfs).
func mountEarly() error {
	for _, m := range live.SpecialMounts {
		if err := os.MkdirAll(m.Target, 0o755); err != nil {
			return fmt.Errorf("stage1: mkdir %s: %w", m.Target, err)
		}
		err := unix.Mount(m.Source, m.Target, m.FSType, m.Flags, m.Data)
		if err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("stage1: mount %s on %s: %w", m.FSType, m.Target, err)
		}
	}
	return devLinks()
}

// mountAll carries out the mount plan below live.NewRoot.
func (b *Boot) mountAll() error {
	fsType, err := b.mediumFSType()
	if err != nil {
		return err
	}
	plan := Plan(b.device, fsType, b.Cmd.CopyToRAM, kernelAtLeast(b.Release, 6, 2))
	persist := false
	if b.Cmd.Persistence {
		d, err := b.persistence(plan, fsType)
		if err != nil {
			return err
		}
		// The medium may be on a loop device now (persist_linux.go).
		plan, persist = Plan(b.device, fsType, b.Cmd.CopyToRAM, kernelAtLeast(b.Release, 6, 2)), d.Mount != nil
		if persist {
			plan = d.Plan
			for i, m := range plan {
				if m.Target == live.ISODir {
					plan[i].Source = b.device
				}
			}
		}
	} else if b.Cmd.PersistReset {
		b.persistence(plan, fsType) // says that it is ignored
	}
	for _, m := range plan {
		target := path.Join(live.NewRoot, m.Target)
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fmt.Errorf("stage1: mkdir %s: %w", target, err)
		}
		if m.FSType == BindMount || m.FSType == MoveMount {
			src, flags := m.Source, uintptr(unix.MS_BIND)
			if m.FSType == MoveMount {
				flags = unix.MS_MOVE
			} else if m.Target != "/" { // the bind of / is from the initramfs
				src = path.Join(live.NewRoot, src)
			}
			if err := unix.Mount(src, target, "", flags, ""); err != nil {
				return fmt.Errorf("stage1: mount (%s) %s on %s: %w", m.FSType, src, target, err)
			}
			b.mark("mount "+m.Target, fmt.Sprintf("%s %s", m.FSType, m.Source))
			continue
		}
		src := m.Source
		if m.Target == live.ROStore {
			src = path.Join(live.NewRoot, src) // the image is on the medium, below the new root
		}
		if m.Target == live.ISODir && b.Cmd.FindISO != "" {
			m.Loop = true // findiso: the medium is a file on another file system
		}
		if m.FSType == "overlay" { // its directories are inside the new root too
			m.Data = strings.ReplaceAll(m.Data, "=/", "="+live.NewRoot+"/")
		}
		if m.Target == live.ISODir && b.Cmd.CopyToRAM {
			if err := b.copyToRAM(src, target, m); err != nil {
				return err
			}
			b.mark("mount "+m.Target, "tmpfs, the copy of "+b.device)
			continue
		}
		if err := b.mount(src, target, m); err != nil {
			return err
		}
		if m.Target == live.RWStore {
			dirs := []string{"store", "work"}
			if persist { // the Nix database is bound from the store layer
				dirs = append(dirs, live.RWDB)
			}
			for _, d := range dirs {
				// 0700, as stage-1-init.sh makes the overlay's directories.
				if err := os.Mkdir(path.Join(target, d), 0o700); err != nil {
					return fmt.Errorf("stage1: mkdir %s/%s: %w", target, d, err)
				}
			}
		}
		b.mark("mount "+m.Target, fmt.Sprintf("%s %s", m.FSType, m.Source))
	}
	return nil
}

func (b *Boot) mount(src, target string, m Mount) error {
	flags := uintptr(0)
	if m.ReadOnly {
		flags |= unix.MS_RDONLY
	}
	if m.Loop {
		if _, err := os.Stat(src); err != nil {
			if m.FSType == "squashfs" {
				return fmt.Errorf("stage1: the store image is missing from the medium: %w", err)
			}
			return fmt.Errorf("stage1: %w", err)
		}
		loop, release, err := attachLoop(src)
		if err != nil {
			return fmt.Errorf("stage1: loop device for %s: %w", src, err)
		}
		// The loop device is auto-clearing (LO_FLAGS_AUTOCLEAR, see
		// loop(4)): keep it open until the mount holds it, or the kernel
		// detaches it when the last opener closes it.
		defer release()
		src = loop
	}
	err := unix.Mount(src, target, m.FSType, flags, m.Data)
	if err != nil && m.FSType == "squashfs" && m.Data != "" {
		// An older kernel without threads=multi: mount without it.
		err = unix.Mount(src, target, m.FSType, flags, "")
	}
	if err != nil {
		what := fmt.Sprintf("stage1: mount %s (%s) on %s: %v", src, m.FSType, target, err)
		if m.FSType == "squashfs" {
			what += " (is nix-store.squashfs on the medium intact?)"
		}
		return errors.New(what)
	}
	return nil
}

// copyToRAM mounts the medium (src, as the plan's m would) on
// live.CopySource, copies everything on it onto a tmpfs at target (the
// new root's /iso) sized to the medium, and releases the medium, so it can
// be ejected: NixOS's copytoram. The store image is then loop-mounted from
// the copy.
func (b *Boot) copyToRAM(src, target string, m Mount) error {
	if err := os.MkdirAll(live.CopySource, 0o755); err != nil {
		return fmt.Errorf("stage1: copytoram: %w", err)
	}
	if err := b.mount(src, live.CopySource, m); err != nil {
		return err
	}
	var sf unix.Statfs_t
	if err := unix.Statfs(live.CopySource, &sf); err != nil {
		return fmt.Errorf("stage1: copytoram: %w", err)
	}
	used := int64(sf.Blocks-sf.Bfree) * sf.Bsize
	avail, err := memAvailable()
	if err != nil {
		return fmt.Errorf("stage1: copytoram: %w", err)
	}
	if need := used + 64<<20; avail < need { // the copy, and room to go on booting
		return fmt.Errorf("stage1: copytoram: the medium holds %d MiB but only %d MiB of memory is available; boot without copytoram or add memory",
			used>>20, avail>>20)
	}
	size := max(used, sizeOf(src)) // NixOS: size=<the medium's size>
	size = (size + 1<<20 + 4095) &^ 4095
	if err := unix.Mount("tmpfs", target, "tmpfs", 0, fmt.Sprintf("mode=0755,size=%d", size)); err != nil {
		return fmt.Errorf("stage1: copytoram: mount tmpfs on %s: %w", target, err)
	}
	entries, err := os.ReadDir(live.CopySource)
	if err != nil {
		return fmt.Errorf("stage1: copytoram: %w", err)
	}
	for _, e := range entries {
		if err := copyfile.Tree(path.Join(live.CopySource, e.Name()), path.Join(target, e.Name())); err != nil {
			return fmt.Errorf("stage1: copytoram: %w", err)
		}
	}
	b.mark("copytoram", fmt.Sprintf("%d MiB", used>>20))
	if err := unix.Unmount(live.CopySource, 0); err != nil {
		return fmt.Errorf("stage1: copytoram: release the medium: unmount %s: %w", live.CopySource, err)
	}
	os.Remove(live.CopySource)
	b.mark("medium released", b.device)
	return nil
}

// sizeOf is the size of a block device or file, 0 if unknown.
func sizeOf(p string) int64 {
	f, err := os.Open(p)
	if err != nil {
		return 0
	}
	defer f.Close()
	n, _ := f.Seek(0, io.SeekEnd)
	return n
}

func memAvailable() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err != nil {
				return 0, fmt.Errorf("/proc/meminfo: %q: %w", line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("/proc/meminfo has no MemAvailable")
}

// kernelAtLeast compares a release such as "6.1.0-56-cloud-amd64".
func kernelAtLeast(release string, major, minor int) bool {
	var a, b int
	if _, err := fmt.Sscanf(release, "%d.%d", &a, &b); err != nil {
		return false
	}
	return a > major || a == major && b >= minor
}

// switchRoot checks the stage 2 init, writes the timeline, moves the
// special file systems into the new root, frees the initramfs and execs
// stage 2 there.
func (b *Boot) switchRoot() error {
	init := b.Cmd.Init
	if _, err := resolveIn(live.NewRoot, init); err != nil {
		return fmt.Errorf("stage1: stage 2 init %s: %w", init, err)
	}
	for _, m := range live.SpecialMounts {
		dst := path.Join(live.NewRoot, m.Target)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return fmt.Errorf("stage1: mkdir %s: %w", dst, err)
		}
	}
	if err := b.nixosHandover(); err != nil {
		return err
	}
	b.mark("switch_root", init)
	if err := b.writeTimeline(); err != nil {
		b.Log.Warn("timeline not written", "err", err)
	}
	for _, m := range live.SpecialMounts {
		if err := unix.Mount(m.Target, path.Join(live.NewRoot, m.Target), "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("stage1: move %s into the new root: %w", m.Target, err)
		}
	}
	freeInitramfs(live.NewRoot)
	if err := os.Chdir(live.NewRoot); err != nil {
		return fmt.Errorf("stage1: chdir %s: %w", live.NewRoot, err)
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("stage1: move %s to /: %w", live.NewRoot, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("stage1: chroot: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return fmt.Errorf("stage1: chdir /: %w", err)
	}
	// As NixOS's "exec env -i switch_root /mnt-root $stage2Init": no
	// environment, and only the init in argv (stage 2 reads systemConfig
	// from the kernel command line).
	b.flush()
	err := unix.Exec(init, []string{init}, []string{})
	return fmt.Errorf("stage1: exec stage 2 %s: %w", init, err)
}

func (b *Boot) writeTimeline() error {
	if err := os.MkdirAll(path.Dir(live.Stage1TimelinePath), 0o755); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := b.Timeline.WriteJSON(&buf); err != nil {
		return err
	}
	return os.WriteFile(live.Stage1TimelinePath, buf.Bytes(), 0o644)
}

// resolveIn follows p's symlinks as if root were "/" (nixroot's walk, the
// one postboot uses), and checks that the result is an executable file.
func resolveIn(root, p string) (string, error) {
	real, err := nixroot.New(root).Resolve(p, true)
	if err != nil {
		return "", err
	}
	fi, err := os.Lstat(filepath.Join(root, real))
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", real)
	}
	return real, nil
}

// freeInitramfs deletes the initramfs's files (not what is mounted below
// it), as switch_root(8) does, to give their memory back.
func freeInitramfs(keep string) {
	var root unix.Stat_t
	if unix.Stat("/", &root) != nil {
		return
	}
	var walk func(dir string)
	walk = func(dir string) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range entries {
			p := path.Join(dir, e.Name())
			if p == keep {
				continue
			}
			var st unix.Stat_t
			if unix.Lstat(p, &st) != nil || st.Dev != root.Dev {
				continue // another file system
			}
			if e.IsDir() {
				walk(p)
			}
			os.Remove(p)
		}
	}
	walk("/")
}
