package vmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// DefaultKernelDir is where scripts/kernel.sh puts Debian's cloud kernel
// unless told otherwise.
const DefaultKernelDir = "/var/cache/nixlive/kernel"

// KernelDirEnv names the environment variable that overrides
// DefaultKernelDir, for scripts/kernel.sh and for these helpers alike.
const KernelDirEnv = "NIXLIVE_KERNEL_DIR"

// KernelFiles is a kernel unpacked by scripts/kernel.sh.
type KernelFiles struct {
	Dir     string // the directory given to kernel.sh
	Vmlinuz string // Dir/vmlinuz
	Modules string // Dir/modules: lib/modules/<Version>, with modules.dep
	Version string // e.g. 6.1.0-56-cloud-amd64
}

// KernelDir returns the directory scripts/kernel.sh fills by default:
// $NIXLIVE_KERNEL_DIR if set, else DefaultKernelDir.
func KernelDir() string {
	if d := os.Getenv(KernelDirEnv); d != "" {
		return d
	}
	return DefaultKernelDir
}

// FindKernel locates the kernel that scripts/kernel.sh left in KernelDir.
// It never fetches anything.
func FindKernel() (KernelFiles, error) {
	dir := KernelDir()
	k := KernelFiles{
		Dir:     dir,
		Vmlinuz: filepath.Join(dir, "vmlinuz"),
		Modules: filepath.Join(dir, "modules"),
	}
	raw, err := os.ReadFile(filepath.Join(dir, "version"))
	if err != nil {
		return k, fmt.Errorf("no kernel in %s: %w", dir, err)
	}
	k.Version = strings.TrimSpace(string(raw))
	for _, f := range []string{k.Vmlinuz, filepath.Join(k.Modules, "modules.dep")} {
		fi, err := os.Stat(f)
		if err != nil {
			return k, fmt.Errorf("incomplete kernel in %s: %w", dir, err)
		}
		if !fi.Mode().IsRegular() {
			return k, fmt.Errorf("incomplete kernel in %s: %s is not a regular file", dir, f)
		}
	}
	return k, nil
}

// Kernel returns the path of the Debian cloud kernel's vmlinuz, or skips
// the test if scripts/kernel.sh has not fetched it.
func Kernel(t testing.TB) string {
	t.Helper()
	return KernelAndModules(t).Vmlinuz
}

// KernelAndModules is Kernel with the modules directory and version too.
func KernelAndModules(t testing.TB) KernelFiles {
	t.Helper()
	k, err := FindKernel()
	if err != nil {
		t.Skipf("Debian cloud kernel not available: run scripts/kernel.sh (make test does): %v", err)
	}
	return k
}

// QEMU is the emulator the harness runs.
const QEMU = "qemu-system-x86_64"

// HaveQEMU skips the test unless qemu-system-x86_64 is installed.
func HaveQEMU(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath(QEMU); err != nil {
		t.Skipf("%s not found: install qemu-system-x86 (make test does)", QEMU)
	}
}

// DefaultOVMF is the Debian ovmf package's firmware image for -bios.
const DefaultOVMF = "/usr/share/ovmf/OVMF.fd"

// HaveOVMF skips the test unless DefaultOVMF exists.
func HaveOVMF(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(DefaultOVMF); err != nil {
		t.Skipf("UEFI firmware %s not available: install ovmf (make test does)", DefaultOVMF)
	}
}
