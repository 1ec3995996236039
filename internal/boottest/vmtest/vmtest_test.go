package vmtest_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/testinit"
	"github.com/nixlive/nixlive/internal/boottest/vmtest"
)

// bootTimeout bounds one boot: ~4 s on an idle machine under TCG, but the
// tests may share two cores with other QEMUs and builds.
const bootTimeout = 2 * time.Minute

// Anchored: the harness removes OVMF's terminal escapes from the lines.
var markerRE = regexp.MustCompile(`^` + regexp.QuoteMeta(testinit.Marker) + ` cmdline=(.*)$`)

func TestBootKernelSeaBIOS(t *testing.T) {
	t.Parallel()
	bootTestinit(t, vmtest.SeaBIOS)
}

func TestBootKernelOVMF(t *testing.T) {
	t.Parallel()
	vmtest.HaveOVMF(t)
	bootTestinit(t, vmtest.OVMF)
}

// bootTestinit boots the cloud kernel with the test initrd and checks that
// init saw the command line and powered the machine off.
func bootTestinit(t *testing.T, fw vmtest.Firmware) {
	vmlinuz := vmtest.Kernel(t)
	vmtest.HaveQEMU(t)
	vm := vmtest.Start(t, vmtest.Options{
		Name:     "testinit-" + fw.String(),
		Kernel:   vmlinuz,
		Initrd:   testinit.Initrd(t),
		Append:   "console=ttyS0 quiet marker=abc",
		Firmware: fw,
	})
	m := vm.MustExpect(markerRE, bootTimeout)
	atMarker := vm.Elapsed()
	assert.Contains(t, strings.Fields(m[1]), "marker=abc", "kernel command line seen by init")
	vm.MustWait(bootTimeout)
	t.Logf("%s: marker after %v, QEMU exited after %v", fw, atMarker.Round(time.Millisecond), vm.Elapsed().Round(time.Millisecond))
	assert.Contains(t, vm.Console(), "reboot: Power down", "init powered the machine off")
}

// A missing init makes the kernel panic; the harness must say so early,
// with the console lines that explain it.
func TestBootFailureIsExplained(t *testing.T) {
	t.Parallel()
	vmlinuz := vmtest.Kernel(t)
	vmtest.HaveQEMU(t)
	vm := vmtest.Start(t, vmtest.Options{
		Name:   "no-init",
		Kernel: vmlinuz,
		Initrd: testinit.Initrd(t),
		// Not quiet, to get more than TailLines lines. The kernel says
		// nothing about the missing rdinit: it falls back to mounting a
		// root device, and there is none.
		Append: "console=ttyS0 rdinit=/nonexistent",
	})
	_, err := vm.Expect(markerRE, bootTimeout)
	require.Error(t, err)
	assert.ErrorIs(t, err, vmtest.ErrKernelPanic)
	msg := err.Error()
	assert.Contains(t, msg, "Kernel panic - not syncing")
	assert.Contains(t, msg, "last console lines")
	assert.Contains(t, msg, "\t| ", "console lines quoted")
	assert.Contains(t, msg, "earlier lines)", "a long console is cut to its tail")
	assert.Contains(t, msg, "VFS: Unable to mount root fs", "the console says why")
	assert.Less(t, vm.Elapsed(), bootTimeout/2, "the panic is reported without waiting for the timeout")
	t.Logf("panic reported after %v; error:\n%v", vm.Elapsed().Round(time.Millisecond), err)

	err = vm.Wait(time.Second)
	assert.ErrorIs(t, err, vmtest.ErrKernelPanic, "Wait reports the panic too")

	log, err := os.ReadFile(vm.LogPath())
	require.NoError(t, err)
	assert.Contains(t, string(log), "Kernel panic - not syncing", "console log file")
}

// A line that never comes gives a timeout error with the console lines.
func TestTimeoutIsExplained(t *testing.T) {
	t.Parallel()
	vmlinuz := vmtest.Kernel(t)
	vmtest.HaveQEMU(t)
	vm := vmtest.Start(t, vmtest.Options{
		Name:   "hang",
		Kernel: vmlinuz,
		Initrd: testinit.Initrd(t),
		Append: "console=ttyS0 quiet testinit.hang",
	})
	vm.MustExpect(markerRE, bootTimeout)
	vm.MustExpectString("testinit: hanging", bootTimeout)

	_, err := vm.ExpectString("this line never comes", 2*time.Second)
	require.Error(t, err)
	assert.ErrorIs(t, err, vmtest.ErrTimeout)
	assert.Contains(t, err.Error(), "waiting for /this line never comes/")
	assert.Contains(t, err.Error(), testinit.Marker, "the console lines are in the error")
	t.Logf("error:\n%v", err)

	err = vm.Wait(time.Second)
	assert.ErrorIs(t, err, vmtest.ErrTimeout)
	assert.False(t, vm.Exited())

	vm.Kill()
	_, err = vm.ExpectString("this line never comes", bootTimeout)
	assert.ErrorIs(t, err, vmtest.ErrExited, "Expect after QEMU died")
	assert.True(t, vm.Exited())
}

// The disks and the CD-ROM that Options attach show up in the guest with
// the cloud kernel's drivers (all modules there) under their usual names:
// on -M pc's IDE, and under OVMFSecureBoot on q35's virtio-scsi. A kernel
// started under OVMFSecureBoot (not checked: see OVMFSecureBoot) sees
// Secure Boot on and locks itself down.
func TestDisksSeen(t *testing.T) {
	t.Parallel()
	k := vmtest.KernelAndModules(t)
	vmtest.HaveQEMU(t)
	for _, tc := range []struct {
		fw      vmtest.Firmware
		modules []string
	}{
		{vmtest.SeaBIOS, []string{"ata_piix", "sd_mod", "sr_mod", "virtio_pci", "virtio_blk"}},
		{vmtest.OVMFSecureBoot, []string{"virtio_pci", "virtio_scsi", "sd_mod", "sr_mod", "virtio_blk"}},
	} {
		t.Run(tc.fw.String(), func(t *testing.T) {
			t.Parallel()
			if tc.fw == vmtest.OVMFSecureBoot {
				vmtest.HaveSecureBootOVMF(t)
			}
			dir := t.TempDir()
			img := func(name string, size int) string {
				p := filepath.Join(dir, name)
				require.NoError(t, os.WriteFile(p, make([]byte, size), 0o644))
				return p
			}
			vm := vmtest.Start(t, vmtest.Options{
				Name:     "disks-" + tc.fw.String(),
				Firmware: tc.fw,
				Kernel:   k.Vmlinuz,
				Initrd:   testinit.InitrdWith(t, testinit.Options{ModulesDir: k.Modules, Modules: tc.modules}),
				Append:   "console=ttyS0", // not quiet: the kernel's Secure Boot lines are info
				Disks: []vmtest.Disk{
					{Path: img("ide.img", 1<<20)},
					{Path: img("virtio.img", 2<<20), Virtio: true, Snapshot: true},
				},
				CDROM: img("cd.iso", 3<<20),
			})
			vm.MustExpect(markerRE, bootTimeout)
			vm.MustWait(bootTimeout)
			t.Logf("QEMU exited after %v", vm.Elapsed().Round(time.Millisecond))
			var devs []string
			for _, line := range strings.Split(vm.Console(), "\n") {
				if rest, ok := strings.CutPrefix(line, testinit.BlockMarker+" "); ok {
					devs = append(devs, rest)
				}
			}
			assert.ElementsMatch(t, []string{"sda 1048576", "sr0 3145728", "vda 2097152"}, devs)
			assert.NotContains(t, vm.Console(), "testinit: loading", "module load errors")
			sb := tc.fw == vmtest.OVMFSecureBoot
			assert.Equal(t, sb, strings.Contains(vm.Console(), "secureboot: Secure boot enabled"), "the kernel's Secure Boot line")
			assert.Equal(t, sb, strings.Contains(vm.Console(), "Kernel is locked down from EFI Secure Boot"), "the kernel's lockdown line")
		})
	}
}

// Secure Boot is enforced: with no boot media, OVMF falls back to its
// built-in UEFI Shell, which no enrolled key signs. The Secure Boot
// firmware refuses it with either variable store template; plain OVMF
// starts it. The firmware's private variable store is gone once QEMU has
// exited, and the template is untouched.
func TestSecureBootRefusesUnsigned(t *testing.T) {
	t.Parallel()
	vmtest.HaveQEMU(t)
	// The firmware's own messages on the serial console (BdsDxe).
	startShellRE := regexp.MustCompile(`^BdsDxe: starting Boot[0-9A-F]{4} "EFI Internal Shell"`)
	refusedRE := regexp.MustCompile(`^BdsDxe: failed to start Boot[0-9A-F]{4} "EFI Internal Shell" .*: Security Violation$`)
	for _, tc := range []struct {
		name    string
		fw      vmtest.Firmware
		vars    string
		refused bool
	}{
		{"OVMF", vmtest.OVMF, "", false},
		{"SecureBoot-Microsoft", vmtest.OVMFSecureBoot, vmtest.MicrosoftVars, true},
		{"SecureBoot-snakeoil", vmtest.OVMFSecureBoot, vmtest.SnakeoilVars, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.fw == vmtest.OVMFSecureBoot {
				vmtest.HaveSecureBootOVMF(t)
			} else {
				vmtest.HaveOVMF(t)
			}
			var template []byte
			if tc.vars != "" {
				var err error
				template, err = os.ReadFile(tc.vars)
				require.NoError(t, err)
			}
			vm := vmtest.Start(t, vmtest.Options{
				Name:         "no-media-" + tc.name,
				Firmware:     tc.fw,
				FirmwareVars: tc.vars,
			})
			vars := pflashVars(vm.Args())
			if tc.refused {
				require.NotEmpty(t, vars, "pflash unit 1 in %q", vm.Args())
				fi, err := os.Stat(vars)
				require.NoError(t, err, "the variable store while QEMU runs")
				assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "a private copy")
				assert.NotEqual(t, tc.vars, vars, "a copy, not the template")
			} else {
				assert.Empty(t, vars, "plain OVMF has no variable store")
			}

			vm.MustExpect(startShellRE, bootTimeout)
			if tc.refused {
				vm.MustExpect(refusedRE, bootTimeout)
				// The firmware has nothing else to try: it waits for a key.
				vm.MustExpectString("Press any key to enter the Boot Manager Menu", bootTimeout)
				assert.NotContains(t, vm.Console(), "UEFI Interactive Shell")
			} else {
				vm.MustExpectString("UEFI Interactive Shell", bootTimeout)
				assert.NotContains(t, vm.Console(), "Security Violation")
			}
			t.Logf("%s: verdict after %v", tc.name, vm.Elapsed().Round(time.Millisecond))

			vm.Stop()
			if vars != "" {
				_, err := os.Stat(vars)
				assert.ErrorIs(t, err, os.ErrNotExist, "the variable store is removed once QEMU has exited")
				after, err := os.ReadFile(tc.vars)
				require.NoError(t, err)
				assert.True(t, bytes.Equal(template, after), "the template %s is unchanged", tc.vars)
			}
		})
	}
}

// pflashVars returns the file of QEMU's pflash unit 1 (the variable store)
// in args, or "".
func pflashVars(args []string) string {
	for _, a := range args {
		if f, ok := strings.CutPrefix(a, "if=pflash,format=raw,unit=1,file="); ok {
			return f
		}
	}
	return ""
}
