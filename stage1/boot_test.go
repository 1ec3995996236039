//go:build linux

package stage1_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/livetest"
	"github.com/nixlive/nixlive/internal/boottest/vmtest"
	"github.com/nixlive/nixlive/internal/copyfile"
)

// bootTimeout bounds each wait on a machine: these boots take seconds under
// TCG, and a loaded two-core machine can be several times slower.
const bootTimeout = 3 * time.Minute

// The timelines stage 1 writes, as checkstage2 prints them ("?": a step
// that happens only when coldplug finds a module to load).
var (
	cdSteps = []string{
		"start", "early mounts", "modules", "coldplug?", "medium found",
		"mount /", "mount /iso", "mount /nix/.ro-store", "mount /nix/.rw-store", "mount /nix/store",
		"switch_root",
	}
	copyToRAMSteps = []string{
		"start", "early mounts", "modules", "coldplug?", "medium found",
		"mount /", "copytoram", "medium released", "mount /iso",
		"mount /nix/.ro-store", "mount /nix/.rw-store", "mount /nix/store",
		"switch_root",
	}
)

// The checks checkstage2 makes, by name; each must be printed and ok.
// nixosChecks, in every boot, are of the state NixOS's stage 2 relies on:
// what NixOS's scripted stage 1 leaves it, the file systems iso-image.nix
// declares, and stage-2-init.sh's store step replayed.
var (
	nixosChecks = []string{
		"handover-argv", "handover-env", "pid1",
		"special-mount-proc", "special-mount-sys", "special-mount-dev", "special-mount-run",
		"dev-fd-links", "dev-kmsg-writable", "console-fds", "no-stage1-processes", "modprobe-path",
		"fstab-types", "dev-root", "dev-root-udev-rule", "ro-store-backing-file", "overlay-dirs-0700", "no-stray-mounts",
		"store-nixos-ro",
	}
	liveChecks      = append([]string{"root-tmpfs", "iso-iso9660", "ro-store-squashfs-loop", "store-overlay", "store-writable", "store-file-intact", "timeline"}, nixosChecks...)
	copyToRAMChecks = append([]string{"root-tmpfs", "medium-released", "ro-store-squashfs-loop", "store-overlay", "store-writable", "store-file-intact", "timeline"}, nixosChecks...)
)

// wrongLabel is a label no device has.
const wrongLabel = "nixlive-no-such-label"

// rescuePrompt is the rescue shell's prompt, the empty input line of
// u-root's line editor (bubbline): "> ".
var rescuePrompt = regexp.MustCompile(`^> *$`)

// summary collects one line per boot for the log at the end.
type summary struct {
	mu    sync.Mutex
	lines []string
}

func (s *summary) add(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, fmt.Sprintf(format, args...))
}

// TestBoot boots the live system under QEMU (TCG) with Debian's cloud
// kernel, from an ISO made by "imagegen build" with an initrd made by
// "imagegen initrd", into checkstage2, the stand-in for stage 2, which
// checks the live layout from inside. The machines are independent and
// run in parallel; the ISO, the initrds and the store are built once.
func TestBoot(t *testing.T) {
	vmtest.HaveQEMU(t)
	env := livetest.New(t)
	sum := &summary{}
	start := time.Now()
	t.Cleanup(func() {
		sort.Strings(sum.lines)
		t.Logf("builds: %v", env.Took())
		t.Logf("boots (QEMU wall time; stage 1 from its start to switch_root, kernel uptime):\n\t%s", strings.Join(sum.lines, "\n\t"))
		t.Logf("TestBoot took %v", time.Since(start).Round(100*time.Millisecond))
	})

	// From the firmware through the boot loader's default menu entry, from
	// a CD and from the ISO written to a USB stick (an IDE disk here: the
	// isohybrid MBR and GPT are what a stick boots by). With Secure Boot
	// enforced (Microsoft's keys in db) the chain is shim, Debian's GRUB
	// and Debian's kernel, which says Secure Boot is on and locks down.
	for _, tc := range []struct {
		name string
		fw   vmtest.Firmware
		usb  bool
		dev  string // the medium, as stage 1 and /proc/mounts name it
	}{
		{"SeaBIOS-CD", vmtest.SeaBIOS, false, "/dev/sr0"},
		{"OVMF-CD", vmtest.OVMF, false, "/dev/sr0"},
		{"SeaBIOS-USB", vmtest.SeaBIOS, true, "/dev/sda"},
		{"OVMF-USB", vmtest.OVMF, true, "/dev/sda"},
		{"SecureBoot-CD", vmtest.OVMFSecureBoot, false, "/dev/sr0"},
		{"SecureBoot-USB", vmtest.OVMFSecureBoot, true, "/dev/sda"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env.Start(livetest.ISO)
			t.Parallel()
			switch tc.fw {
			case vmtest.OVMF:
				vmtest.HaveOVMF(t)
			case vmtest.OVMFSecureBoot:
				vmtest.HaveSecureBootOVMF(t)
			}
			iso := env.Path(t, livetest.ISO)
			opts := vmtest.Options{Name: tc.name, Firmware: tc.fw}
			if tc.usb {
				opts.Disks = []vmtest.Disk{{Path: iso, Snapshot: true}}
			} else {
				opts.CDROM = iso
			}
			r := bootToPass(t, sum, opts, liveChecks, cdSteps)
			assert.Equal(t, "source="+tc.dev, checkDetail(r, "iso-iso9660"), "the medium mounted on /iso")
			assert.Contains(t, checkDetail(r, "dev-root"), "("+tc.dev+")", "/dev/root is the medium")
			// The kernel's log, as checkstage2 copies it.
			if tc.fw == vmtest.OVMFSecureBoot {
				assert.Contains(t, r.KernelLog, "secureboot: Secure boot enabled")
				assert.Contains(t, r.KernelLog, "Kernel is locked down from EFI Secure Boot; see man kernel_lockdown.7")
			} else {
				assert.NotContains(t, r.KernelLog, "secureboot: Secure boot enabled")
			}
		})
	}

	// copytoram from the boot loader's menu line (the spec's kernelParams):
	// the medium is copied onto a tmpfs at /iso, as NixOS does, and
	// released before stage 2, whose store still reads. /iso stays
	// mounted: NixOS's fstab mounts /dev/root there without nofail, and
	// systemd fails iso.mount if it is not. (This test asserted "/iso
	// mounted=false" before, which was wrong.)
	t.Run("copytoram", func(t *testing.T) {
		env.Start(livetest.Store, livetest.Initrd)
		t.Parallel()
		s := env.Store(t)
		spec := specWith(t, env.Spec(t, env.Path(t, livetest.Initrd)), "copytoram", "check.copytoram")
		iso := env.BuildISO(t, "copytoram.iso", spec)
		r := bootToPass(t, sum, vmtest.Options{Name: "copytoram", CDROM: iso}, copyToRAMChecks, copyToRAMSteps)
		assert.Equal(t, "/iso=tmpfs medium=/dev/sr0 mounted=false", checkDetail(r, "medium-released"))
		assert.Equal(t, "/iso=tmpfs", strings.Fields(checkDetail(r, "fstab-types"))[1])
		assert.Contains(t, checkDetail(r, "dev-root"), "(/dev/sr0)", "/dev/root is still the medium")
		assert.Contains(t, checkDetail(r, "ro-store-backing-file"), `backing_file="/iso/`)
		assert.Contains(t, checkDetail(r, "store-file-intact"), s.File+" sha256="+s.SHA256)
	})

	// findiso: the ISO is a file on an ext4 disk, the only drive (no CD-ROM
	// drive at all); the kernel and initrd are loaded directly.
	t.Run("findiso", func(t *testing.T) {
		env.Start(livetest.ISO)
		t.Parallel()
		if _, err := exec.LookPath("mkfs.ext4"); err != nil {
			t.Skip("mkfs.ext4 not found: install e2fsprogs (make test does)")
		}
		iso := env.Path(t, livetest.ISO)
		const isoPath = "/boot-images/nixlive/live.iso"
		img := filepath.Join(t.TempDir(), "host.ext4")
		require.NoError(t, livetest.Ext4Image(t.Context(), img, "ISOHOST", iso, isoPath))
		opts := vmtest.Options{
			Name:   "findiso",
			Kernel: env.Kernel.Vmlinuz,
			Initrd: env.Path(t, livetest.Initrd),
			// The kernel gives what follows "--" to stage 1's argv; NixOS's
			// stage 1 passes none of it to stage 2 (handover-argv).
			Append: "findiso=" + isoPath + " " + env.Cmdline(t) + " -- nixlive-init-arg",
			Disks:  []vmtest.Disk{{Path: img, Snapshot: true}},
			// Not even the empty CD-ROM drive QEMU adds by default.
			ExtraArgs: []string{"-nodefaults"},
		}
		r := bootToPass(t, sum, opts, liveChecks, cdSteps)
		assert.Regexp(t, `^source=/dev/loop\d+$`, checkDetail(r, "iso-iso9660"), "the ISO file on a loop device")
		// /dev/root is that loop device (NixOS links the ISO file on its
		// /findiso, which stage 2 cannot see), and the ext4 disk holding
		// the file is mounted nowhere stage 2 sees (no-stray-mounts).
		assert.Regexp(t, `\(/dev/loop\d+\) /iso source=/dev/loop\d+$`, checkDetail(r, "dev-root"))
		_, msg, ok := livetest.Stage1Log(r.console, "medium found")
		if assert.True(t, ok, "stage 1 logs where it found the medium") {
			assert.Contains(t, msg, isoPath+" on /dev/sda")
		}
	})

	// A volume ID with spaces, escaped on the kernel line by both menus.
	t.Run("space-label", func(t *testing.T) { bootSpaceVolumeID(t, env, sum) })

	// A label that no device has: stage 1 says what it wanted and what it
	// saw, and halts once live.timeout has passed; no stage 2, no panic.
	t.Run("wrong-label", func(t *testing.T) {
		env.Start(livetest.ISO)
		t.Parallel()
		const timeout = 3 * time.Second
		vm := vmtest.Start(t, vmtest.Options{
			Name:   "wrong-label",
			Kernel: env.Kernel.Vmlinuz,
			Initrd: env.Path(t, livetest.Initrd),
			Append: wrongLabelCmdline(t, env, fmt.Sprintf("live.timeout=%g", timeout.Seconds())),
			CDROM:  env.Path(t, livetest.ISO),
		})
		expectNotFound(t, vm)
		expect(t, vm, `^stage1: halting\.`)
		vm.MustExpectString("reboot: System halted", bootTimeout)
		console := vm.Console()
		assert.NotContains(t, console, livetest.ResultPrefix, "stage 2 ran")
		assert.NotContains(t, console, "Kernel panic")
		assert.NotContains(t, console, "starting /bin/sh", "a shell without boot.shell_on_fail")
		// It waited live.timeout for the medium, not less, and not much
		// more.
		waitFrom, _, ok1 := livetest.Stage1Log(console, "modules")
		failedAt, _, ok2 := livetest.Stage1Log(console, "failed")
		if assert.True(t, ok1 && ok2, "stage 1 logs the modules and failed steps") {
			waited := failedAt - waitFrom
			assert.GreaterOrEqual(t, waited, timeout, "stage 1 gave up before live.timeout")
			assert.Less(t, waited, timeout+30*time.Second, "stage 1 waited far past live.timeout")
			sum.add("%-16s halted after %v wall; waited %v for the medium (live.timeout=%v)",
				"wrong-label", vm.Elapsed().Round(100*time.Millisecond), waited.Round(10*time.Millisecond), timeout)
		}
	})

	// The same with boot.shell_on_fail and an initrd with the rescue
	// shell: the shell runs on the console and takes commands.
	t.Run("rescue-shell", func(t *testing.T) {
		env.Start(livetest.ISO, livetest.RescueInitrd)
		t.Parallel()
		vm := vmtest.Start(t, vmtest.Options{
			Name:   "rescue-shell",
			Kernel: env.Kernel.Vmlinuz,
			Initrd: env.Path(t, livetest.RescueInitrd),
			Append: wrongLabelCmdline(t, env, "live.timeout=1", "boot.shell_on_fail"),
			CDROM:  env.Path(t, livetest.ISO),
		})
		expectNotFound(t, vm)
		expect(t, vm, `stage1: boot\.shell_on_fail: starting /bin/sh`)
		// Type only at the line editor's prompt: before it, the terminal
		// is not yet in raw mode, and Enter (CR) would reach the editor
		// as LF, a newline within the input. The prompt comes again
		// after each command.
		vm.MustExpectPrompt(rescuePrompt, bootTimeout)
		vm.MustType("ls /dev")
		_, err := vm.Expect(regexp.MustCompile(`(^|\s)sr0(\s|$)`), bootTimeout)
		require.NoError(t, err, "ls /dev in the rescue shell")
		vm.MustExpectPrompt(rescuePrompt, bootTimeout)
		vm.MustType("exit")
		expect(t, vm, `stage1: the rescue shell exited; halting`) // after the line editor's last words
		vm.MustExpectString("reboot: System halted", bootTimeout)
		assert.NotContains(t, vm.Console(), livetest.ResultPrefix, "stage 2 ran")
		sum.add("%-16s shell, ls, exit and halt in %v wall", "rescue-shell", vm.Elapsed().Round(100*time.Millisecond))
	})

	// A damaged medium: stage 1 names the mount that failed (and for the
	// store image, the likely cause), and halts; it neither hangs nor
	// panics.
	t.Run("corrupt", func(t *testing.T) {
		squashfsErr := func(why string) string {
			return `^stage1: mount /dev/loop\d+ \(squashfs\) on /mnt-root/nix/\.ro-store: ` + why +
				` \(is nix-store\.squashfs on the medium intact\?\)$`
		}
		for _, cc := range []struct {
			name string
			iso  func(t *testing.T) string // makes the damaged ISO
			want string                    // stage 1's error line
		}{
			// nix-store.squashfs whose superblock claims twice the bytes
			// the file holds, as when it is cut short: the kernel refuses
			// it. (imagegen build --squashfs refuses such a file, so the
			// ISO's copy is damaged in place.)
			{"truncated-squashfs", func(t *testing.T) string {
				return damagedStoreImage(t, env, func(sb []byte) {
					used := binary.LittleEndian.Uint64(sb[40:])
					binary.LittleEndian.PutUint64(sb[40:], 2*used)
				})
			}, squashfsErr("invalid argument")},
			// A file that is not a squashfs image at all.
			{"garbage-squashfs", func(t *testing.T) string {
				return damagedStoreImage(t, env, func(sb []byte) {
					copy(sb, strings.Repeat("not a squashfs image\n", len(sb)/21+1))
				})
			}, squashfsErr("invalid argument")},
			// The ISO itself cut short (an interrupted download): its
			// directories, written after the files, are gone.
			{"truncated-iso", func(t *testing.T) string {
				iso := env.Path(t, livetest.ISO)
				off, size, err := livetest.FileExtent(iso, "nix-store.squashfs")
				require.NoError(t, err)
				cut := filepath.Join(t.TempDir(), "truncated.iso")
				require.NoError(t, copyfile.Copy(iso, cut, 0o644))
				require.NoError(t, os.Truncate(cut, (off+size/2)&^2047))
				return cut
			}, `^stage1: mount /dev/sr0 \(iso9660\) on /mnt-root/iso: input/output error$`},
		} {
			t.Run(cc.name, func(t *testing.T) {
				env.Start(livetest.ISO)
				t.Parallel()
				iso := cc.iso(t)
				vm := vmtest.Start(t, vmtest.Options{
					Name:   cc.name,
					Kernel: env.Kernel.Vmlinuz,
					Initrd: env.Path(t, livetest.Initrd),
					Append: env.Cmdline(t),
					CDROM:  iso,
				})
				expect(t, vm, `^\*\*\* nixlive stage 1 failed \*\*\*$`)
				expect(t, vm, cc.want)
				expect(t, vm, `^stage1: halting\.`)
				vm.MustExpectString("reboot: System halted", bootTimeout)
				assert.NotContains(t, vm.Console(), livetest.ResultPrefix, "stage 2 ran")
				sum.add("%-18s stage 1 error and halt in %v wall", cc.name, vm.Elapsed().Round(100*time.Millisecond))
			})
		}
	})
}

// stopRE matches the lines after which a machine will print nothing more
// by itself: the kernel's last words when stage 1 halts it, and stage 1
// handing the console to the rescue shell.
const stopRE = `reboot: System halted|stage1: boot\.shell_on_fail: starting /bin/sh`

// expect waits for a console line matching pattern and returns its
// submatches; it fails the test at once if the machine halts or starts the
// rescue shell first.
func expect(t *testing.T, vm *vmtest.VM, pattern string) []string {
	t.Helper()
	m := vm.MustExpect(regexp.MustCompile(`(?:`+pattern+`)|(`+stopRE+`)`), bootTimeout)
	if m[len(m)-1] != "" {
		t.Fatalf("%s: %q came before a console line matching /%s/", vm.LogPath(), m[len(m)-1], pattern)
	}
	return m[:len(m)-1]
}

// bootToPass boots a machine to checkstage2's verdict and power-off and
// checks what it printed: every check of wantChecks present and ok (and no
// other), PASS, and the timeline steps of wantSteps in order.
func bootToPass(t *testing.T, sum *summary, opts vmtest.Options, wantChecks, wantSteps []string) consoleReport {
	t.Helper()
	vm := vmtest.Start(t, opts)
	expect(t, vm, `^`+regexp.QuoteMeta(livetest.ResultPrefix))
	vm.MustWait(bootTimeout)
	console := vm.Console()
	r, err := livetest.Parse(console)
	require.NoError(t, err)
	var names []string
	for _, c := range r.Checks {
		names = append(names, c.Name)
		assert.True(t, c.OK, "check %s failed: %s", c.Name, c.Detail)
	}
	assert.ElementsMatch(t, wantChecks, names, "the checks checkstage2 made")
	assert.Equal(t, "PASS", r.Result, "checkstage2's verdict")
	if err := livetest.MatchSteps(r.StepNames(), wantSteps); err != nil {
		t.Errorf("stage 1 timeline: %v", err)
	}
	for i := 1; i < len(r.Timeline); i++ {
		assert.GreaterOrEqual(t, r.Timeline[i].At, r.Timeline[i-1].At, "timeline step %q before %q", r.Timeline[i].Name, r.Timeline[i-1].Name)
	}
	if !t.Failed() {
		start, _ := r.Step("start")
		sum.add("%-16s PASS in %v wall; stage 1 started at %v, took %v (%s)", opts.Name,
			vm.Elapsed().Round(100*time.Millisecond), start.At.Round(10*time.Millisecond),
			r.Stage1().Round(time.Millisecond), stepDurations(r))
	}
	return consoleReport{Report: r, console: console}
}

type consoleReport struct {
	livetest.Report
	console string
}

// stepDurations lists how long each step of stage 1 took.
func stepDurations(r livetest.Report) string {
	var parts []string
	for i := 1; i < len(r.Timeline); i++ {
		d := r.Timeline[i].At - r.Timeline[i-1].At
		parts = append(parts, fmt.Sprintf("%s %v", r.Timeline[i].Name, d.Round(time.Millisecond)))
	}
	return strings.Join(parts, ", ")
}

// checkDetail returns the detail of the check called name.
func checkDetail(r consoleReport, name string) string {
	for _, c := range r.Checks {
		if c.Name == name {
			return c.Detail
		}
	}
	return ""
}

// specWith adds kernel parameters to a spec.
func specWith(t *testing.T, spec []byte, params ...string) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(spec, &m))
	kp, _ := m["kernelParams"].([]any)
	for _, p := range params {
		kp = append(kp, p)
	}
	m["kernelParams"] = kp
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

// wrongLabelCmdline is the test ISO's kernel line asking for a label no
// device has.
func wrongLabelCmdline(t *testing.T, env *livetest.Env, extra ...string) string {
	t.Helper()
	line := env.Cmdline(t, extra...)
	want := "root=LABEL=" + livetest.VolumeID
	if !strings.Contains(line, want) {
		t.Fatalf("kernel line %q has no %s", line, want)
	}
	return strings.Replace(line, want, "root=LABEL="+wrongLabel, 1)
}

// expectNotFound waits for stage 1's report of a medium it did not find:
// the label it wanted and the table of the devices it saw, where the CD
// shows with its real label.
func expectNotFound(t *testing.T, vm *vmtest.VM) {
	t.Helper()
	expect(t, vm, `^\*\*\* nixlive stage 1 failed \*\*\*$`)
	expect(t, vm, `^stage1: no medium found: waited \S+ for `+regexp.QuoteMeta(fmt.Sprintf("a file system labelled %q", wrongLabel))+`$`)
	expect(t, vm, `^`+regexp.QuoteMeta(fmt.Sprintf("Wanted: a file system labelled %q", wrongLabel))+`$`)
	expect(t, vm, `^DEVICE\s+SIZE\s+FILESYSTEM\s+LABEL\s+UUID\s+NOTE\s*$`)
	expect(t, vm, `^/dev/sr0\s+\S+\s+iso9660\s+`+regexp.QuoteMeta(fmt.Sprintf("%q", livetest.VolumeID))+`\s`)
}
