//go:build linux

package stage1_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/fixture"
	"github.com/nixlive/nixlive/internal/boottest/livetest"
	"github.com/nixlive/nixlive/internal/boottest/vmtest"
	"github.com/nixlive/nixlive/internal/copyfile"
	"github.com/nixlive/nixlive/live"
)

// TestBootNixOS boots under QEMU (TCG) what real NixOS users put in front
// of stage 1 beyond the ISO itself: the ISO's files copied onto an ext4 or
// FAT stick (UNetbootin style), a system built for NixOS's systemd initrd
// (refused, with what to change), and the failure flags as NixOS's
// stage-1-init.sh fail() has them.
func TestBootNixOS(t *testing.T) {
	vmtest.HaveQEMU(t)
	env := livetest.New(t)
	sum := &summary{}
	t.Cleanup(func() { t.Logf("boots:\n\t%s", strings.Join(sum.lines, "\n\t")) })

	// The ISO's files on a disk of another file system, found by its label
	// and mounted on /iso with the type the probe found.
	for _, tc := range []struct {
		fs, label string
		mkfs      func(t *testing.T, img, label, dir string)
	}{
		{"ext4", "NIXLIVE-EXT4", mkfsExt4},
		{"vfat", "NIXLIVEFAT", mkfsVfat},
	} {
		t.Run("medium-"+tc.fs, func(t *testing.T) {
			env.Start(livetest.ISO)
			t.Parallel()
			dir := isoFiles(t, env.Path(t, livetest.ISO))
			img := filepath.Join(t.TempDir(), tc.fs+".img")
			tc.mkfs(t, img, tc.label, dir)
			vm := vmtest.Start(t, vmtest.Options{
				Name:      "medium-" + tc.fs,
				Kernel:    env.Kernel.Vmlinuz,
				Initrd:    env.Path(t, livetest.Initrd),
				Append:    withLabel(t, env.Cmdline(t), tc.label) + " check.medium-fs=" + tc.fs,
				Disks:     []vmtest.Disk{{Path: img, Snapshot: true}},
				ExtraArgs: []string{"-nodefaults"}, // no CD-ROM drive at all
			})
			expect(t, vm, `^`+regexp.QuoteMeta(livetest.ResultPrefix))
			vm.MustWait(bootTimeout)
			console := vm.Console()
			_, msg, ok := livetest.Stage1Log(console, "mount "+live.ISODir)
			if assert.True(t, ok, "stage 1 logs the mount of the medium") {
				assert.Contains(t, msg, tc.fs+" /dev/sda", "/iso mounted with the probed type")
			}
			r, err := livetest.Parse(console)
			require.NoError(t, err)
			// checkstage2 is told the stick's file system (NixOS's fstab
			// has /iso as "auto"), so every check must pass.
			for _, c := range r.Checks {
				assert.True(t, c.OK, "check %s failed: %s", c.Name, c.Detail)
			}
			assert.Equal(t, "source=/dev/sda", checkDetail(consoleReport{Report: r}, "iso-"+tc.fs), "the stick mounted on /iso")
			assert.Equal(t, "/=tmpfs /iso="+tc.fs+" /nix/.ro-store=squashfs /nix/.rw-store=tmpfs /nix/store=overlay", checkDetail(consoleReport{Report: r}, "fstab-types"))
			if err := livetest.MatchSteps(r.StepNames(), cdSteps); err != nil {
				t.Errorf("stage 1 timeline: %v", err)
			}
			sum.add("%-16s stage 2 reached in %v wall", "medium-"+tc.fs, vm.Elapsed().Round(100*time.Millisecond))
		})
	}

	// A system built with boot.initrd.systemd.enable: its init is the
	// systemd binary (here checkstage2, a static ELF, which would print
	// its checks if it were started) and prepare-root is beside it.
	t.Run("systemd-initrd", func(t *testing.T) {
		env.Start(livetest.Imagegen, livetest.Store, livetest.Initrd)
		t.Parallel()
		system, img := systemdInitrdMedium(t, env)
		vm := vmtest.Start(t, vmtest.Options{
			Name:   "systemd-initrd",
			Kernel: env.Kernel.Vmlinuz,
			Initrd: env.Path(t, livetest.Initrd),
			Append: fmt.Sprintf("init=%s/init root=LABEL=SYSTEMD-TEST systemConfig=%s quiet console=ttyS0,115200n8", system, system),
			Disks:  []vmtest.Disk{{Path: img, Snapshot: true}},
		})
		expect(t, vm, `^\*\*\* nixlive stage 1 failed \*\*\*$`)
		expect(t, vm, `^stage1: refusing to start `+regexp.QuoteMeta(system+"/init")+`: the system `+
			regexp.QuoteMeta(system)+` was built with boot\.initrd\.systemd\.enable = true\.$`)
		expect(t, vm, `boot\.initrd\.systemd\.enable = false`)
		expect(t, vm, `^stage1: halting\.`)
		vm.MustExpectString("reboot: System halted", bootTimeout)
		assert.NotContains(t, vm.Console(), livetest.CheckPrefix, "the systemd-initrd system's init was started")
		sum.add("%-16s refused and halted in %v wall", "systemd-initrd", vm.Elapsed().Round(100*time.Millisecond))
	})

	// A failure with a rescue shell in the initrd and no flag: the shell
	// is offered on the console (NixOS's "i) interactive shell"), not a
	// silent halt.
	t.Run("offer-shell", func(t *testing.T) {
		env.Start(livetest.ISO, livetest.RescueInitrd)
		t.Parallel()
		vm := vmtest.Start(t, vmtest.Options{
			Name:   "offer-shell",
			Kernel: env.Kernel.Vmlinuz,
			Initrd: env.Path(t, livetest.RescueInitrd),
			Append: wrongLabelCmdline(t, env, "live.timeout=1"),
			CDROM:  env.Path(t, livetest.ISO),
		})
		expectNotFound(t, vm)
		expect(t, vm, `^stage1: press one of the following keys, then Enter:$`)
		expect(t, vm, `^  i\) to launch an interactive shell$`)
		expect(t, vm, `^  r\) to reboot immediately$`)
		expect(t, vm, `^  \*\) to halt$`)
		vm.MustType("i")
		expect(t, vm, `^stage1: on failure: starting /bin/sh`)
		vm.MustExpectPrompt(rescuePrompt, bootTimeout)
		vm.MustType("exit")
		expect(t, vm, `stage1: the rescue shell exited; halting`)
		vm.MustExpectString("reboot: System halted", bootTimeout)
		sum.add("%-16s menu, shell, exit and halt in %v wall", "offer-shell", vm.Elapsed().Round(100*time.Millisecond))
	})

	// boot.panic_on_fail wins over boot.shell_on_fail, as in NixOS, even
	// with a shell in the initrd.
	t.Run("panic-wins", func(t *testing.T) {
		env.Start(livetest.ISO, livetest.RescueInitrd)
		t.Parallel()
		vm := vmtest.Start(t, vmtest.Options{
			Name:   "panic-wins",
			Kernel: env.Kernel.Vmlinuz,
			Initrd: env.Path(t, livetest.RescueInitrd),
			Append: wrongLabelCmdline(t, env, "live.timeout=1", "boot.shell_on_fail", "boot.panic_on_fail"),
			CDROM:  env.Path(t, livetest.ISO),
		})
		expectNotFound(t, vm)
		expect(t, vm, `^stage1: boot\.panic_on_fail: exiting, the kernel will panic$`)
		_, err := vm.Expect(regexp.MustCompile(`Kernel panic - not syncing: Attempted to kill init`), bootTimeout)
		require.NoError(t, err)
		assert.NotContains(t, vm.Console(), "starting /bin/sh")
		sum.add("%-16s panicked in %v wall", "panic-wins", vm.Elapsed().Round(100*time.Millisecond))
	})
}

// withLabel is the kernel line with root=LABEL=label instead of the ISO's.
func withLabel(t *testing.T, line, label string) string {
	t.Helper()
	want := "root=LABEL=" + livetest.VolumeID
	require.Contains(t, line, want)
	return strings.Replace(line, want, "root=LABEL="+label, 1)
}

// isoFiles extracts every file of the ISO (its Rock Ridge tree) with
// xorriso, an independent reader, as a user copying them onto a stick.
func isoFiles(t *testing.T, iso string) string {
	t.Helper()
	if _, err := exec.LookPath("xorriso"); err != nil {
		t.Skip("xorriso not found (make test installs it)")
	}
	dir := filepath.Join(t.TempDir(), "files")
	out, err := exec.Command("xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/", dir).CombinedOutput()
	require.NoError(t, err, "xorriso -extract: %s", out)
	// The ISO's read-only modes come along; the copy must be removable.
	require.NoError(t, exec.Command("chmod", "-R", "u+w", dir).Run())
	_, err = os.Stat(filepath.Join(dir, live.StoreImage))
	require.NoError(t, err, "the store image among the ISO's files")
	return dir
}

// treeKiB is the size of the files below dir, in KiB.
func treeKiB(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return err
	}))
	return n >> 10
}

func mkfsExt4(t *testing.T, img, label, dir string) {
	t.Helper()
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("mkfs.ext4 not found: install e2fsprogs (make test does)")
	}
	size := fmt.Sprintf("%dk", treeKiB(t, dir)*5/4+16<<10)
	out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", label, "-d", dir, img, size).CombinedOutput()
	require.NoError(t, err, "mkfs.ext4: %s", out)
}

func mkfsVfat(t *testing.T, img, label, dir string) {
	t.Helper()
	for _, tool := range []string{"mkfs.vfat", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install dosfstools and mtools", tool)
		}
	}
	size := fmt.Sprint(treeKiB(t, dir)*5/4 + 16<<10)
	out, err := exec.Command("mkfs.vfat", "-C", "-n", label, img, size).CombinedOutput()
	require.NoError(t, err, "mkfs.vfat: %s", out)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	args := []string{"-s", "-i", img}
	for _, e := range entries {
		// FAT holds no symbolic links (the ISO's /init and /system lead
		// into the store): they stay behind, as with any copy onto FAT.
		if e.Type()&os.ModeSymlink == 0 {
			args = append(args, filepath.Join(dir, e.Name()))
		}
	}
	out, err = exec.Command("mcopy", append(args, "::/")...).CombinedOutput()
	require.NoError(t, err, "mcopy: %s", out)
}

// systemdInitrdMedium makes an ext4 disk labelled SYSTEMD-TEST whose store
// image holds a system as boot.initrd.systemd.enable builds it: init a
// link to the systemd program (an ELF), prepare-root beside it. It returns
// the system's store path and the disk image.
func systemdInitrdMedium(t *testing.T, env *livetest.Env) (string, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "store")
	system := fixture.FakePath("nixos-system-nixos-25.11")
	systemd := fixture.FakePath("systemd-257.5") + "/lib/systemd/systemd"
	host := func(p string) string { return filepath.Join(root, p) }
	require.NoError(t, os.MkdirAll(filepath.Dir(host(systemd)), 0o755))
	require.NoError(t, os.MkdirAll(host(system), 0o755))
	require.NoError(t, copyfile.Copy(filepath.Join(env.Store(t).Root, env.Store(t).Init()), host(systemd), 0o755))
	require.NoError(t, os.Symlink(systemd, host(system+"/init")))
	prepare := "#! /bin/sh\n# NixOS's prepare-root: activation in the systemd initrd\nexport IN_NIXOS_SYSTEMD_STAGE1=true\n"
	require.NoError(t, os.WriteFile(host(system+"/prepare-root"), []byte(prepare), 0o755))
	sq := filepath.Join(t.TempDir(), live.StoreImage)
	out, err := exec.Command(env.Path(t, livetest.Imagegen), "store", "-o", sq, "--store-root", root, system).CombinedOutput()
	require.NoError(t, err, "imagegen store: %s", out)
	img := filepath.Join(t.TempDir(), "systemd.ext4")
	require.NoError(t, livetest.Ext4Image(t.Context(), img, "SYSTEMD-TEST", sq, "/"+live.StoreImage))
	return system, img
}
