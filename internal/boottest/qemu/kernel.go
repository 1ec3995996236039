package qemu

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DefaultKernelDir is where scripts/kernel.sh puts Debian's cloud kernel
// unless told otherwise.
const DefaultKernelDir = "/var/cache/nixlive/kernel"

// KernelDirEnv names the environment variable that overrides
// DefaultKernelDir, for scripts/kernel.sh and for FindKernel alike.
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
