//go:build linux

package stage1_test

import (
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/livetest"
	"github.com/nixlive/nixlive/internal/boottest/vmtest"
	"github.com/nixlive/nixlive/internal/kmod/kmodtest"
)

// compressedFamilies are the parts of the cloud kernel's module tree the
// compressed fixtures take (imagegen initrd picks its default set from
// them): the file systems and the storage, USB, input, MMC and virtual
// machine drivers. imagegen/initrd is not imported (the boot tests stay
// free of its cgo), so they are named here.
var compressedFamilies = []string{
	"kernel/fs/isofs/*", "kernel/fs/squashfs/*", "kernel/fs/overlayfs/*", "kernel/fs/fat/*", "kernel/fs/nls/*",
	"kernel/fs/ext4/*", "kernel/fs/exfat/*",
	"kernel/drivers/ata/*", "kernel/drivers/scsi/sd_mod", "kernel/drivers/scsi/sr_mod", "kernel/drivers/scsi/virtio_scsi",
	"kernel/drivers/block/*", "kernel/drivers/cdrom/*", "kernel/drivers/nvme/host/nvme", "kernel/drivers/virtio/*",
	"kernel/drivers/usb/*/*", "kernel/drivers/hid/*", "kernel/drivers/hid/*/*", "kernel/drivers/mmc/*/*",
	"kernel/drivers/input/*/*",
}

// TestBootCompressedModules boots the live CD with an initrd whose
// modules are compressed as NixOS (.ko.xz) and other distributions
// (.ko.zst) ship them: the cloud kernel's modules recompressed as the
// kernel's build does and indexed by kmod's depmod, the initrd made from
// them by "imagegen initrd --kernel-modules". The cloud kernel is 6.1,
// which cannot decompress modules itself (no /sys/module/compression, no
// MODULE_INIT_COMPRESSED_FILE before 6.4), so stage 1 decompresses them
// and loads them with init_module: the loop, squashfs, isofs, overlay and
// CD drivers must all load for stage 2 to run.
func TestBootCompressedModules(t *testing.T) {
	vmtest.HaveQEMU(t)
	if _, err := kmodtest.Depmod(); err != nil {
		t.Skip(err)
	}
	env := livetest.New(t)
	env.Start(livetest.ISO)
	sum := &summary{}
	t.Cleanup(func() {
		sort.Strings(sum.lines)
		t.Logf("boots (QEMU wall time; stage 1 from its start to switch_root, kernel uptime):\n\t%s", strings.Join(sum.lines, "\n\t"))
	})
	for _, tc := range []struct{ name, ext, tool string }{
		{"xz", ".xz", "xz"},
		{"zstd", ".zst", "zstd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := exec.LookPath(tc.tool); err != nil {
				t.Skipf("%s not found (install %s; scripts/deps.sh does)", tc.tool, tc.tool)
			}
			t0 := time.Now()
			dir, err := kmodtest.Recompress(t.Context(), env.Kernel.Modules, t.TempDir(), tc.ext, compressedFamilies)
			require.NoError(t, err)
			initrd := filepath.Join(t.TempDir(), "initrd-"+tc.name)
			out, err := exec.CommandContext(t.Context(), env.Path(t, livetest.Imagegen),
				"initrd", "-o", initrd, "--kernel-modules", dir).CombinedOutput()
			require.NoError(t, err, "imagegen initrd: %s", out)
			t.Logf("fixture and initrd in %v", time.Since(t0).Round(100*time.Millisecond))

			r := bootToPass(t, sum, vmtest.Options{
				Name:   "compressed-" + tc.name,
				Kernel: env.Kernel.Vmlinuz,
				Initrd: initrd,
				Append: env.Cmdline(t),
				CDROM:  env.Path(t, livetest.ISO),
			}, liveChecks, cdSteps)
			assert.Equal(t, "source=/dev/sr0", checkDetail(r, "iso-iso9660"), "the medium mounted on /iso")
			// The eager file systems, then the CD drive's modules by
			// coldplug, all decompressed by stage 1.
			_, msg, ok := livetest.Stage1Log(r.console, "modules")
			if assert.True(t, ok, "stage 1 logs the modules step") {
				assert.Regexp(t, `^modules detail="[1-9]\d* loaded from \S+ \(\d+ decompressed by stage 1`, msg)
			}
			_, msg, ok = livetest.Stage1Log(r.console, "coldplug")
			if assert.True(t, ok, "stage 1 logs the coldplug step") {
				assert.Contains(t, msg, "decompressed by stage 1")
			}
			assert.NotContains(t, r.console, "module not loaded", "every module stage 1 tried loaded")
		})
	}
}
