package demoinit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/internal/kmod"
)

// ModuleTrees are where demo-init looks for a kernel module the running
// kernel lacks (efivarfs, on Debian's kernels), each under the kernel's
// release: NixOS's, where the booted system's kernel-modules are, then the
// usual one.
var ModuleTrees = []string{"/run/booted-system/kernel-modules/lib/modules", "/lib/modules"}

// secureBoot fills SecureBoot and Lockdown as a Linux system reads them,
// mounting efivarfs and securityfs where they belong if they are not.
func (r *Report) secureBoot() {
	r.SecureBoot = readSecureBoot()
	r.Lockdown = readLockdown()
}

func readSecureBoot() string {
	if _, err := os.Stat(EFIDir); errors.Is(err, fs.ErrNotExist) {
		return NotUEFI
	} else if err != nil {
		return Unknown(err)
	}
	if err := ensureMounted("efivarfs", EFIVarsDir); err != nil {
		return Unknown(err)
	}
	b, err := os.ReadFile(path.Join(EFIVarsDir, SecureBootVar))
	if errors.Is(err, fs.ErrNotExist) {
		// Firmware without Secure Boot has no such variable: the kernel
		// reads that as disabled too.
		return SecureBootDisabled
	}
	if err != nil {
		return Unknown(err)
	}
	state, err := ParseSecureBootVar(b)
	if err != nil {
		return Unknown(err)
	}
	return state
}

func readLockdown() string {
	if err := ensureMounted("securityfs", SecurityDir); err != nil {
		return Unknown(err)
	}
	b, err := os.ReadFile(LockdownFile)
	if errors.Is(err, fs.ErrNotExist) {
		return Unknown(fmt.Errorf("no %s: the kernel has no lockdown LSM", LockdownFile))
	}
	if err != nil {
		return Unknown(err)
	}
	mode, err := ParseLockdown(string(b))
	if err != nil {
		return Unknown(err)
	}
	return mode
}

// ensureMounted mounts a file system of fstype on target unless one is
// there already. If the kernel does not know the type, its module is
// loaded from ModuleTrees (the kernel asks modprobe, which the demo system
// lacks) and the mount tried again.
func ensureMounted(fstype, target string) error {
	mounted, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return m.Mountpoint != target || m.FSType != fstype, false
	})
	if err != nil {
		return err
	}
	if len(mounted) > 0 {
		return nil
	}
	mount := func() error {
		if err := unix.Mount(fstype, target, fstype, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("mount %s on %s: %w", fstype, target, err)
		}
		return nil
	}
	err = mount()
	if !errors.Is(err, unix.ENODEV) {
		return err
	}
	if lerr := loadModule(fstype); lerr != nil {
		return fmt.Errorf("%w (%s is not built into the kernel, and its module could not be loaded: %v)", err, fstype, lerr)
	}
	return mount()
}

// loadModule loads a kernel module and what it needs from the first of
// ModuleTrees that has the running kernel's modules.
func loadModule(name string) error {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return err
	}
	release := unix.ByteSliceToString(u.Release[:])
	for _, t := range ModuleTrees {
		dir := path.Join(t, release)
		db, err := kmod.Load(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		files, err := db.Resolve(name)
		if err != nil {
			return err
		}
		for _, f := range files {
			if err := insmod(path.Join(dir, f), f); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("load %s: %w", path.Join(dir, f), err)
			}
		}
		return nil
	}
	return fmt.Errorf("no modules for %s in %s", release, strings.Join(ModuleTrees, " or "))
}

// insmod loads one module file, decompressing it here if it is
// compressed.
func insmod(p, f string) error {
	if kmod.Compression(f) == kmod.None {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.FinitModule(fd, "", 0)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	img, err := kmod.Decompress(f, data)
	if err != nil {
		return err
	}
	return unix.InitModule(img, "")
}
