// Package initrd builds the live CD's initrd: a zstd-compressed newc cpio
// archive whose /init is stage 1 (a static Go binary built from this
// module, or a prebuilt one), with the kernel modules stage 1 loads and
// their dependencies under lib/modules/VER, the module database cut down to
// them for coldplug, and, on request, u-root's shell and core commands as a
// rescue shell. Same inputs, same bytes.
//
// Not supported: firmware files, microcode, compressors other than zstd,
// busybox or systemd in the initrd (NixOS's stage 1 uses them; ours is one
// Go program).
package initrd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/DataDog/zstd"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/nixlive/nixlive/internal/atomicfile"
	"github.com/nixlive/nixlive/internal/gobuild"
	"github.com/nixlive/nixlive/internal/kmod"
	"github.com/nixlive/nixlive/live"
)

// DefaultModules are loaded eagerly at boot: what the live layout needs
// whatever the hardware (the file systems of the medium, the store and
// the overlay, and loop devices); those a kernel builds in are skipped.
// The drivers of the hardware are loaded when it shows up (coldplug, by
// modalias) from the families of DefaultHardware.
var DefaultModules = []string{"isofs", "squashfs", "overlay", "loop"}

// DefaultHardware are the modules the initrd carries, unless --modules
// names its own, for stage 1 to load when the hardware asks for them by
// modalias (and the file systems for findiso= hosts): path patterns
// (path.Match) relative to the kernel's module tree, without the .ko
// suffix, so whole families of drivers follow the kernel; "!" before a
// pattern leaves its modules out. As NixOS's
// all-hardware profile, for CDs, USB sticks, SATA, NVMe, SD cards and
// virtual disks, and USB keyboards for the rescue shell. Left out: SCSI
// and RAID HBAs (large, and no live medium sits behind them), NVMe over
// fabrics, PCMCIA, I2C HID.
var DefaultHardware = []string{
	// SATA, PATA, NVMe, SCSI disks and CDs
	"kernel/drivers/ata/*", "!kernel/drivers/ata/pata_pcmcia", "kernel/drivers/nvme/host/nvme",
	"kernel/drivers/scsi/sd_mod", "kernel/drivers/scsi/sr_mod",
	// USB host controllers, sticks and card readers
	"kernel/drivers/usb/host/*", "!kernel/drivers/usb/host/*_cs", "!kernel/drivers/usb/host/u132-hcd",
	"kernel/drivers/usb/storage/*",
	// USB keyboards: HID over USB, the generic driver and those of
	// common keyboards (NixOS's list)
	"kernel/drivers/hid/usbhid/usbhid", "kernel/drivers/hid/hid-generic",
	"kernel/drivers/hid/hid-apple", "kernel/drivers/hid/hid-cherry", "kernel/drivers/hid/hid-corsair",
	"kernel/drivers/hid/hid-lenovo", "kernel/drivers/hid/hid-logitech-dj", "kernel/drivers/hid/hid-logitech-hidpp",
	"kernel/drivers/hid/hid-microsoft", "kernel/drivers/hid/hid-roccat",
	"kernel/drivers/input/keyboard/atkbd", "kernel/drivers/input/serio/i8042",
	// SD cards and eMMC
	"kernel/drivers/mmc/core/*", "!kernel/drivers/mmc/core/sdio_uart", "kernel/drivers/mmc/host/sdhci*", "kernel/drivers/mmc/host/rtsx_*",
	// virtual machines: virtio, Hyper-V, VMware
	"kernel/drivers/virtio/*", "kernel/drivers/block/virtio_blk", "kernel/drivers/scsi/virtio_scsi",
	"kernel/drivers/scsi/hv_storvsc", "kernel/drivers/hv/hv_vmbus", "kernel/drivers/scsi/vmw_pvscsi",
	// file systems of the disks findiso= looks on
	"kernel/fs/fat/vfat", "kernel/fs/nls/nls_cp437", "kernel/fs/nls/nls_iso8859-1", "kernel/fs/nls/nls_utf8",
	"kernel/fs/ext4/ext4", "kernel/fs/exfat/exfat",
}

// Initrd builds one initrd.
type Initrd struct {
	// Output is the initrd file.
	Output string
	// Stage1 is a prebuilt stage1 binary; empty builds it from this module
	// with "go build" (static, CGO_ENABLED=0).
	Stage1 string
	// ModulesDir is DIR/lib/modules/VER of the kernel the initrd is for;
	// empty means no modules.
	ModulesDir string
	// Modules are loaded eagerly at boot, with their dependencies; nil means
	// DefaultModules, and the initrd then also carries the modules of
	// DefaultHardware for coldplug (given Modules, it carries only those).
	// Modules the kernel builds in are skipped; modules it does not have
	// are an error only when named explicitly.
	Modules  []string
	Explicit bool // Modules were given by the user
	// RescueShell adds u-root's shell (gosh, as /bin/sh) and core commands
	// for boot.shell_on_fail and boot.debug1.
	RescueShell bool
}

// Result says what went into an initrd.
type Result struct {
	Entries int // cpio records: directories, files and links
}

// Build writes the initrd, a zstd-compressed newc cpio archive, to Output
// (atomically). The same inputs give the same bytes.
func (in *Initrd) Build(ctx context.Context) (*Result, error) {
	tmp, removeTmp, err := atomicfile.TempDir("imagegen-initrd-")
	if err != nil {
		return nil, err
	}
	defer removeTmp()
	init := in.Stage1
	if init != "" {
		if err := checkStage1(init); err != nil {
			return nil, err
		}
	} else {
		if init, err = BuildCommand(ctx, "github.com/nixlive/nixlive/cmd/stage1", tmp); err != nil {
			return nil, err
		}
	}
	prog, err := os.ReadFile(init)
	if err != nil {
		return nil, fmt.Errorf("initrd: stage1: %w", err)
	}
	recs := []cpio.Record{
		cpio.Directory(".", 0o755),
		cpio.Directory("dev", 0o755),
		cpio.Directory("proc", 0o555),
		cpio.Directory("sys", 0o555),
		cpio.Directory("run", 0o755),
		cpio.Directory("mnt-root", 0o755),
		cpio.StaticRecord(prog, cpio.Info{Name: "init", Mode: cpio.S_IFREG | 0o755}),
	}
	if in.RescueShell {
		bins, err := rescueRecords(ctx, tmp)
		if err != nil {
			return nil, err
		}
		recs = append(recs, bins...)
	}
	if in.ModulesDir != "" {
		mods, err := in.moduleRecords()
		if err != nil {
			return nil, err
		}
		recs = append(recs, mods...)
	}
	for i := range recs {
		recs[i] = cpio.MakeReproducible(recs[i])
		recs[i].Ino = uint64(i + 1)
		recs[i].NLink = 1
		if recs[i].Mode&cpio.S_IFMT == cpio.S_IFDIR {
			recs[i].NLink = 2
		}
	}
	var raw bytes.Buffer
	cw := cpio.Newc.Writer(&raw)
	if err := cpio.WriteRecords(cw, recs); err != nil {
		return nil, fmt.Errorf("initrd: cpio: %w", err)
	}
	if err := cpio.WriteTrailer(cw); err != nil {
		return nil, fmt.Errorf("initrd: cpio: %w", err)
	}
	// The kernel's zstd decompressor wants single-threaded frames; level 19
	// costs a second at most on a few MiB.
	z, err := zstd.CompressLevel(nil, raw.Bytes(), 19)
	if err != nil {
		return nil, fmt.Errorf("initrd: zstd: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(in.Output, z, 0o644); err != nil {
		return nil, fmt.Errorf("initrd: %w", err)
	}
	return &Result{Entries: len(recs)}, nil
}

// moduleRecords copies the chosen modules and reduced module database files
// under lib/modules/VER.
func (in *Initrd) moduleRecords() ([]cpio.Record, error) {
	dir := in.ModulesDir
	db, err := kmod.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("initrd: %w", err)
	}
	want := in.Modules
	if want == nil {
		want = DefaultModules
	}
	var names []string
	for _, n := range want {
		if db.Builtin(n) {
			continue
		}
		if _, ok := db.Path(n); !ok {
			if in.Explicit {
				return nil, fmt.Errorf("initrd: module %q: not in %s", n, dir)
			}
			continue
		}
		names = append(names, n)
	}
	carried := names
	if in.Modules == nil {
		hw, err := db.Glob(DefaultHardware)
		if err != nil {
			return nil, fmt.Errorf("initrd: %w", err)
		}
		carried = append(append([]string{}, names...), hw...)
	}
	files, err := db.Resolve(carried...)
	if err != nil {
		return nil, fmt.Errorf("initrd: %w", err)
	}
	ver := filepath.Base(filepath.Clean(dir))
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		ver = filepath.Base(r)
	}
	base := "lib/modules/" + ver
	var recs []cpio.Record
	dirs := map[string]bool{}
	addDir := func(d string) {
		var chain []string
		for ; d != "." && !dirs[d]; d = path.Dir(d) {
			chain = append(chain, d)
			dirs[d] = true
		}
		for i := len(chain) - 1; i >= 0; i-- {
			recs = append(recs, cpio.Directory(chain[i], 0o755))
		}
	}
	addDir(base)
	sorted := append([]string{}, files...)
	sort.Strings(sorted)
	for _, f := range sorted {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return nil, fmt.Errorf("initrd: module %s: %w", f, err)
		}
		addDir(path.Dir(base + "/" + f))
		recs = append(recs, cpio.StaticRecord(data, cpio.Info{Name: base + "/" + f, Mode: cpio.S_IFREG | 0o644}))
	}
	// The module database, cut down to what the initrd holds, so stage 1
	// resolves and coldplugs with the same code as on a full system.
	index, err := db.Subset(carried)
	if err != nil {
		return nil, fmt.Errorf("initrd: %w", err)
	}
	var indexNames []string
	for n := range index {
		indexNames = append(indexNames, n)
	}
	sort.Strings(indexNames)
	for _, n := range indexNames {
		recs = append(recs, cpio.StaticRecord(index[n], cpio.Info{Name: base + "/" + n, Mode: cpio.S_IFREG | 0o644}))
	}
	recs = append(recs, cpio.StaticFile(base+"/"+live.ModulesList, strings.Join(names, "\n")+"\n", 0o644))
	return recs, nil
}

// RescueCommands are u-root's core commands put in /bin with the rescue
// shell: enough to look at devices, mounts, logs and modules, and to fix a
// mount by hand.
var RescueCommands = []string{"gosh", "ls", "cat", "mount", "umount", "dmesg", "mkdir", "cp", "mv", "rm", "ln",
	"grep", "insmod", "lsmod", "ps", "poweroff", "shutdown", "blkid", "losetup", "switch_root", "uname", "free", "df"}

func rescueRecords(ctx context.Context, tmp string) ([]cpio.Record, error) {
	dir := filepath.Join(tmp, "rescue")
	if err := BuildURoot(ctx, dir, RescueCommands); err != nil {
		return nil, fmt.Errorf("initrd: build the rescue shell: %w", err)
	}
	recs := []cpio.Record{cpio.Directory("bin", 0o755)}
	for _, c := range RescueCommands {
		data, err := os.ReadFile(filepath.Join(dir, c))
		if err != nil {
			return nil, fmt.Errorf("initrd: rescue shell: %w", err)
		}
		recs = append(recs, cpio.StaticRecord(data, cpio.Info{Name: "bin/" + c, Mode: cpio.S_IFREG | 0o755}))
	}
	return append(recs, cpio.Symlink("bin/sh", "gosh")), nil
}

// BuildURoot builds u-root's core commands cmds into dir (created); go.mod
// lists them as tools, which pins them.
func BuildURoot(ctx context.Context, dir string, cmds []string) error {
	pkgs := make([]string, len(cmds))
	for i, c := range cmds {
		pkgs[i] = "github.com/u-root/u-root/cmds/core/" + c
	}
	return gobuild.Static(ctx, dir+"/", pkgs...)
}

// BuildCommand builds a boot-time command of this module into dir.
func BuildCommand(ctx context.Context, pkg, dir string) (string, error) {
	out := filepath.Join(dir, path.Base(pkg))
	if err := gobuild.Static(ctx, out, pkg); err != nil {
		return "", fmt.Errorf("%w\n(run imagegen inside the nixlive source tree, or pass a prebuilt binary)", err)
	}
	return out, nil
}
